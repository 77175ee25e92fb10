"""What a run costs beside its results: the import, the memory against the media's length, the
temporary audio on disk (gone on every exit, kill -9 included)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from toolkit.media import ffmpeg_executable

from .conftest import SAMPLES

HEAVY = ("faster_whisper", "ctranslate2", "av", "onnxruntime", "jinja2", "numpy", "lingua", "tokenizers")


def _loaded_after(statement: str) -> list[str]:
    code = f"import json, sys\n{statement}\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    return json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                     check=True).stdout)


def test_import_toolkit_loads_no_model_library():
    """`import toolkit` stays light (under 0.05 s measured; README); the names load on first use."""
    assert _loaded_after("import toolkit") == []
    assert "numpy" in _loaded_after("import toolkit; toolkit.PipelineOptions")
    import toolkit

    assert callable(toolkit.evaluate) and callable(toolkit.transcribe) and set(toolkit.__all__) <= set(dir(toolkit))


_PEAK = """
import resource, sys
from toolkit.media import open_media
from toolkit.vad import speech_regions
info, audio = open_media(sys.argv[1])
with audio:
    regions = speech_regions(audio)
    middle = audio.read(audio.duration / 2, audio.duration / 2 + 30)  # a window from anywhere
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, audio.duration, len(middle))
"""


def test_memory_stays_flat_with_length(tmp_path):
    """Extraction and VAD of 72 minutes peak where 36 minutes do: the audio lives on disk and is read
    by windows (held as float32, the 36 minutes more would add 132 MiB; as 16-bit, 66 MiB). Both are
    longer than the VAD's 10-minute chunks, whose temporaries are the peak (~300 MiB)."""
    peaks = {}
    for minutes in (36, 72):
        wav = tmp_path / f"noise{minutes}.wav"
        subprocess.run([ffmpeg_executable(), "-loglevel", "error", "-f", "lavfi", "-i",
                        f"anoisesrc=d={minutes * 60}:c=pink:a=0.003:r=16000", "-ac", "1", str(wav)], check=True)
        # large blocks mapped and unmapped as numpy frees them: the peak is what the code holds, not
        # what glibc keeps for later (that varied by +-30 MiB from run to run)
        env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072"}
        out = subprocess.run([sys.executable, "-c", _PEAK, str(wav)], capture_output=True, text=True, check=True,
                             env=env)
        peak, duration, window = out.stdout.split()
        assert float(duration) == pytest.approx(minutes * 60, abs=0.1) and int(window) == 30 * 16000
        peaks[minutes] = float(peak)
    assert peaks[72] - peaks[36] < 25, peaks


def test_temporary_audio_is_nameless_and_gone_after_kill(tmp_path):
    """The extracted audio is a file without a name in the temp folder while the run reads it, so a
    kill -9 leaves nothing behind there (the system frees it with the process)."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {**os.environ, "TOOLKIT_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "TMPDIR": str(temp)}
    proc = subprocess.Popen([sys.executable, "-m", "toolkit", "transcribe", str(SAMPLES / "confession_mixed.mp4"),
                             "-o", str(tmp_path / "out"), "--no-diarize", "--translate-to", "none",
                             "--formats", "json"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    held: list[str] = []
    try:
        deadline = time.monotonic() + 120
        while not held and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
            for fd in Path(f"/proc/{proc.pid}/fd").iterdir():
                try:
                    target = os.readlink(fd)
                except OSError:
                    continue
                if target.startswith(str(temp)):
                    held.append(target)
        assert held, "the run never held its audio in the temp folder"
        assert all(t.endswith("(deleted)") for t in held), held  # no name: nothing to clean up
        assert not _ours(temp)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stderr.close()
    assert not _ours(temp)


def _ours(folder: Path) -> list[Path]:
    """Files of ours in `folder` (other programs of the machine may keep their own there)."""
    return [p for p in folder.iterdir() if p.name.startswith("toolkit-") or p.suffix == ".pcm"]
