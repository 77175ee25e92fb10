"""Diarization on the real samples (no mocks): counts, DER, forced counts, turn invariants,
splits inside one region, and the numpy GE2E encoder against resemblyzer's own output."""

from __future__ import annotations

import json
from itertools import permutations
from pathlib import Path

import numpy as np
import pytest

from toolkit.diarize import DiarizationOptions, SpeakerTurn, diarize
from toolkit.speaker_encoder import GE2E_PATH, Ge2eEncoder, load_speaker_encoder

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_DIRS = [ROOT / "samples", ROOT.parent / "shared" / "samples"]
NAMES = ["confession_mixed", "real_voice_mixed", "russian_two_speakers", "azeri_music"]
FRAME, COLLAR = 0.01, 0.25  # as the shared bench scorer


def _sample(name: str) -> Path:
    for folder in SAMPLE_DIRS:
        if (folder / f"{name}.mp4").is_file():
            return folder / name
    pytest.skip(f"sample {name} not found")


def der(truth_turns: list[dict], duration: float, turns: list[SpeakerTurn]) -> float:
    """Frame DER with a 0.25 s collar around truth boundaries and the best one-to-one mapping."""
    n = int(duration / FRAME) + 1
    ref = np.full(n, -1)
    scored = np.ones(n, dtype=bool)
    names = sorted({t["speaker"] for t in truth_turns})
    for t in truth_turns:
        ref[int(t["start"] / FRAME):min(n, int(t["end"] / FRAME))] = names.index(t["speaker"])
        for edge in (t["start"], t["end"]):
            scored[max(0, int((edge - COLLAR) / FRAME)):min(n, int((edge + COLLAR) / FRAME))] = False
    hyp = np.full(n, -1)
    labels = sorted({t.speaker for t in turns})
    for t in turns:
        hyp[max(0, int(t.start / FRAME)):min(n, int(t.end / FRAME))] = labels.index(t.speaker)
    ref, hyp = ref[scored], hyp[scored]
    total = int(np.sum(ref >= 0))
    miss = int(np.sum((ref >= 0) & (hyp < 0)))
    fa = int(np.sum((ref < 0) & (hyp >= 0)))
    both = (ref >= 0) & (hyp >= 0)
    conf = np.zeros((len(names), len(labels)), dtype=int)
    np.add.at(conf, (ref[both], hyp[both]), 1)
    best = 0
    small = conf if len(names) <= len(labels) else conf.T  # rows <= columns for permutations
    for perm in permutations(range(small.shape[1]), small.shape[0]):
        best = max(best, sum(small[i, j] for i, j in enumerate(perm)))
    return (miss + fa + int(both.sum()) - best) / total


@pytest.fixture(scope="module")
def samples():
    from faster_whisper import decode_audio

    from toolkit.vad import speech_regions

    out = {}
    for name in NAMES:
        base = _sample(name)
        audio = decode_audio(str(base.with_suffix(".mp4")))
        truth = json.loads(base.with_suffix(".truth.json").read_text(encoding="utf-8"))
        out[name] = (audio, speech_regions(audio), truth)
    return out


@pytest.fixture(scope="module")
def results(samples):
    return {name: diarize(audio, regions) for name, (audio, regions, _) in samples.items()}


def _check_invariants(turns: list[SpeakerTurn], regions: list[tuple[float, float]]) -> None:
    assert all(t.end > t.start for t in turns)
    assert all(a.end <= b.start + 1e-9 for a, b in zip(turns, turns[1:], strict=False)), "sorted and disjoint"
    for t in turns:
        assert any(s - 1e-6 <= t.start and t.end <= e + 1e-6 for s, e in regions), f"{t} outside the regions"
    covered = sum(t.end - t.start for t in turns)
    assert covered == pytest.approx(sum(e - s for s, e in regions), abs=1e-6), "turns cover the regions"
    seen: list[str] = []
    for t in turns:
        if t.speaker not in seen:
            seen.append(t.speaker)
    assert seen == [f"SPEAKER_{i:02d}" for i in range(len(seen))], "labels in order of first appearance"


@pytest.mark.parametrize("name", NAMES)
def test_count_and_der(name, samples, results):
    audio, regions, truth = samples[name]
    turns = results[name]
    n_truth = len({t["speaker"] for t in truth["turns"]})
    assert len({t.speaker for t in turns}) == n_truth
    assert der(truth["turns"], truth["duration"], turns) <= 0.10
    _check_invariants(turns, regions)


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_num_speakers_is_exact(n, samples):
    audio, regions, _ = samples["confession_mixed"]
    turns = diarize(audio, regions, DiarizationOptions(num_speakers=n))
    assert len({t.speaker for t in turns}) == n
    _check_invariants(turns, regions)


