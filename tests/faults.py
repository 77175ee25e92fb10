"""What the fault-injection suite (`test_faults_*.py`) shares: clips cut from a sample with the
bundled ffmpeg (some of them damaged), the CLI as a subprocess, and checks of what a run leaves:
the manifest against OUTDIR, temporary files, processes.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from toolkit.lifetime import start_time
from toolkit.manifest import MANIFEST_NAME
from toolkit.media import ffmpeg_executable
from toolkit.utils import temp_file_owner

from .conftest import SAMPLES

FAST = ["--no-diarize", "--translate-to", "none", "--no-progress"]
FORMATS = ("html", "json", "srt", "tsv", "txt", "vtt")  # the default formats, sorted
ENV = {**os.environ, "TOOLKIT_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
SOURCE = SAMPLES / "russian_two_speakers.mp4"  # speaker A 1.0-6.8 s, speaker B from 7.9 s


def ffmpeg(*args: str | Path) -> None:
    subprocess.run([ffmpeg_executable(), "-y", "-loglevel", "error", *map(str, args)], check=True)


def cli(*args: str | Path, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "toolkit", "transcribe", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env=ENV)


def start_cli(*args: str | Path, stderr=subprocess.DEVNULL) -> subprocess.Popen:
    """The CLI in its own session (a process group, as a terminal gives a command)."""
    return subprocess.Popen([sys.executable, "-m", "toolkit", "transcribe", *map(str, args)], env=ENV,
                            stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True)


def lines(stderr: str, kind: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(f"toolkit: {kind}:")]


def records(out: Path) -> dict[str, dict]:
    """The manifest by input file name; every line must be a valid JSON record."""
    text = (out / MANIFEST_NAME).read_text(encoding="utf-8")
    return {Path(r["path"]).name: r for r in map(json.loads, text.splitlines())}


def recorded(out: Path, name: str) -> bool:
    """Whether the manifest has a line for `name` yet (written after all of its outputs)."""
    try:
        return f'/{name}"'.encode() in (out / MANIFEST_NAME).read_bytes()
    except FileNotFoundError:
        return False


def assert_consistent(out: Path) -> None:
    """The manifest matches OUTDIR: a done or skipped file has all its outputs, a failed one none,
    and no temporary file of a run is left"""
    for name, record in records(out).items():
        if record["status"] in ("done", "skipped"):
            assert record["outputs"] and all((out / o).is_file() for o in record["outputs"]), name
        elif record["stem"]:
            assert not [p for p in out.glob("*") if p.stem == record["stem"]], name
    # (the one this test process planted, as a live run's, must stay)
    assert not [p for p in out.iterdir() if temp_file_owner(p.name) not in (None, os.getpid())]


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


def survivors(tree: dict[int, int | None], timeout: float) -> list[str]:
    """Processes of `tree` (pid -> start time) still alive after `timeout` seconds."""
    def alive() -> list[str]:
        return [f"{pid} {cmdline(pid)[:80]}" for pid, started in tree.items()
                if started is not None and start_time(pid) == started
                and Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"]
    deadline = time.monotonic() + timeout
    while alive() and time.monotonic() < deadline:
        time.sleep(0.2)
    return alive()


@contextlib.contextmanager
def mounted(target: Path, *options: str) -> Iterator[Path]:
    """A small tmpfs or a read-only bind mount; skips where this test cannot mount (not root)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs or a read-only bind mount needs root (CI runs as root)")
    target.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", *options, str(target)], capture_output=True, text=True)
    if done.returncode:
        pytest.skip(f"cannot mount here: {done.stderr.strip()}")
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False)


def fill(folder: Path) -> None:
    """Write until the filesystem is full."""
    with open(folder / "filler", "wb") as f:
        with contextlib.suppress(OSError):
            while True:
                f.write(b"\0" * 65536)
                f.flush()


def dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid



_CLIPS: dict[str, Path] = {}


@pytest.fixture(scope="session")
def clips(tmp_path_factory) -> dict[str, Path]:
    """12 s of a sample as a small mp4 (AAC 44.1 kHz stereo, like a download), its damaged
    copies, and short clips for the cases that need a transcription but not its length.
    Built once a session, though each test module that imports this fixture gets its own."""
    if not _CLIPS:
        _CLIPS.update(_make_clips(tmp_path_factory.mktemp("clips")))
    return _CLIPS


def _make_clips(folder: Path) -> dict[str, Path]:
    ref = folder / "ref.mp4"
    ffmpeg("-i", SOURCE, "-t", "12", "-vf", "scale=160:-2", "-r", "10", "-c:v", "libx264", "-preset", "ultrafast",
           "-c:a", "aac", "-ar", "44100", "-ac", "2", ref)
    # 3 s of audio packets dropped (the container keeps the others' times)
    ffmpeg("-i", ref, "-c", "copy", "-bsf:a", "noise=drop='between(pts*tb,3,6)'", folder / "gap.mp4")
    # 40 KB of random bytes inside the media data
    data = bytearray(ref.read_bytes())
    start = data.find(b"mdat")
    offset = start + (len(data) - start) * 3 // 10
    data[offset:offset + 40000] = random.Random(7).randbytes(40000)
    (folder / "rand.mp4").write_bytes(bytes(data))
    # a "faststart" mp4 (index first) cut short: the index promises 12 s, the data holds ~5
    ffmpeg("-i", ref, "-c", "copy", "-movflags", "+faststart", folder / "fast.mp4")
    fast = (folder / "fast.mp4").read_bytes()
    (folder / "trunc.mp4").write_bytes(fast[:len(fast) * 45 // 100])
    ffmpeg("-i", ref, "-t", "3.5", "-vn", "-ar", "16000", "-ac", "1", folder / "short.wav")
    ffmpeg("-i", ref, "-t", "3.5", "-vn", "-ar", "16000", "-ac", "1", "-af", "volume=0.8", folder / "short2.wav")
    ffmpeg("-i", ref, "-t", "6", "-vn", "-ar", "8000", "-ac", "1", folder / "8k.wav")
    ffmpeg("-i", ref, "-t", "6", "-vn", "-ac", "6", "-c:a", "aac", folder / "six.mkv")
    ffmpeg("-i", ref, "-f", "lavfi", "-i", "sine=frequency=440:duration=6", "-map", "0:v", "-map", "1:a",
           "-map", "0:a", "-t", "6", "-c:v", "copy", "-c:a", "aac", "-disposition:a:0", "0",
           "-disposition:a:1", "default", folder / "two.mkv")
    ffmpeg("-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono", "-t", "600", "-c:a", "pcm_s16le", folder / "silence.wav")
    ffmpeg("-f", "lavfi", "-i", "aevalsrc='0.3*sin(2*PI*t*(220+110*floor(mod(t*2,4))))"
           "+0.2*sin(2*PI*t*(330+55*floor(mod(t*3,5))))+0.1*sin(2*PI*t*660)':s=44100:d=6",
           "-ac", "2", "-c:a", "libmp3lame", folder / "music.mp3")
    ffmpeg("-f", "lavfi", "-i", "anoisesrc=color=pink:amplitude=0.3:d=6:seed=1", "-ar", "44100", "-c:a", "aac",
           folder / "noise.m4a")
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=160x120:rate=10", "-t", "1", "-pix_fmt", "yuv420p",
           folder / "noaudio.mp4")
    return {p.name: p for p in folder.iterdir()}

