"""Shared fixtures: the bundled samples, bad inputs built with the bundled ffmpeg, and
pipeline runs that several test modules read (each sample is transcribed once per session)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
SCENES = ROOT / "tests" / "data"  # built with scripts/make_scenes.py
SHARED_BENCH = ROOT.parent / "shared" / "bench"


def media(name: str) -> Path:
    """A sample (samples/) or a test scene (tests/data/) by name."""
    return next(p for p in (SAMPLES / f"{name}.mp4", SCENES / f"{name}.mp4") if p.is_file())


def truth(name: str) -> dict:
    return json.loads(media(name).with_suffix(".truth.json").read_text(encoding="utf-8"))


def score(name: str, transcript) -> dict:
    """The project's own evaluation (toolkit.evaluate), which a test holds to the shared scorer."""
    from toolkit.evaluate import evaluate

    return evaluate(truth(name), transcript).to_dict()


@pytest.fixture(scope="session")
def bad_inputs(tmp_path_factory) -> dict[str, Path]:
    """A text file named .mp4, a zero-byte file, a video without audio, a truncated video."""
    import subprocess

    from toolkit.media import ffmpeg_executable

    folder = tmp_path_factory.mktemp("bad")
    (folder / "text.mp4").write_text("this is not a video\n")
    (folder / "empty.mp4").write_bytes(b"")
    subprocess.run([ffmpeg_executable(), "-y", "-loglevel", "error", "-f", "lavfi", "-i",
                    "testsrc=size=160x120:rate=10", "-t", "1", "-pix_fmt", "yuv420p", str(folder / "silent.mp4")],
                   check=True)
    (folder / "truncated.mp4").write_bytes((SAMPLES / "azeri_music.mp4").read_bytes()[:20000])
    return {p.stem: p for p in folder.iterdir()}


_RUNS: dict[tuple, object] = {}


@pytest.fixture(scope="session")
def run_pipeline():
    """transcribe(sample, **options), memoised for the session: real models, real samples."""
    import toolkit

    def run(name: str, **options):
        key = (name, tuple(sorted(options.items())))
        if key not in _RUNS:
            _RUNS[key] = toolkit.transcribe(media(name), **options)
        return _RUNS[key]

    return run


_SPEECH_MAPS: dict[str, tuple] = {}


@pytest.fixture(scope="session")
def speech_map():
    """name -> (audio, VAD regions, toolkit.diarize.SpeechMap), memoised for the session: each sample is
    segmented and embedded once, and tests re-cluster it with the speaker counts they need."""
    from toolkit.diarize import map_speech
    from toolkit.media import extract_audio
    from toolkit.vad import speech_regions

    def get(name: str) -> tuple:
        if name not in _SPEECH_MAPS:
            audio = extract_audio(SAMPLES / f"{name}.mp4")
            regions = speech_regions(audio)
            _SPEECH_MAPS[name] = (audio, regions, map_speech(audio, regions))
        return _SPEECH_MAPS[name]

    return get


@pytest.fixture(scope="session")
def overlap_scene(tmp_path_factory) -> tuple[Path, dict]:
    """A WAV with crosstalk and back-to-back turns built from the samples' voices, and its truth."""
    from .scenes import build_scene, write_wav

    audio, scene_truth = build_scene()
    folder = tmp_path_factory.mktemp("scene")
    (folder / "overlap_scene.truth.json").write_text(json.dumps(scene_truth, ensure_ascii=False), encoding="utf-8")
    return write_wav(audio, folder / "overlap_scene.wav"), scene_truth


def pytest_collection_modifyitems(config, items):
    """`requires_cuda` tests run only where CTranslate2 sees a GPU."""
    import ctranslate2

    if ctranslate2.get_cuda_device_count() > 0:
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (CTranslate2 sees none)")
    for item in items:
        if "requires_cuda" in item.keywords:
            item.add_marker(skip)
