"""Diarization on the real samples (no mocks): counts, DER with crosstalk scored, forced counts,
turn invariants, changes without a pause, crosstalk, the segmentation model, and the numpy GE2E
encoder against resemblyzer's own output. Each sample is segmented and embedded once
(`speech_map` in conftest); tests re-cluster it with the counts they need."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pyannote.core import Annotation, Timeline
from pyannote.core import Segment as Span
from pyannote.metrics.diarization import DiarizationErrorRate

from toolkit.diarize import Diarization, DiarizationOptions, assign_speakers, diarize, mark_overlaps
from toolkit.segmentation import CHUNK_FRAMES, CHUNK_SAMPLES, POWERSET, load_segmentation_model, segment
from toolkit.speaker_encoder import GE2E_PATH, Ge2eEncoder, load_speaker_encoder
from toolkit.transcript import Segment, SpeakerTurn, Word

from .conftest import truth

NAMES = ["confession_mixed", "real_voice_mixed", "russian_two_speakers", "azeri_music"]
MARGIN = DiarizationOptions().vad_margin_s
PAD = DiarizationOptions().asr_pad_s


def der(truth_turns: list[dict], turns: list[SpeakerTurn]) -> float:
    """pyannote.metrics' DER, overlap counted, with the shared scorer's 0.25 s collar each side."""
    ref, hyp = Annotation(), Annotation()
    for i, t in enumerate(truth_turns):
        ref[Span(t["start"], t["end"]), i] = t["speaker"]
    for i, t in enumerate(turns):
        hyp[Span(t.start, t.end), i] = t.speaker
    end = max([t["end"] for t in truth_turns] + [t.end for t in turns])
    return DiarizationErrorRate(collar=0.5, skip_overlap=False)(ref, hyp, uem=Timeline([Span(0.0, end)]))


@pytest.fixture(scope="module")
def results(speech_map) -> dict[str, Diarization]:
    return {name: assign_speakers(speech_map(name)[2]) for name in NAMES}


def _check_invariants(d: Diarization, regions: list[tuple[float, float]]) -> None:
    ex = d.exclusive
    assert all(t.end > t.start for t in ex + d.turns)
    assert all(a.end <= b.start + 1e-9 for a, b in zip(ex, ex[1:], strict=False)), "exclusive turns sorted, disjoint"
    for t in ex:  # speech only near the VAD's: music and noise far from it are not speech
        assert any(s - MARGIN - PAD - 0.02 <= t.start and t.end <= e + MARGIN + PAD + 0.02 for s, e in regions), t
        assert any(u.speaker == t.speaker and u.start < t.end and t.start < u.end
                   for u in d.turns), "what Whisper decodes is that speaker's turn"
    assert [t.start for t in d.turns] == sorted(t.start for t in d.turns)
    for speaker in d.speakers:
        own = [t for t in d.turns if t.speaker == speaker]
        assert all(a.end < b.start for a, b in zip(own, own[1:], strict=False)), "one speaker's turns are disjoint"
    seen: list[str] = []
    for t in d.turns:
        if t.speaker not in seen:
            seen.append(t.speaker)
    assert seen == [f"SPEAKER_{i:02d}" for i in range(len(seen))], "labels in order of first appearance"
    assert list(d.embeddings) == seen  # one voice print per speaker
    assert all(abs(float(np.linalg.norm(v)) - 1.0) < 1e-4 for v in d.embeddings.values())


@pytest.mark.parametrize("name", NAMES)
def test_count_and_der(name, speech_map, results):
    _, regions, _ = speech_map(name)
    d = results[name]
    turns = truth(name)["turns"]
    assert len(d.speakers) == len({t["speaker"] for t in turns})
    assert der(turns, d.turns) <= 0.05
    assert der(turns, d.exclusive) <= 0.05  # no crosstalk in the samples: both views agree
    _check_invariants(d, regions)


def test_music_is_not_speech(results):
    """azeri_music has a music bed before, between and after the speech: none of it becomes a turn."""
    turns = truth("azeri_music")["turns"]
    spoken = sum(max(0.0, min(t.end, u["end"] + 0.3) - max(t.start, u["start"] - 0.3))
                 for t in results["azeri_music"].turns for u in turns)
    assert sum(t.end - t.start for t in results["azeri_music"].turns) - spoken < 0.3


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_num_speakers_is_exact(n, speech_map):
    _, regions, speech = speech_map("confession_mixed")
    d = assign_speakers(speech, DiarizationOptions(num_speakers=n))
    assert len(d.speakers) == n
    _check_invariants(d, regions)


def test_min_max_speakers(speech_map):
    speech = speech_map("real_voice_mixed")[2]
    assert len(assign_speakers(speech, DiarizationOptions(max_speakers=2)).speakers) == 2
    assert len(assign_speakers(speech, DiarizationOptions(min_speakers=4)).speakers) == 4
    with pytest.raises(ValueError, match="--min-speakers"):
        DiarizationOptions(min_speakers=3, max_speakers=2)


def test_change_without_pause_is_split(speech_map):
    """The russian sample with its pauses cut out, given as one region: both voices, at the right times."""
    audio, regions, _ = speech_map("russian_two_speakers")
    truth_turns = truth("russian_two_speakers")["turns"]
    pieces, spliced_truth, t0 = [], [], 0.0
    for s, e in regions:
        piece = audio[int(s * 16000):int(e * 16000)]
        overlap = {}
        for u in truth_turns:
            overlap[u["speaker"]] = overlap.get(u["speaker"], 0.0) + max(0.0, min(e, u["end"]) - max(s, u["start"]))
        spliced_truth.append({"speaker": max(overlap, key=overlap.get), "start": t0, "end": t0 + len(piece) / 16000})
        pieces.append(piece)
        t0 += len(piece) / 16000
    spliced = np.concatenate(pieces)
    region = [(0.0, len(spliced) / 16000)]
    progress: list[tuple[str, float, float]] = []
    d = diarize(spliced, region, progress=lambda *state: progress.append(state))
    assert len(d.speakers) == 2
    assert der(spliced_truth, d.turns) <= 0.10
    _check_invariants(d, region)
    done = [d for _, d, _ in progress]  # seconds of speech, up to all of it
    assert done == sorted(done) and progress[-1] == ("diarize", region[0][1], region[0][1])


@pytest.mark.parametrize("who, seconds", [("C", 2.0), ("B", 3.0)])
def test_one_short_sentence_is_a_speaker(who, seconds, speech_map):
    """A voice heard in one short sentence still counts. B is the voice nearest to A (their
    centroids sit at cosine 0.78)."""
    audio, regions, _ = speech_map("confession_mixed")
    own = [t for t in truth("confession_mixed")["turns"] if t["speaker"] == who]
    mid = (own[0]["start"] + own[0]["end"]) / 2
    kept = [r for r in regions if not any(min(r[1], t["end"]) - max(r[0], t["start"]) > 0.5 for t in own)]
    kept = sorted(kept + [(mid - seconds / 2, mid + seconds / 2)])
    keep = audio[int((mid - seconds / 2) * 16000):int((mid + seconds / 2) * 16000)].copy()
    audio = audio.copy()
    for t in own:  # the rest of the voice is silenced, not only left out of the regions
        audio[int(t["start"] * 16000):int(t["end"] * 16000)] = 0.0
    audio[int((mid - seconds / 2) * 16000):int((mid - seconds / 2) * 16000) + len(keep)] = keep
    d = diarize(audio, kept)
    assert len(d.speakers) == 4
    lone = [t for t in d.turns if abs((t.start + t.end) / 2 - mid) < 0.5]
    assert len(lone) == 1 and sum(t.speaker == lone[0].speaker for t in d.turns) == 1


def test_crosstalk_gets_both_speakers(overlap_scene):
    """Two interruptions (1.2 s and 0.8 s) and back-to-back hand-overs (0.12-0.2 s) between four voices."""
    from toolkit.media import extract_audio
    from toolkit.vad import speech_regions

    path, scene = overlap_scene
    audio = extract_audio(path)
    regions = speech_regions(audio)
    d = diarize(audio, regions)
    assert len(d.speakers) == 4
    assert der(scene["turns"], d.turns) <= 0.05
    _check_invariants(d, regions)
    found = d.overlaps()
    names = {}  # truth voice -> hypothesis speaker, by the most shared time
    for u in scene["turns"]:
        shared = {t.speaker: 0.0 for t in d.turns}
        for t in d.turns:
            shared[t.speaker] += max(0.0, min(t.end, u["end"]) - max(t.start, u["start"]))
        names.setdefault(u["speaker"], max(shared, key=shared.get))
    crosstalk = [(b["start"], min(a["end"], b["end"]), names[a["speaker"]], names[b["speaker"]])
                 for a, b in zip(scene["turns"], scene["turns"][1:], strict=False) if b["start"] < a["end"]]
    assert len(crosstalk) == 2
    for start, end, first, second in crosstalk:
        heard = sum(max(0.0, min(end, e) - max(start, s)) for s, e, who, other in found
                    if {who, other} == {first, second} and who == first)
        assert heard >= 0.7 * (end - start), (start, end, found)


def test_mark_overlaps():
    """A's segment ends at its last word, B's starts at its first: both grow over the crosstalk."""
    a = Segment(1.0, 4.8, "a", "ru", "SPEAKER_00", words=[Word(1.0, 4.8, " a")])
    b = Segment(5.3, 9.0, "b", "ru", "SPEAKER_01", words=[Word(5.3, 9.0, " b")])
    c = Segment(10.0, 12.0, "c", "ru", "SPEAKER_00")
    turns = [SpeakerTurn(1.0, 6.0, "SPEAKER_00"), SpeakerTurn(4.5, 9.0, "SPEAKER_01"),
             SpeakerTurn(10.0, 12.0, "SPEAKER_00"), SpeakerTurn(10.5, 11.0, "SPEAKER_02")]
    mark_overlaps([a, b, c], Diarization(turns, []))
    assert (a.start, a.end, b.start, b.end) == (1.0, 6.0, 4.5, 9.0)
    assert a.overlap == [SpeakerTurn(4.5, 6.0, "SPEAKER_01")] and b.overlap == [SpeakerTurn(4.5, 6.0, "SPEAKER_00")]
    assert c.overlap == [SpeakerTurn(10.5, 11.0, "SPEAKER_02")]  # a voice with no words of its own is listed
    assert all(s.start <= w.start and w.end <= s.end for s in (a, b) for w in s.words)


def test_edge_cases(speech_map):
    audio, _, _ = speech_map("azeri_music")
    assert diarize(audio, []).turns == []
    short = diarize(audio, [(1.2, 1.9)])  # shorter than one encoder window
    assert short.speakers == ["SPEAKER_00"] and len(short.exclusive) == 1
    assert 1.2 - MARGIN - PAD - 0.02 <= short.exclusive[0].start and short.exclusive[0].end <= 1.9 + MARGIN + PAD + 0.02


def test_segmentation_model(speech_map):
    """The frame grid matches the model's output; silence is nobody; a sample's speech is found
    where the truth has it; the powerset rows are the model's classes."""
    model = load_segmentation_model()
    log_probs = model(np.zeros((2, CHUNK_SAMPLES), dtype=np.float32))
    assert log_probs.shape == (2, CHUNK_FRAMES, len(POWERSET))
    assert np.allclose(np.exp(log_probs).sum(axis=2), 1.0, atol=1e-4)
    assert (np.argmax(log_probs, axis=2) == 0).all()
    assert POWERSET.sum(axis=1).tolist() == [0, 1, 1, 1, 2, 2, 2]
    audio, regions, _ = speech_map("russian_two_speakers")
    seg = segment(audio, regions=regions)
    count = seg.speaker_count()
    assert count.shape == (seg.num_frames,) and count.max() == 1  # two voices, never at once
    times = (np.arange(seg.num_frames) * 270 + 495) / 16000
    inside, near = np.zeros(seg.num_frames, dtype=bool), np.zeros(seg.num_frames, dtype=bool)
    for t in truth("russian_two_speakers")["turns"]:
        inside |= (times >= t["start"] + 0.25) & (times < t["end"] - 0.25)
        near |= (times >= t["start"] - 0.25) & (times < t["end"] + 0.25)
    assert count[inside].mean() > 0.98 and count[~near].mean() < 0.05


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


def test_model_files_ship_with_their_licences():
    assets = Path(__file__).resolve().parent.parent / "toolkit" / "assets"
    notice = (assets / "NOTICE").read_text(encoding="utf-8")
    assert (assets / "segmentation-3.0.onnx").stat().st_size == 5_983_836
    assert "segmentation-3.0" in notice and "MIT" in notice and "ge2e.npz" in notice
