import json
import subprocess
import sys

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
    transcripts = sorted(p.name for p in out.iterdir() if p.name != "manifest.jsonl")
    assert transcripts == [f"azeri_music.{x}" for x in ("json", "srt", "tsv", "txt", "vtt")]
    data = json.loads((out / "azeri_music.json").read_text(encoding="utf-8"))
    assert data["segments"] and all(s["language"] == "az" for s in data["segments"])


def test_usage_errors():
    proc = subprocess.run([sys.executable, "-m", "toolkit", "transcribe", "x.mp4", "--formats", "doc"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "unknown output format 'doc'" in proc.stderr


def test_models_command():
    proc = subprocess.run([sys.executable, "-m", "toolkit", "models"], capture_output=True, text=True,
                          env={"TOOLKIT_OFFLINE": "1", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0
    assert any(line.split()[:3] == ["whisper", "base", "available"] for line in proc.stdout.splitlines())
