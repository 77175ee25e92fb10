"""Voice prints in real transcripts, naming speakers from a voice library, and people across a batch.

Real pipeline runs on the public samples, where the truth labels A-E mean the same voice in every
file (samples/README.md); the four default runs are shared with test_pipeline through `run_pipeline`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from toolkit.batch import transcribe_many
from toolkit.pipeline import PipelineOptions
from toolkit.transcript import Transcript
from toolkit.voice_library import VoiceLibrary
from toolkit.voices import MATCH_THRESHOLD, WEAK_SECONDS, match_speakers, voice_from_source

from .conftest import SAMPLES, truth
from .test_report import CHROMIUM, CHROMIUM_ARGS, needs_browser

PUBLIC = ["russian_two_speakers", "confession_mixed", "real_voice_mixed", "azeri_music"]
ENV = {**os.environ, "TOOLKIT_OFFLINE": "1"}


def truth_labels(name: str, transcript: Transcript) -> dict[str, str]:
    """Hypothesis speaker -> the truth label it overlaps most."""
    overlap: dict[str, dict[str, float]] = {}
    for seg in transcript.segments:
        for turn in truth(name)["turns"]:
            o = min(seg.end, turn["end"]) - max(seg.start, turn["start"])
            if o > 0:
                by = overlap.setdefault(seg.speaker, {})
                by[turn["speaker"]] = by.get(turn["speaker"], 0.0) + o
    return {speaker: max(by, key=by.get) for speaker, by in overlap.items()}


@pytest.fixture(scope="module")
def transcripts(run_pipeline) -> dict[str, Transcript]:
    return {name: run_pipeline(name, diarize=True) for name in PUBLIC}


def test_every_speaker_keeps_a_voice_print(transcripts, tmp_path):
    for name, transcript in transcripts.items():
        assert "voices" in transcript.timings
        speakers = transcript.speakers
        assert speakers and all(s.voice is not None for s in speakers), name
        for s in speakers:
            assert s.voice.encoder == "ge2e" and s.voice.embedding.shape == (256,)
            assert abs(float(np.linalg.norm(s.voice.embedding)) - 1) < 1e-5
            # the print rests on the speaker's turns, which the segments' text spans (give or take pauses)
            assert 0.5 * s.total_speech <= s.voice.seconds <= s.total_speech + 3.0, (name, s.id)
        path = tmp_path / f"{name}.json"
        transcript.save(path)
        data = json.loads(path.read_text(encoding="utf-8"))
        assert all(len(s["voice"]["embedding"]) == 256 and "name" not in s for s in data["speakers"])
        back = Transcript.load(path)
        for s in speakers:  # rounded to 4 decimals: the print survives the JSON
            assert float(back.voices[s.id].embedding @ s.voice.embedding) > 0.9999
            assert back.voices[s.id].seconds == pytest.approx(s.voice.seconds, abs=1e-3)


def test_one_enrolled_file_names_its_voice_everywhere_and_nobody_else(transcripts, tmp_path):
    """Each voice heard in two or more public samples (A, B, C) is enrolled from each file it is in,
    through a library and a transcript SOURCE; in every other file exactly its speaker is named."""
    labels = {name: truth_labels(name, t) for name, t in transcripts.items()}
    enrolled = 0
    for voice in ("A", "B", "C"):
        homes = [name for name in PUBLIC if voice in labels[name].values()]
        assert len(homes) >= 2, voice
        for home in homes:
            path = tmp_path / f"{home}.json"
            transcripts[home].save(path)
            speaker = next(s for s, label in labels[home].items() if label == voice)
            with VoiceLibrary(tmp_path / f"{voice}-{home}.sqlite", create=True) as library:
                library.add(f"voice {voice}", voice_from_source(f"{path}#{speaker}"), f"{path}#{speaker}")
                known = library.voices("ge2e")
            for other in PUBLIC:
                if other == home:
                    continue
                named = match_speakers(transcripts[other].voices, known)
                expected = {s for s, label in labels[other].items() if label == voice}
                assert set(named) == expected, (voice, home, other, {s: m.score for s, m in named.items()})
                for match in named.values():
                    assert match.score >= MATCH_THRESHOLD == match.threshold
            enrolled += 1
    assert enrolled == 8


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "toolkit", *map(str, args)], capture_output=True, text=True,
                          timeout=600, env=ENV)


def test_transcribe_with_a_library_names_speakers_in_every_output(transcripts, tmp_path):
    """The CLI end to end: a voice added from a transcript's speaker, another from a media span;
    `transcribe --voices` names both in real_voice_mixed and leaves its real human voice (E) alone."""
    lib = tmp_path / "voices.sqlite"
    source = tmp_path / "russian_two_speakers.json"
    transcripts["russian_two_speakers"].save(source)
    a = next(s for s, label in truth_labels("russian_two_speakers", transcripts["russian_two_speakers"]).items()
             if label == "A")
    added = run_cli("voices", "add", "Rəşid Məmmədov", f"{source}#{a}", "--voices", lib)
    assert added.returncode == 0, added.stderr
    added = run_cli("voices", "add", "Aydın", f"{SAMPLES / 'azeri_music.mp4'}@0:00-0:18", "--voices", lib)
    assert added.returncode == 0 and "15." in added.stdout, added.stderr  # ~15.7 s of speech in that span
    listed = run_cli("voices", "list", "--voices", lib)
    assert [line.split("\t")[0] for line in listed.stdout.splitlines()] == ["Aydın", "Rəşid Məmmədov"]

    out = tmp_path / "out"
    proc = run_cli("transcribe", SAMPLES / "real_voice_mixed.mp4", "-o", out, "--voices", lib, "--formats", "all",
                   "--translate-to", "none", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    data = json.loads((out / "real_voice_mixed.json").read_text(encoding="utf-8"))
    labels = truth_labels("real_voice_mixed", Transcript.from_dict(data))
    names = {labels[s["id"]]: s.get("name") for s in data["speakers"]}
    assert names == {"A": "Rəşid Məmmədov", "C": "Aydın", "E": None}
    for s in data["speakers"]:
        if s.get("name"):
            assert s["match_score"] >= s["match_threshold"] == MATCH_THRESHOLD
            assert s.get("match_weak", False) == (s["voice"]["seconds"] < WEAK_SECONDS)
    unnamed = next(s["id"] for s in data["speakers"] if not s.get("name"))
    for ext in ("srt", "vtt", "txt", "tsv", "html"):
        text = (out / f"real_voice_mixed.{ext}").read_text(encoding="utf-8")
        assert "Rəşid Məmmədov" in text and "Aydın" in text and unnamed in text, ext
    assert "<v Rəşid Məmmədov>" in (out / "real_voice_mixed.vtt").read_text(encoding="utf-8")
    rttm = (out / "real_voice_mixed.rttm").read_text(encoding="utf-8").splitlines()
    assert {line.split()[7] for line in rttm} == {"Rəşid_Məmmədov", "Aydın", unnamed}  # one field, no spaces
    people = json.loads((out / "speakers.json").read_text(encoding="utf-8"))
    assert sorted(i["name"] or "" for i in people["identities"]) == ["", "Aydın", "Rəşid Məmmədov"]


def test_voice_command_errors(tmp_path):
    missing = tmp_path / "none.sqlite"
    proc = run_cli("transcribe", SAMPLES / "azeri_music.mp4", "-o", tmp_path / "out", "--voices", missing)
    assert proc.returncode == 2 and "no such voice library" in proc.stderr and not (tmp_path / "out").exists()
    proc = run_cli("voices", "add", "Rasim", "clip.mp4", "--voices", missing)
    assert proc.returncode == 2 and "clip.json#SPEAKER_01" in proc.stderr and not missing.exists()
    proc = run_cli("voices", "add", "Rasim", f"{SAMPLES / 'azeri_music.mp4'}@30-20", "--voices", missing)
    assert proc.returncode == 2 and "must end after it starts" in proc.stderr


@pytest.fixture(scope="module")
def batch(tmp_path_factory) -> Path:
    """A batch of two copies of one sample: one voice in two videos."""
    folder, out = tmp_path_factory.mktemp("videos"), tmp_path_factory.mktemp("outputs")
    for name in ("first.mp4", "second.mp4"):
        shutil.copy(SAMPLES / "azeri_music.mp4", folder / name)
    options = PipelineOptions(diarize=False, translate_to=None)
    results = list(transcribe_many([folder], out, options, formats=("json", "html")))
    assert [r.status for r in results] == ["done", "done"]
    return out


def test_batch_links_people_and_indexes_them(batch):
    people = json.loads((batch / "speakers.json").read_text(encoding="utf-8"))
    assert len(people["identities"]) == 1
    person = people["identities"][0]
    assert person["id"] == "PERSON_001" and person["files"] == 2 and not person["weak"]
    assert {(a["file"], a["speaker"]) for a in person["appearances"]} == {("first.json", "SPEAKER_00"),
                                                                          ("second.json", "SPEAKER_00")}
    assert all(a["similarity"] > 0.99 for a in person["appearances"])  # the same audio twice
    index = (batch / "index.html").read_text(encoding="utf-8")
    assert '<section id="people">' in index and "PERSON_001" in index
    first = person["appearances"][0]["first"]
    assert f'href="first.html#t={first:g}"' in index and "1 heard in more than one video" in index


def test_link_command(batch, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(batch, out)
    (out / "speakers.json").unlink()
    proc = run_cli("link", out)
    assert proc.returncode == 0, proc.stderr
    assert "1 people over 2 transcript(s), 1 in more than one" in proc.stdout
    assert json.loads((out / "speakers.json").read_text(encoding="utf-8"))["identities"][0]["files"] == 2
    assert run_cli("link", tmp_path / "missing").returncode == 2
    assert "floor" in run_cli("link", out, "--threshold", "0.5", "--floor", "0.7").stderr


@needs_browser
def test_an_appearance_opens_its_report_at_the_speakers_first_words(batch):
    from playwright.sync_api import sync_playwright

    person = json.loads((batch / "speakers.json").read_text(encoding="utf-8"))["identities"][0]
    second = next(a for a in person["appearances"] if a["file"] == "second.json")
    transcript = Transcript.load(batch / "second.json")
    later = transcript.segments[-1].start  # any time works; the last segment shows it is not the start
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto((batch / "index.html").as_uri())
            href = page.locator("#people a").nth(1).get_attribute("href")
            assert href == f"second.html#t={second['first']:g}"
            page.goto(f"{(batch / 'second.html').as_uri()}#t={later:g}")
            deadline = time.monotonic() + 15
            while page.evaluate("document.getElementById('media').readyState") < 1:
                assert time.monotonic() < deadline
                page.wait_for_timeout(50)
            assert abs(page.evaluate("document.getElementById('media').currentTime") - later) < 0.05
            current = page.evaluate("document.querySelector('tr.seg.current')?.dataset.start")
            assert current is not None and abs(float(current) - later) < 1e-3
        finally:
            browser.close()
