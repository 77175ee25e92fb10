"""Fault injection, kept as a suite: bad media, bad options, damaged state and faults, each made
for real and checked for what a user sees and what is left behind: the exit status, one stderr
line naming the file and the reason, outputs complete or absent, the manifest consistent, no
stray temporary files, no process left.

Most cases fail before anything is decoded and cost no model. Those that transcribe share one
CLI batch (`big_run`) over short clips cut from a sample, with diarization and translation off;
the damaged clips are compared with the same clip undamaged, run in that batch.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from toolkit.cli import main as cli_main
from toolkit.lifetime import descendants, start_time
from toolkit.manifest import LOCK_NAME, MANIFEST_NAME
from toolkit.media import ffmpeg_executable
from toolkit.utils import temp_file_owner

from .conftest import SAMPLES

FAST = ["--no-diarize", "--translate-to", "none", "--no-progress"]
FORMATS = ("json", "srt", "tsv", "txt", "vtt")
ENV = {**os.environ, "TOOLKIT_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
SOURCE = SAMPLES / "russian_two_speakers.mp4"  # speaker A 1.0-6.8 s, speaker B from 7.9 s
FORGED = "toolkit: 9 done, 0 failed, 0 skipped (up to date), outputs in x"
LONG_KEPT, LONG_CUT = "L" * 250, "M" * 251  # stems: 250 bytes + ".html" fits in 255; 251 does not


# ---------------------------------------------------------------------------- helpers

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


# ---------------------------------------------------------------------------- inputs

@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    """12 s of a sample as a small mp4 (AAC 44.1 kHz stereo, like a download), its damaged
    copies, and short clips for the cases that need a transcription but not its length."""
    folder = tmp_path_factory.mktemp("clips")
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


GOOD = {  # name in the batch's folder -> clip
    "ref.mp4": "ref.mp4", "gap.mp4": "gap.mp4", "rand.mp4": "rand.mp4", "trunc.mp4": "trunc.mp4",
    f"{LONG_KEPT}.wav": "short.wav", f"{LONG_CUT}.wav": "short2.wav",
    "telefon — звонок 8kHz.wav": "8k.wav", "six.mkv": "six.mkv", "two.mkv": "two.mkv",
    "silence.wav": "silence.wav", "music.mp3": "music.mp3", "noise.m4a": "noise.m4a",
}
# (file name, reason in its one error line); the last four are explicit arguments
BAD = [
    ("empty.mp4", "empty file (0 bytes)"), ("text.mp4", "not a media file"), ("noaudio.mp4", "no audio stream"),
    ("header.mp4", "not a media file"), ("garbage.mkv", "not a media file"), ("fifo.mp4", "named pipe (FIFO)"),
    ("loop.mp4", "symbolic link loop"), ("dangling.mp4", "broken symbolic link (to nowhere.mp4)"),
    ("zero", "is a character device"), ("null", "is a character device"), ("missing.mp4", "no such file"),
]
HOSTILE = {  # name -> how its error line must show it
    f"evil\n{FORGED}.mp4": "evil\\n" + FORGED, "\x1b[2J\x1b[31mred.mp4": "\\x1b[2J\\x1b[31mred.mp4",
    os.fsdecode(b"latin\xff.mp4"): "latin\\xff.mp4", "-rf.mp4": "/-rf.mp4",
}
MANIFEST_JUNK = [  # (line, why it is skipped)
    (b"\xff\xfe\x00 binary garbage", "not UTF-8 text"), (b'{"path": 5, "status": "done"}', "no path"),
    (b'{"path": "/x/y.mp4", "status": "done", "outputs": "y.json"}', "outputs is not a list of names"),
    (b'["a", "list"]', "a JSON list, not a record"), (b'{"path": "/x/z.mp4", "status": "done", "stem": "../z"}',
                                                       "is not a plain name"),
    (b'{"path": "/x/t.mp4", "status": "done", "timings": {"total": "slow"}}', "timings is not a mapping of seconds"),
    (b'{"path": "/cut/sho', "cut short"),
]
OLD_RECORD = {"path": "/elsewhere/old.mp4", "sha256": "0" * 64, "status": "done", "error": None,
              "outputs": ["old.json"], "timings": {}, "fingerprint": "f", "stem": "old"}


@pytest.fixture(scope="module")
def big_run(clips, tmp_path_factory) -> dict:
    """One batch over every clip that needs a transcription and every bad input, into an OUTDIR
    with a damaged manifest and temporary files; a second run is started while it holds OUTDIR."""
    root = tmp_path_factory.mktemp("faults")
    inputs, out = root / "in", root / "out"
    inputs.mkdir()
    for name, clip in GOOD.items():
        shutil.copy(clips[clip], inputs / name)
    (inputs / "empty.mp4").write_bytes(b"")
    (inputs / "text.mp4").write_text("this is not a video\n")
    shutil.copy(clips["noaudio.mp4"], inputs / "noaudio.mp4")
    (inputs / "header.mp4").write_bytes(clips["ref.mp4"].read_bytes()[:20000])  # its index is at the end
    (inputs / "garbage.mkv").write_bytes(random.Random(3).randbytes(50000))
    os.mkfifo(inputs / "fifo.mp4")
    os.symlink("loop.mp4", inputs / "loop.mp4")
    os.symlink("nowhere.mp4", inputs / "dangling.mp4")
    for name in HOSTILE:
        (inputs / name).write_text("not media either\n")
    (inputs / "notes.txt").write_text("not an input\n")
    empty_folder = root / "nothing here"
    empty_folder.mkdir()
    (empty_folder / "readme.txt").write_text("no media\n")

    out.mkdir()
    (out / MANIFEST_NAME).write_bytes(b"\n".join([json.dumps(OLD_RECORD).encode(), *(j for j, _ in MANIFEST_JUNK)]))
    (out / "old.json").write_text("{}")
    (out / ".important.tmp").write_text("a user's file")
    (out / ".notes.txt.tmp").write_text("a user's file")
    dead, live = f".ref.srt.toolkit-{dead_pid()}.tmp", f".x.srt.toolkit-{os.getpid()}.tmp"
    (out / dead).write_text("left by a killed run")
    (out / live).write_text("being written by a live run")

    errors = root / "stderr.txt"
    started = time.monotonic()
    with open(errors, "w") as err:
        proc = start_cli(inputs, "/dev/zero", "/dev/null", inputs / "missing.mp4", empty_folder, "-o", out, *FAST,
                         stderr=err)
        wait_for(lambda: (out / LOCK_NAME).exists() or proc.poll() is not None, 60, "the lock")
        second = cli(clips["short.wav"], "-o", out, *FAST)
        proc.wait(timeout=600)
    return {"proc": proc, "stderr": errors.read_text(), "out": out, "inputs": inputs, "second": second,
            "dead": dead, "live": live, "wall": time.monotonic() - started}


def transcript(run: dict, stem: str) -> dict:
    return json.loads((run["out"] / f"{stem}.json").read_text(encoding="utf-8"))


def words(data: dict) -> list[tuple[str, float]]:
    return [(w["word"].strip(), w["start"]) for s in data["segments"] for w in s["words"]]


# ---------------------------------------------------------------------------- the batch's view

def test_one_summary_and_exit_status(big_run):
    stderr = big_run["stderr"]
    summaries = [line for line in stderr.splitlines() if re.match(r"toolkit: \d+ done, ", line)]
    assert summaries == [f"toolkit: {len(GOOD)} done, {len(BAD) + len(HOSTILE)} failed, 0 skipped (up to date), "
                         f"outputs in {big_run['out']}"], stderr
    assert big_run["proc"].returncode == 1
    assert all(ch.isprintable() for line in stderr.splitlines() for ch in line), "a raw control character"
    assert_consistent(big_run["out"])


@pytest.mark.parametrize("name, reason", BAD, ids=[n for n, _ in BAD])
def test_bad_input_gets_one_line(big_run, name, reason):
    mine = [line for line in lines(big_run["stderr"], "error") if f"/{name}: " in line]
    assert len(mine) == 1 and reason in mine[0], big_run["stderr"]
    record = records(big_run["out"])[name]
    assert record["status"] == "failed" and reason in record["error"] and record["outputs"] == []


@pytest.mark.parametrize("name", list(HOSTILE), ids=["newline", "escape", "latin1", "dash"])
def test_hostile_name_is_escaped(big_run, name):
    mine = [line for line in lines(big_run["stderr"], "error") if HOSTILE[name] in line]
    assert len(mine) == 1 and "not a media file" in mine[0], big_run["stderr"]


def test_folder_without_media_says_so(big_run):
    assert "toolkit: warning: " in big_run["stderr"]
    assert any("nothing here: no media files in this folder (1 other file)" in line
               for line in lines(big_run["stderr"], "warning")), big_run["stderr"]
    assert "notes.txt" not in big_run["stderr"]


def test_no_media_at_all_exits_1_saying_why(tmp_path):
    (tmp_path / "empty").mkdir()
    proc = cli(tmp_path / "empty", "-o", tmp_path / "out", *FAST)
    assert proc.returncode == 1
    assert "no media files in this folder" in proc.stderr and "no media files to transcribe" in proc.stderr


# ---------------------------------------------------------------------------- damaged media

DAMAGE = [("gap", "missing", 3.0, 6.0), ("rand", "undecodable", 3.0, 6.0), ("trunc", "truncated", 4.0, 12.0)]


@pytest.mark.parametrize("stem, kind, start, end", DAMAGE, ids=[d[0] for d in DAMAGE])
def test_damaged_audio_keeps_the_media_clock(big_run, stem, kind, start, end):
    data, ref = transcript(big_run, stem), transcript(big_run, "ref")
    assert abs(data["media"]["duration"] - 12.0) < 0.05
    found = data["media"]["damage"]
    assert [d["kind"] for d in found] == [kind], found
    assert start - 0.6 <= found[0]["start"] and found[0]["end"] <= end + 0.1, found
    assert data["notes"] and data["notes"][0].startswith("damaged audio: ")
    warnings = [line for line in lines(big_run["stderr"], "warning") if f"/{stem}.mp4: damaged audio" in line]
    assert len(warnings) == 1, big_run["stderr"]
    assert records(big_run["out"])[f"{stem}.mp4"]["warnings"]
    if kind == "truncated":  # what came before the cut is kept, nothing is invented after it
        assert words(data) and all(t < found[0]["start"] for _, t in words(data))
        return
    after = [w for w in words(data) if w[1] > found[0]["end"] + 1.0]
    # Every word after the damage lands where the undamaged clip has it (the bug: 3 s early).
    reference = dict(w for w in words(ref) if w[1] > found[0]["end"] + 1.0)
    assert len(after) >= 4
    matched = [abs(t - reference[word]) for word, t in after if word in reference]
    assert len(matched) >= len(after) - 1 and max(matched) < 0.15, (after, reference)


def test_undamaged_clip_has_no_damage(big_run):
    data = transcript(big_run, "ref")
    assert "damage" not in data["media"] and not data["notes"]
    assert not any("/ref.mp4" in line for line in lines(big_run["stderr"], "warning"))


# ---------------------------------------------------------------------------- media that holds

@pytest.mark.parametrize("name", ["silence.wav", "music.mp3", "noise.m4a"])
def test_no_speech_gives_no_invented_text(big_run, name):
    assert records(big_run["out"])[name]["status"] == "done"
    assert transcript(big_run, Path(name).stem)["segments"] == []


@pytest.mark.parametrize("stem", ["telefon — звонок 8kHz", "six", "two"], ids=["8khz-unicode", "6ch", "two-tracks"])
def test_odd_audio_is_transcribed(big_run, stem):
    data = transcript(big_run, stem)
    said = [w for w, _ in words(data)]
    assert any(w.lower().startswith("считали") for w in said), said
    if stem == "two":
        assert data["media"]["audio_stream"] == 1  # the default-flagged track, not the tone before it


@pytest.mark.parametrize("stem", [LONG_KEPT, LONG_CUT], ids=["250-bytes", "251-bytes"])
def test_long_names_fit(big_run, stem):
    record = records(big_run["out"])[f"{stem}.wav"]
    assert record["status"] == "done"
    if stem == LONG_KEPT:
        assert record["stem"] == stem  # a name that fits keeps its stem
    else:
        assert len(record["stem"].encode()) == 250 and record["stem"].startswith("M" * 200)
    assert sorted(record["outputs"]) == [f"{record['stem']}.{x}" for x in FORMATS]
    assert transcript(big_run, record["stem"])["segments"]


# ---------------------------------------------------------------------------- OUTDIR's state

@pytest.mark.parametrize("number, why", [(i + 2, why) for i, (_, why) in enumerate(MANIFEST_JUNK)],
                         ids=["binary", "path-type", "outputs-type", "list", "stem-escape", "timings-type",
                              "cut-short"])
def test_corrupt_manifest_line_is_skipped_and_repaired(big_run, number, why):
    warning = [line for line in lines(big_run["stderr"], "warning") if f"line {number} skipped" in line]
    assert len(warning) == 1 and why in warning[0], big_run["stderr"]
    text = (big_run["out"] / MANIFEST_NAME).read_text(encoding="utf-8")  # repaired: every line a record
    kept = records(big_run["out"])
    assert len(text.splitlines()) == len(kept) == len(GOOD) + len(BAD) + len(HOSTILE) + 1
    assert kept["old.mp4"] == OLD_RECORD  # another input's valid record survives the repair
    assert not (big_run["out"] / "z.json").exists() and "z.mp4" not in kept


def test_only_our_dead_temp_files_are_removed(big_run):
    out = big_run["out"]
    assert (out / ".important.tmp").read_text() == "a user's file"
    assert (out / ".notes.txt.tmp").read_text() == "a user's file"
    assert not (out / big_run["dead"]).exists()
    assert (out / big_run["live"]).exists()  # a live run's file is not ours to take
    assert not (out / LOCK_NAME).exists()  # released at the end


def test_second_run_on_a_held_outdir_is_refused(big_run):
    second = big_run["second"]
    assert second.returncode == 2, second.stderr
    assert second.stderr.strip().splitlines() == [
        f"toolkit: error: another run holds {big_run['out']} (pid {big_run['proc'].pid}); wait for it to finish, "
        "or write to another folder"]


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


def test_report_reports_mistyped_transcripts_and_builds_the_rest(big_run, tmp_path, capsys):
    good = transcript(big_run, "ref")
    shutil.copy(big_run["out"] / "ref.json", tmp_path / "good.json")
    string_segment = {**good, "segments": ["a segment as a string"]}
    number_text = {**good, "segments": [{**good["segments"][0], "text": 42}]}
    (tmp_path / "string segment.json").write_text(json.dumps(string_segment), encoding="utf-8")
    (tmp_path / "number text.json").write_text(json.dumps(number_text), encoding="utf-8")
    assert cli_main(["report", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    errors = lines(captured.err, "error")
    assert len(errors) == 2 and all("unreadable transcript" in e for e in errors), captured.err
    assert any("/string segment.json: " in e for e in errors) and any("/number text.json: " in e for e in errors)
    assert (tmp_path / "good.html").is_file() and (tmp_path / "index.html").is_file()
    assert not (tmp_path / "number text.html").exists() and not (tmp_path / "string segment.html").exists()
    assert (tmp_path / "index.html").read_text(encoding="utf-8").count("unreadable transcript") == 2


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
        proc = start_cli(two_clips, "-o", out, *FAST[:-1], stderr=err)  # with the bar, which shows "1/2"
        wait_for(lambda: "1/2" in errors.read_text() or proc.poll() is not None, 180, "a.wav counted")
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
