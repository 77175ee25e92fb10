"""Linking speakers across a collection: the clustering's guarantees, speakers.json, and the
1,000-transcript benchmark (synthetic voice prints with GE2E-like statistics)."""

from __future__ import annotations

import json
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from toolkit.linking import CACHE_NAME, SPEAKERS_NAME, LinkOptions, cluster, link_collection, read_speakers_file
from toolkit.transcript import MediaInfo, Segment, Transcript, VoicePrint, Word
from toolkit.voice_library import VoiceLibrary
from toolkit.voices import WEAK_SECONDS, unit

DIM = 256


def people(n: int, rng: np.random.Generator) -> np.ndarray:
    # GE2E embeddings are non-negative (ReLU, then L2): two different voices sit at cosine ~0.5-0.8
    return unit(np.abs(rng.standard_normal((n, DIM))))


def appearance(center: np.ndarray, seconds: float, rng: np.random.Generator) -> np.ndarray:
    # scatter falling with speech, as window centroids do; as measured on prints of one voice
    # recorded alike (calibrate_voices.py): ~0.97 between two long prints, ~0.94 between 3 s ones
    sigma = 0.010 * np.sqrt(1.0 + 5.0 / seconds)
    return unit(center + sigma * rng.standard_normal(DIM))


def transcript(name: str, voices: dict[str, VoicePrint], segments_per_speaker: int = 1) -> Transcript:
    segments = []
    t = 0.0
    for _ in range(segments_per_speaker):
        for speaker in voices:
            words = [Word(t + 0.3 * w, t + 0.3 * w + 0.25, f" слово{w}", 0.9) for w in range(8)]
            segments.append(Segment(t, t + 2.5, " ".join(w.word for w in words), "ru", speaker, 0.95, words,
                                    {"en": "a word"}))
            t += 3.0
    return Transcript(MediaInfo(f"videos/{name}.mp4", duration=t), segments, ["az", "ru"], voices=voices)


def with_print(embedding: np.ndarray, seconds: float = 20.0) -> VoicePrint:
    return VoicePrint(unit(embedding), seconds, "ge2e")


def at_cosine(base: np.ndarray, cosine: float, rng: np.random.Generator) -> np.ndarray:
    """A unit vector at exactly `cosine` from unit `base`."""
    other = rng.standard_normal(DIM)
    other -= (other @ base) * base
    return unit(cosine * base + np.sqrt(1 - cosine ** 2) * unit(other))


def test_two_speakers_of_one_file_are_never_one_person(tmp_path):
    e = people(1, np.random.default_rng(0))[0]
    transcript("a", {"SPEAKER_00": with_print(e), "SPEAKER_01": with_print(e)}).save(tmp_path / "a.json")
    transcript("b", {"SPEAKER_00": with_print(e)}).save(tmp_path / "b.json")
    document = read_speakers_file(link_collection(tmp_path))
    spans = sorted(len(i["appearances"]) for i in document["identities"])
    assert spans == [1, 2]  # b joins one of a's two speakers, never both


