import json
import os
import subprocess
import sys

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
                         if p.name not in ("manifest.jsonl", "speakers.json", ".speakers.cache.json"))
    assert transcripts == [f"azeri_music.{x}" for x in ("json", "srt", "tsv", "txt", "vtt")]
    data = json.loads((out / "azeri_music.json").read_text(encoding="utf-8"))
    assert data["segments"] and all(s["language"] == "az" for s in data["segments"])


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


def test_report_command_errors(tmp_path):
    missing = subprocess.run([sys.executable, "-m", "toolkit", "report", str(tmp_path / "nope")],
                             capture_output=True, text=True)
    assert missing.returncode == 2 and "no such folder" in missing.stderr
    empty = subprocess.run([sys.executable, "-m", "toolkit", "report", str(tmp_path)], capture_output=True, text=True)
    assert empty.returncode == 1 and "no transcripts" in empty.stderr


def test_models_command():
    proc = subprocess.run([sys.executable, "-m", "toolkit", "models"], capture_output=True, text=True,
                          env={"TOOLKIT_OFFLINE": "1", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0
    assert any(line.split()[:3] == ["whisper", "base", "available"] for line in proc.stdout.splitlines())
