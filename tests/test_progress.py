"""Progress inside a file: the library's one hook, and the CLI's bar over it."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from toolkit.progress import LABELS, STAGES

from .conftest import SAMPLES

# "azeri_music.mp4: transcribing 12/16 s  58% |█████▊    | [00:03<00:02]"
FILE_STATE = re.compile(r"^(?P<name>\S+): (?P<label>[a-z ]+) (?P<done>\d+)/(?P<total>\d+) s +(?P<share>\d+)% "
                        r"\|.*\| \[(?P<elapsed>[\d:]+)<(?P<eta>[\d:?]+)\]")
WHOLE_STATE = re.compile(r"^toolkit: (?P<done>[\d.]+)/(?P<total>\d+) files \|.*\| \[[\d:]+<[\d:?]+\]")


def test_every_stage_reports_seconds_of_media_in_order(run_pipeline):
    import toolkit

    states: list[tuple[str, float, float]] = []
    transcript = toolkit.transcribe(SAMPLES / "real_voice_mixed.mp4", progress=lambda *s: states.append(s))
    stages = list(dict.fromkeys(stage for stage, _, _ in states))
    assert stages == list(STAGES), stages  # every stage, translation and voices included, in order
    duration = transcript.media.duration
    for stage in STAGES:
        mine = [(done, total) for s, done, total in states if s == stage]
        assert all(0 <= done <= total <= duration + 0.1 for done, total in mine), (stage, mine)
        assert [d for d, _ in mine] == sorted(d for d, _ in mine), (stage, mine)  # never backwards
        assert mine[-1][0] == mine[-1][1] > 0, (stage, mine)  # ends at its total
    # listening changes nothing
    same = run_pipeline("real_voice_mixed")
    assert [(s.text, s.speaker) for s in transcript.segments] == [(s.text, s.speaker) for s in same.segments]


def _states(stderr: str, pattern: re.Pattern) -> list[dict]:
    return [m.groupdict() for part in re.split(r"[\r\n]", stderr) if (m := pattern.match(part.strip()))]


def test_cli_bar_moves_inside_each_file_and_over_the_batch(tmp_path):
    """tqdm writes every update, terminal or not: the states are read from stderr."""
    proc = subprocess.run([sys.executable, "-m", "toolkit", "transcribe", str(SAMPLES / "azeri_music.mp4"),
                           str(SAMPLES / "russian_two_speakers.mp4"), "-o", str(tmp_path), "--formats", "json"],
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "TOOLKIT_OFFLINE": "1", "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    files = _states(proc.stderr, FILE_STATE)
    for name, duration in (("azeri_music.mp4", 18.2), ("russian_two_speakers.mp4", 35.0)):
        mine = [s for s in files if s["name"] == name]
        distinct = {(s["label"], s["done"], s["share"]) for s in mine}
        assert len(distinct) >= 5, mine  # the bar visibly moves inside one file
        labels = list(dict.fromkeys(s["label"] for s in mine))
        assert set(labels) <= set(LABELS.values()) and {"extracting", "transcribing", "translating"} <= set(labels)
        assert labels.index("extracting") < labels.index("transcribing") < labels.index("voices")
        shares = [int(s["share"]) for s in mine]
        assert shares == sorted(shares) and shares[-1] >= 90, shares  # one share of the file's work, forward only
        assert all(int(s["done"]) <= int(s["total"]) <= duration + 1 for s in mine)
        assert any(s["eta"] != "?" for s in mine)  # an ETA once the file is under way
    whole = _states(proc.stderr, WHOLE_STATE)
    counts = [float(s["done"]) for s in whole]
    assert {s["total"] for s in whole} == {"2"} and counts == sorted(counts)
    assert any(0 < c < 1 for c in counts) and any(1 < c < 2 for c in counts)  # inside the first file, the second
    assert "toolkit: 2 done, 0 failed" in proc.stderr