def in_plane(degrees: float, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.cos(np.radians(degrees)) * u + np.sin(np.radians(degrees)) * v


def test_no_chaining_through_an_intermediate():
    """a~b and b~c are alike, a~c is not: a and c never become one person, however b links them."""
    u, v = unit(np.eye(DIM)[:2])
    options = LinkOptions(threshold=0.90, floor=0.88)
    # far apart: a~b = b~c = 0.92, a~c = 0.69
    a, b, c = in_plane(0, u, v), in_plane(23.1, u, v), in_plane(46.2, u, v)
    labels = cluster(np.stack([a, b, c]), np.arange(3), np.full(3, 30.0), options)
    assert labels[0] != labels[2]
    # a mean that passes, a pair that does not: a~b = b~c = 0.967, a~c = 0.87; the mean of c to
    # {a, b} is 0.918 >= threshold, but a~c is under the floor
    a, b, c = in_plane(0, u, v), in_plane(14.75, u, v), in_plane(29.5, u, v)
    assert float(a @ c) < options.floor < options.threshold < (float(a @ c) + float(b @ c)) / 2
    labels = cluster(np.stack([a, b, c]), np.arange(3), np.full(3, 30.0), options)
    assert labels[0] != labels[2]
    # all pairs near: one person
    a, b, c = in_plane(0, u, v), in_plane(8, u, v), in_plane(16, u, v)
    assert len(set(cluster(np.stack([a, b, c]), np.arange(3), np.full(3, 30.0), options))) == 1


def test_average_keeps_a_recurring_voice_together():
    """Twelve appearances of one voice whose pairs scatter around the threshold stay one person
    where complete linkage at the threshold would split them."""
    rng = np.random.default_rng(5)
    center = people(1, rng)[0]
    prints = np.stack([at_cosine(center, 0.952, rng) for _ in range(12)])  # pairs at ~0.906 +- noise
    sims = prints @ prints.T
    assert sims[np.triu_indices(12, 1)].min() < 0.90 < sims[np.triu_indices(12, 1)].mean()
    options = LinkOptions(threshold=0.90, floor=0.88)
    assert len(set(cluster(prints, np.arange(12), np.full(12, 30.0), options))) == 1
    complete = LinkOptions(threshold=0.90, floor=0.90)
    assert len(set(cluster(prints, np.arange(12), np.full(12, 30.0), complete))) > 1


def test_weak_prints_need_more_and_are_marked(tmp_path):
    rng = np.random.default_rng(2)
    long = people(1, rng)[0]
    transcript("long", {"SPEAKER_00": with_print(long, 60.0)}).save(tmp_path / "long.json")
    near = at_cosine(long, 0.88, rng)  # passes the threshold (0.86), not threshold + margin (0.90)
    close = at_cosine(long, 0.95, rng)
    transcript("short1", {"SPEAKER_00": with_print(near, 2.0)}).save(tmp_path / "short1.json")
    transcript("short2", {"SPEAKER_00": with_print(close, 2.0)}).save(tmp_path / "short2.json")
    transcript("old", {"SPEAKER_00": with_print(close, 2.0)}).to_dict()
    (tmp_path / "old.json").write_text(json.dumps({**transcript("old", {}).to_dict(), "speakers": [
        {"id": "SPEAKER_00", "total_speech": 2.5}]}))  # written before voice prints existed

    options = LinkOptions(threshold=0.86, floor=0.86, weak_margin=0.04)
    document = read_speakers_file(link_collection(tmp_path, options=options))
    by_file = {a["file"]: i for i in document["identities"] for a in i["appearances"]}
    assert by_file["long.json"] is by_file["short2.json"] and by_file["short1.json"] is not by_file["long.json"]
    joined = by_file["long.json"]
    assert joined["weak"] and joined["files"] == 2
    assert {a["file"]: a["weak"] for a in joined["appearances"]} == {"long.json": False, "short2.json": True}
    assert all(a["similarity"] >= 0.90 for a in joined["appearances"])
    assert document["threshold"] == 0.86 and document["weak_margin"] == 0.04
    assert document["skipped"] == [{"file": "old.json", "reason": "no voice prints (transcribed before voices "
                                                                  "were kept)"}]


def test_identities_take_library_names(tmp_path):
    rng = np.random.default_rng(3)
    rasim, elvin = people(2, rng)
    for k in range(3):
        transcript(f"v{k}", {"SPEAKER_00": with_print(appearance(rasim, 20.0, rng)),
                             "SPEAKER_01": with_print(appearance(elvin, 20.0, rng))}).save(tmp_path / f"v{k}.json")
    with VoiceLibrary(tmp_path / "lib.sqlite", create=True) as library:
        library.add("Rasim", with_print(appearance(rasim, 30.0, rng), 30.0), "enrolled")
    document = read_speakers_file(link_collection(tmp_path, tmp_path / "lib.sqlite"))
    assert sorted((i["name"] or "", i["files"]) for i in document["identities"]) == [("", 3), ("Rasim", 3)]
    named = next(i for i in document["identities"] if i["name"])
    assert named["name_score"] >= document["naming_threshold"]
    assert {a["speaker"] for a in named["appearances"]} == {"SPEAKER_00"}


def synthetic_collection(folder: Path, files: int, rng: np.random.Generator) -> dict[tuple[str, str], int]:
    """`files` transcripts of 1-5 speakers drawn from 800 people (a few recur often); returns the truth."""
    crowd = people(800, rng)
    weights = 1.0 / np.arange(1, 801) ** 0.8
    truth = {}
    for f in range(files):
        count = int(rng.integers(1, 6))
        who = rng.choice(800, size=count, replace=False, p=weights / weights.sum())
        voices = {}
        for k, person in enumerate(who):
            seconds = float(rng.choice([3.0, 12.0, 40.0, 120.0]))
            voices[f"SPEAKER_{k:02d}"] = VoicePrint(appearance(crowd[person], seconds, rng), seconds, "ge2e")
            truth[(f"clip{f:04d}.json", f"SPEAKER_{k:02d}")] = int(person)
        transcript(f"clip{f:04d}", voices, segments_per_speaker=6).save(folder / f"clip{f:04d}.json")
    return truth


def pairwise(document: dict, truth: dict[tuple[str, str], int], strong: bool = False) -> tuple[float, float]:
    """Pairwise precision and recall over cross-file pairs (`strong`: of prints on >= WEAK_SECONDS only)."""
    found = {(a["file"], a["speaker"]): i["id"] for i in document["identities"] for a in i["appearances"]}
    seconds = {(a["file"], a["speaker"]): a["seconds"] for i in document["identities"] for a in i["appearances"]}
    keys = sorted(k for k in truth if not strong or seconds[k] >= WEAK_SECONDS)
    person = np.array([truth[k] for k in keys])
    ident = np.unique([found[k] for k in keys], return_inverse=True)[1]
    file_of = np.unique([k[0] for k in keys], return_inverse=True)[1]
    cross = file_of[:, None] != file_of[None, :]
    same_person = (person[:, None] == person[None, :]) & cross
    same_ident = (ident[:, None] == ident[None, :]) & cross
    tp = int((same_person & same_ident).sum())
    return tp / max(int(same_ident.sum()), 1), tp / max(int(same_person.sum()), 1)


@pytest.fixture(scope="module")
def thousand(tmp_path_factory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("collection")
    return folder, synthetic_collection(folder, 1000, np.random.default_rng(7))


def test_links_1000_transcripts_fast_and_right(thousand):
    folder, truth = thousand
    assert 2500 <= len(truth) <= 3500
    started = time.perf_counter()
    path = link_collection(folder)
    seconds = time.perf_counter() - started
    document = read_speakers_file(path)
    precision, recall = pairwise(document, truth)
    strong_precision, strong_recall = pairwise(document, truth, strong=True)
    print(f"linked {len(truth)} speakers of 1000 transcripts in {seconds:.2f} s: P {precision:.4f} R {recall:.4f}; "
          f"prints on >= {WEAK_SECONDS:g} s: P {strong_precision:.4f} R {strong_recall:.4f}")
    assert seconds < 10.0
    assert precision >= 0.99 and strong_recall >= 0.95
    assert recall >= 0.8  # 3 s prints are weak: they must pass a higher bar, and some are left alone
    assert path == folder / SPEAKERS_NAME

    started = time.perf_counter()  # again, as after the next batch: transcripts come from the cache
    assert read_speakers_file(link_collection(folder))["identities"] == document["identities"]
    print(f"relinked from the cache in {time.perf_counter() - started:.2f} s")


def test_relinking_sees_changed_transcripts(tmp_path):
    rng = np.random.default_rng(4)
    rasim, elvin = people(2, rng)
    transcript("a", {"SPEAKER_00": with_print(rasim)}).save(tmp_path / "a.json")
    transcript("b", {"SPEAKER_00": with_print(rasim)}).save(tmp_path / "b.json")
    assert [i["files"] for i in read_speakers_file(link_collection(tmp_path))["identities"]] == [2]
    assert (tmp_path / CACHE_NAME).is_file()
    transcript("b", {"SPEAKER_00": with_print(elvin), "SPEAKER_01": with_print(rasim)}).save(tmp_path / "b.json")
    document = read_speakers_file(link_collection(tmp_path))
    assert sorted((i["files"], len(i["appearances"])) for i in document["identities"]) == [(1, 1), (2, 2)]
    (tmp_path / "a.json").unlink()
    assert len(read_speakers_file(link_collection(tmp_path))["identities"]) == 2


def test_linking_memory_is_bounded(thousand):
    """The clustering of ~3,000 prints holds O(n^2) distances (~110 MB at n = 3,000); with
    max_prints it is linked in rounds and stays near that round's size, at little cost in quality."""
    folder, truth = thousand
    from toolkit.linking import read_appearances

    appearances, _ = read_appearances(folder)
    embeddings = np.stack([a.voice.embedding for a in appearances])
    files = np.unique([a.file for a in appearances], return_inverse=True)[1]
    seconds = np.array([a.seconds for a in appearances])
    peaks = {}
    labels = {}
    for cap in (4000, 1000):
        tracemalloc.start()
        labels[cap] = cluster(embeddings, files, seconds, LinkOptions(max_prints=cap))
        peaks[cap] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    print(f"peak MiB: {peaks}")
    n = len(appearances)
    assert peaks[4000] < 14 * n * n / 2**20 + 20  # a few n^2 float32/float64 arrays, nothing bigger
    assert peaks[1000] < 0.3 * peaks[4000]
    person = np.array([truth[(a.file, a.speaker)] for a in appearances])
    for cap, found in labels.items():
        same = (found[:, None] == found[None, :]) & (files[:, None] != files[None, :])
        assert (person[:, None] == person[None, :])[same].mean() >= 0.99, cap  # precision holds in rounds
