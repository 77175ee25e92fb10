"""Fault injection, kept as a suite (part 2): faults of a run's surroundings and lifetime: OUTDIR
a file, read-only or full (a small tmpfs or a read-only bind mount, as root), the disk filling
mid-batch, a file changed in place, bad options, Ctrl-C and kill -9 mid-batch, and kill -9 of a
run whose helpers (--jobs 2 workers, a local Ray instance) must die with it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from toolkit.lifetime import descendants, start_time
from toolkit.manifest import LOCK_NAME, MANIFEST_NAME

from .faults import (
    FAST,
    FORMATS,
    assert_consistent,
    cli,
    clips,
    cmdline,
    fill,
    lines,
    mounted,
    recorded,
    records,
    start_cli,
    survivors,
    wait_for,
)

__all__ = ["clips"]  # the shared fixture, imported for pytest to find


def test_outdir_is_a_file(tmp_path, clips):
    (tmp_path / "out").write_text("a file")
    proc = cli(clips["short.wav"], "-o", tmp_path / "out", *FAST)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"toolkit: error: {tmp_path / 'out'}: is a file, not a folder "
                                                "(-o needs a folder)"]


def test_outdir_read_only(tmp_path, clips):
    (tmp_path / "src").mkdir()
    with mounted(tmp_path / "ro", "--bind", "-o", "ro", str(tmp_path / "src")) as ro:
        if not subprocess.run(["touch", str(ro / "x")], capture_output=True).returncode:
            pytest.skip("this kernel's bind mount did not turn read-only")
        for target in (ro, ro / "sub"):
            proc = cli(clips["short.wav"], "-o", target, *FAST)
            assert proc.returncode == 2
            assert proc.stderr.strip().splitlines() == [f"toolkit: error: {target}: is on a read-only filesystem"]


def test_outdir_full(tmp_path, clips):
    with mounted(tmp_path / "full", "-t", "tmpfs", "-o", "size=1m", "tmpfs") as full:
        fill(full)
        proc = cli(clips["short.wav"], "-o", full / "out", *FAST)
        assert proc.returncode == 2
        [line] = proc.stderr.strip().splitlines()
        assert line.startswith(f"toolkit: error: {full / 'out'}: is full"), line
        assert not (full / "out" / MANIFEST_NAME).exists()


def test_disk_full_mid_batch_stops_cleanly(tmp_path, clips):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in ("a", "b", "c"):
        shutil.copy(clips["short.wav"], inputs / f"{name}.wav")
    with mounted(tmp_path / "disk", "-t", "tmpfs", "-o", "size=4m", "tmpfs") as disk:
        out = disk / "out"
        errors = tmp_path / "stderr.txt"
        with open(errors, "w") as err:
            proc = start_cli(inputs, "-o", out, *FAST, stderr=err)
            wait_for(lambda: recorded(out, "a.wav") or proc.poll() is not None, 180, "a.wav's record")
            fill(disk)
            assert proc.wait(timeout=180) == 1
        stderr = errors.read_text()
        assert [line for line in lines(stderr, "error") if "/b.wav: " in line][0].endswith("No space left on device")
        assert (f"toolkit: error: {out}: cannot take more outputs; the batch stopped with 1 input not tried"
                in stderr), stderr
        assert "toolkit: 1 done, 1 failed, 0 skipped (up to date) before the batch stopped" in stderr
        assert sorted(p.name for p in out.glob("a.*")) == [f"a.{x}" for x in FORMATS]  # nothing finished lost
        assert not list(out.glob("b.*")) and not list(out.glob("c.*"))
        kept = records(out)
        assert kept["a.wav"]["status"] == "done" and "c.wav" not in kept
        assert kept.get("b.wav", {"status": "failed"})["status"] == "failed"
        assert_consistent(out)


def test_file_changed_in_place_with_same_size_and_mtime_is_redone(tmp_path, clips):
    from toolkit.batch import transcribe_many
    from toolkit.pipeline import PipelineOptions

    clip = tmp_path / "clip.wav"
    shutil.copy(clips["short.wav"], clip)
    options = PipelineOptions(diarize=False, translate_to=None)

    def run() -> str:
        [result] = transcribe_many([clip], tmp_path / "out", options, ["json"])
        return result.status

    assert run() == "done"
    assert run() == "skipped"
    st = clip.stat()
    with open(clip, "r+b") as f:  # other samples, same length: what a re-encode in place might leave
        f.seek(st.st_size // 2)
        f.write(b"\x10\x27" * 2000)
    os.utime(clip, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (clip.stat().st_size, clip.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)
    assert run() == "done"
    assert run() == "skipped"


# ---------------------------------------------------------------------------- options and reports

@pytest.mark.parametrize("args, message", [
    (["--formats", ""], "--formats '' names no format"),
    (["--cpu-threads", "-5"], "--cpu-threads must be at least 1 (or 0: all cores), not -5"),
    (["--audio-stream", "-1"], "--audio-stream counts from 0, not -1"),
    (["--jobs", "0"], "--jobs must be at least 1, not 0"),
], ids=["formats-empty", "cpu-threads", "audio-stream", "jobs"])
def test_bad_option_is_one_line_before_any_file(tmp_path, clips, args, message):
    proc = cli(clips["short.wav"], "-o", tmp_path / "out", "--no-progress", *args)
    assert proc.returncode == 2, proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith(f"toolkit: {message}"), line
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------- signals

@pytest.fixture
def two_clips(tmp_path, clips) -> Path:
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in ("a", "b"):
        shutil.copy(clips["short.wav"], inputs / f"{name}.wav")
    return inputs


def test_sigint_mid_batch_stops_cleanly(tmp_path, two_clips):
    out, errors = tmp_path / "out", tmp_path / "stderr.txt"
    with open(errors, "w") as err:
        proc = start_cli(two_clips, "-o", out, *FAST[:-1], stderr=err)  # with the bar: "toolkit: 1.0/2 files"
        wait_for(lambda: "1.0/2 files" in errors.read_text() or proc.poll() is not None, 180, "a.wav counted")
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does: the whole process group
        assert proc.wait(timeout=60) == 130
    stderr = errors.read_text()
    assert "toolkit: interrupted: 1 done, 0 failed, 0 skipped before the interrupt" in stderr, stderr
    assert "toolkit: finished: a.wav" in stderr
    assert not list(out.glob("b.*")) and set(records(out)) == {"a.wav"}
    assert_consistent(out)
    assert not (out / LOCK_NAME).exists()


def test_sigkill_mid_batch_then_resume(tmp_path, two_clips):
    out = tmp_path / "out"
    proc = start_cli(two_clips, "-o", out, *FAST)
    wait_for(lambda: recorded(out, "a.wav") or proc.poll() is not None, 180, "a.wav's record")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "b.json").exists(), "the kill did not land mid-batch"
    # What a writer killed mid-file leaves behind: a temp file named after the dead process.
    (out / f".b.srt.toolkit-{proc.pid}.tmp").write_text("1\n00:00:00,000 --> 00:")
    with open(out / MANIFEST_NAME, "a") as f:
        f.write('{"path": "/cut/short')  # a manifest line cut by the kill

    again = cli(two_clips, "-o", out, *FAST)
    assert again.returncode == 0, again.stderr
    assert "1 done, 0 failed, 1 skipped" in again.stderr and "line 2 skipped (cut short" in again.stderr
    for stem in ("a", "b"):
        assert sorted(p.name for p in out.glob(f"{stem}.*")) == [f"{stem}.{x}" for x in FORMATS]
    assert_consistent(out)
    assert {r["status"] for r in records(out).values()} == {"done", "skipped"}


def _tree_when(proc: subprocess.Popen, ready, timeout: float) -> dict[int, int | None]:
    """The process tree under `proc` (pid -> start time) once `ready(cmdlines)` holds."""
    tree: dict[int, int | None] = {}

    def grown() -> bool:
        for pid in descendants({proc.pid}):
            tree.setdefault(pid, start_time(pid))
        return proc.poll() is not None or ready([cmdline(pid) for pid in tree])

    wait_for(grown, timeout, "the helper processes")
    assert proc.poll() is None, "the run ended before it could be killed"
    return tree


def test_kill_9_with_jobs_2_leaves_no_worker(tmp_path, two_clips):
    proc = start_cli(two_clips, "-o", tmp_path / "out", "--jobs", "2", *FAST)
    tree = _tree_when(proc, lambda cmds: sum("spawn_main" in c for c in cmds) >= 2, 120)
    time.sleep(2.0)  # into their work: importing, loading the model, decoding
    proc.kill()
    proc.wait()
    assert not survivors(tree, timeout=10), "workers outlived their parent"


def test_kill_9_with_ray_leaves_no_process(tmp_path, two_clips):
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'toolkit[ray]'); CI installs it")
    proc = start_cli(two_clips, "-o", tmp_path / "out", "--engine", "ray", *FAST)
    tree = _tree_when(proc, lambda cmds: any(c.startswith("ray::_Transcriber") for c in cmds)
                      and any("DashboardAgent" in c for c in cmds), 300)
    proc.kill()
    proc.wait()
    left = survivors(tree, timeout=20)
    assert not left, f"Ray processes outlived the driver: {left}"

