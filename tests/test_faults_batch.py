"""Fault injection, kept as a suite (part 1): one CLI batch over every bad input and every clip
that needs a transcription, into an OUTDIR with a damaged manifest and temporary files, while a
second run tries the same OUTDIR. Each test checks one case of what a user sees and what is left:
the exit status, one stderr line naming the file and the reason, outputs complete or absent,
the manifest consistent, no stray temporary files. Damaged clips are compared with the same
clip undamaged, in the same batch.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import time
from pathlib import Path

import pytest

from toolkit.cli import main as cli_main
from toolkit.manifest import LOCK_NAME, MANIFEST_NAME

from .faults import FAST, FORMATS, assert_consistent, cli, clips, dead_pid, lines, records, start_cli, wait_for

__all__ = ["clips"]  # the shared fixture, imported for pytest to find
FORGED = "toolkit: 9 done, 0 failed, 0 skipped (up to date), outputs in x"
LONG_KEPT, LONG_CUT = "L" * 250, "M" * 251  # stems: 250 bytes + ".html" fits in 255; 251 does not


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

