import json
import os
import subprocess
import sys
import time

import pytest

from .conftest import SAMPLES


def test_batch_with_bad_inputs(bad_inputs, tmp_path):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "toolkit", "transcribe", str(SAMPLES / "azeri_music.mp4"), str(bad_inputs["text"]),
           str(bad_inputs["silent"]), str(tmp_path / "missing.mp4"), "-o", str(out), "--no-progress",
           "--translate-to", "none"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if line.startswith("toolkit: error:")]
    assert len(errors) == 3
    assert any("text.mp4: not a media file" in e for e in errors)
    assert any("silent.mp4: no audio stream" in e for e in errors)
    assert any("missing.mp4: no such file" in e for e in errors)
    assert "1 done, 3 failed" in proc.stderr
    transcripts = sorted(p.name for p in out.iterdir()
                         if p.name not in ("manifest.jsonl", "speakers.json", ".speakers.cache.json",
                                       "corpus.sqlite", "index.html"))
    assert transcripts == [f"azeri_music.{x}" for x in ("html", "json", "srt", "tsv", "txt", "vtt")]
    data = json.loads((out / "azeri_music.json").read_text(encoding="utf-8"))
    assert data["segments"] and all(s["language"] == "az" for s in data["segments"])
    # The batch indexed what it wrote: its first word is found at its segment, in any case.
    first = data["segments"][0]
    word = max(first["text"].split(), key=len).strip(".,!?")
    found = subprocess.run([sys.executable, "-m", "toolkit", "search", str(out), word.upper(), "--json"],
                           capture_output=True, text=True)
    assert found.returncode == 0, found.stderr
    hits = {h["start"]: h for h in json.loads(found.stdout)}
    assert first["start"] in hits
    people = json.loads((out / "speakers.json").read_text(encoding="utf-8"))["identities"]
    person = next(p for p in people if any(a["file"] == "azeri_music.json" and a["speaker"] == first["speaker"]
                                           for a in p["appearances"]))
    assert hits[first["start"]]["identity"] == (person["name"] or person["id"])  # the person across the folder


@pytest.mark.parametrize("args, message", [
    (["--formats", "doc"], "unknown output format 'doc'"),
    (["--languages", "aze"], "unknown language code(s) aze"),
    (["--num-speakers", "0"], "--num-speakers must be at least 1"),
    (["--min-speakers", "3", "--max-speakers", "2"], "need 1 <= --min-speakers"),
    (["--model", "large-v3"], "available here: base"),
    (["--translator", "/no/such/model"], "translation model folder '/no/such/model' does not exist"),
])
def test_usage_errors_stop_before_any_file(args, message, tmp_path):
    """Options that cannot work are refused at once (exit 2), not once per file after decoding."""
    proc = subprocess.run([sys.executable, "-m", "toolkit", "transcribe", str(SAMPLES / "azeri_music.mp4"),
                           "-o", str(tmp_path), *args], capture_output=True, text=True,
                          env={**os.environ, "TOOLKIT_OFFLINE": "1"})
    assert proc.returncode == 2 and message in proc.stderr
    assert not list(tmp_path.iterdir())


def test_unavailable_translator_fails_at_once_with_one_line(tmp_path):
    """`--translator nllb` without the model: refused before any file, without touching the hub (1.0-1.4 s
    measured for the whole command; the bound here leaves room for a loaded machine)."""
    env = {**os.environ, "TOOLKIT_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "empty-cache")}
    started = time.monotonic()
    cmd = [sys.executable, "-m", "toolkit", "transcribe", str(SAMPLES / "azeri_music.mp4"), "-o", str(tmp_path / "out"),
           "--translator", "nllb"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    elapsed = time.monotonic() - started
    assert proc.returncode == 2 and elapsed < 10, (proc.returncode, elapsed)
    assert proc.stderr.splitlines() == [
        "toolkit: translation model facebook/nllb-200-distilled-600M is not in the Hugging Face cache and downloads "
        "are off (TOOLKIT_OFFLINE/HF_HUB_OFFLINE): download it where you are online (huggingface-cli download "
        "facebook/nllb-200-distilled-600M) and copy the Hugging Face cache here, or use --translator whisper"]
    assert not (tmp_path / "out").exists()


def test_translator_failing_mid_run_fails_the_file_and_keeps_its_outputs(tmp_path):
    """A translator that passes the preflight (a folder is there) and fails to load: the transcript is
    written, its segments say `[translation failed]`, the file counts as failed (exit 1) and is redone."""
    broken = tmp_path / "not-a-model"
    broken.mkdir()
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "toolkit", "transcribe", str(SAMPLES / "azeri_music.mp4"), "-o", str(out),
           "--translator", str(broken), "--formats", "json,txt", "--no-progress", "--no-diarize"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "TOOLKIT_OFFLINE": "1"})
    assert proc.returncode == 1, proc.stderr
    assert "0 done, 1 failed" in proc.stderr
    [error] = [line for line in proc.stderr.splitlines() if line.startswith("toolkit: error:")]
    assert "azeri_music.mp4: translation failed for" in error and "ModelNotAvailableError" in error
    txt = (out / "azeri_music.txt").read_text(encoding="utf-8")
    assert txt.count("en: [translation failed]") == len(json.loads((out / "azeri_music.json").read_text())["segments"])
    [record] = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert record["status"] == "failed" and sorted(record["outputs"]) == ["azeri_music.json", "azeri_music.txt"]


def test_speaker_counts_reach_diarization():
    """--num-speakers and friends, and the library's short overrides, land in DiarizationOptions."""
    from toolkit.cli import build_parser, options_from_args
    from toolkit.pipeline import PipelineOptions

    args = build_parser().parse_args(["transcribe", "x.mp4", "--min-speakers", "2", "--max-speakers", "3"])
    options = options_from_args(args)
    assert options.diarization.bounds == (2, 3)
    options = PipelineOptions().with_overrides(num_speakers=2, translate_to=None)
    assert options.diarization.bounds == (2, 2) and options.translate_to is None
    with pytest.raises(ValueError, match="--num-speakers must be at least 1"):
        PipelineOptions().with_overrides(num_speakers=0)


def test_report_command_errors(tmp_path):
    missing = subprocess.run([sys.executable, "-m", "toolkit", "report", str(tmp_path / "nope")],
                             capture_output=True, text=True)
    assert missing.returncode == 2 and "no such folder" in missing.stderr
    empty = subprocess.run([sys.executable, "-m", "toolkit", "report", str(tmp_path)], capture_output=True, text=True)
    assert empty.returncode == 1 and "no transcripts" in empty.stderr
    assert not list(tmp_path.iterdir())  # no empty index that would look like a finished, empty collection


def test_models_command():
    proc = subprocess.run([sys.executable, "-m", "toolkit", "models"], capture_output=True, text=True,
                          env={"TOOLKIT_OFFLINE": "1", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0
    assert any(line.split()[:3] == ["whisper", "base", "available"] for line in proc.stdout.splitlines())