def test_min_max_speakers(samples):
    audio, regions, _ = samples["real_voice_mixed"]
    assert len({t.speaker for t in diarize(audio, regions, DiarizationOptions(max_speakers=2))}) == 2
    assert len({t.speaker for t in diarize(audio, regions, DiarizationOptions(min_speakers=4))}) == 4


def test_change_without_pause_is_split(samples):
    """The russian sample with its pauses cut out, given as one region: both voices, at the right times."""
    audio, regions, truth = samples["russian_two_speakers"]
    pieces, turns_truth, t0 = [], [], 0.0
    for s, e in regions:
        piece = audio[int(s * 16000):int(e * 16000)]
        overlap = {}
        for u in truth["turns"]:
            overlap[u["speaker"]] = overlap.get(u["speaker"], 0.0) + max(0.0, min(e, u["end"]) - max(s, u["start"]))
        turns_truth.append({"speaker": max(overlap, key=overlap.get), "start": t0, "end": t0 + len(piece) / 16000})
        pieces.append(piece)
        t0 += len(piece) / 16000
    spliced = np.concatenate(pieces)
    region = [(0.0, len(spliced) / 16000)]
    progress: list[tuple[str, float, float]] = []
    turns = diarize(spliced, region, progress=lambda *state: progress.append(state))
    assert len({t.speaker for t in turns}) == 2
    assert der(turns_truth, region[0][1], turns) <= 0.10
    assert all(t.end - t.start >= 1.0 for t in turns)
    _check_invariants(turns, region)
    done = [d for _, d, _ in progress]  # seconds of speech, up to all of it
    assert done == sorted(done) and progress[-1] == ("diarize", region[0][1], region[0][1])


@pytest.mark.parametrize("who, seconds", [("C", 2.0), ("B", 3.0)])
def test_one_short_sentence_is_a_speaker(who, seconds, samples):
    """A voice heard in one short sentence still counts. B is the voice nearest to A (their
    centroids sit at cosine 0.78); a 2 s sentence of B is found only about half of the time."""
    audio, regions, truth = samples["confession_mixed"]
    own = [t for t in truth["turns"] if t["speaker"] == who]
    mid = (own[0]["start"] + own[0]["end"]) / 2
    kept = [r for r in regions if not any(min(r[1], t["end"]) - max(r[0], t["start"]) > 0.5 for t in own)]
    kept = sorted(kept + [(mid - seconds / 2, mid + seconds / 2)])
    turns = diarize(audio, kept)
    assert len({t.speaker for t in turns}) == 4
    lone = [t for t in turns if t.start == mid - seconds / 2]
    assert len(lone) == 1 and sum(t.speaker == lone[0].speaker for t in turns) == 1


def test_edge_cases(samples):
    audio, _, _ = samples["azeri_music"]
    assert diarize(audio, []) == []
    short = diarize(audio, [(1.2, 1.9)])  # shorter than one encoder window
    assert short == [SpeakerTurn(1.2, 1.9, "SPEAKER_00")]


def test_encoder_matches_resemblyzer():
    """Known answer: resemblyzer's torch embeddings of a stored excerpt, saved at conversion time."""
    with np.load(GE2E_PATH) as z:
        audio = z["ref_audio"].astype(np.float32) / 32767
        ref, ref_partials = z["ref_embedding"], z["ref_partials"]
    enc = load_speaker_encoder("ge2e")
    assert isinstance(enc, Ge2eEncoder)
    emb = enc.embed_utterance(audio)
    assert emb.shape == (256,) and abs(float(np.linalg.norm(emb)) - 1) < 1e-5
    assert float(emb @ ref) >= 0.9999
    partials = enc.embed_windows(audio).embeddings
    assert partials.shape == ref_partials.shape
    assert float(np.min(np.sum(partials * ref_partials, axis=1))) >= 0.9999


def test_encoder_registry():
    assert load_speaker_encoder() is load_speaker_encoder("ge2e")
    assert isinstance(load_speaker_encoder(str(GE2E_PATH)), Ge2eEncoder)
    with pytest.raises(ValueError, match="ge2e"):
        load_speaker_encoder("pyannote")
