"""Who spoke when: speech, overlap and turn boundaries from a neural segmenter, voices from GE2E.

The flow follows pyannote.audio 3.x (`SpeakerDiarization`): local segmentation on sliding
10 s chunks, a per-frame count of active speakers, embeddings, clustering, and reconstruction
into frame-level global speakers with an overlap-aware and an exclusive view. One part is
changed, from measurements on our material: segmentation-3.0 often gives two voices one
local label inside a chunk (the pitch-shifted synthetic voices of every sample and dev scene;
see README "Who spoke when"), so a local speaker cannot be the unit that gets one global
speaker (pyannote's constrained assignment merged those voices). Here:

1. `segmentation.segment` runs the model on chunks sliding `step_s` apart, only where a chunk
   reaches VAD speech; the chunks' mean probabilities say how many people talk in each 17 ms
   frame (0, 1 or 2), kept only near the VAD's speech (`vad_margin_s`).
2. Single-speaker speech is cut into *stretches* at every pause, overlap, VAD region
   bound, and where a chunk that sees a point places a change of its local speaker there.
3. Each stretch is embedded once with GE2E (`clustering.bisect` cuts it again where its
   voice changes) and the pieces are clustered (`clustering.cluster`); a sliver under
   `min_stretch_s` that continues a stretch without a pause takes that one's speaker.
4. An overlapped stretch gets the two speakers it links to: the ones talking just before and
   after it, else those that its local speakers are elsewhere in the same chunks.
5. Turns are read off the frames: overlap-aware (`Diarization.turns`, turns of two speakers
   may overlap) and exclusive (`Diarization.exclusive`, one speaker at a time, what ASR
   decodes: an overlap goes half to the speaker before it, half to the one after, and each
   turn reaches `asr_pad_s` into the pauses around it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .clustering import ClusteringOptions, bisect, centroids, cluster, split_by_centroids
from .progress import ProgressHook, no_progress
from .segmentation import (
    CHUNK_FRAMES,
    FRAME_SIZE,
    FRAME_STEP,
    Segmentation,
    SegmentationModel,
    load_segmentation_model,
    region_of_frames,
    runs,
    segment,
    smooth_count,
)
from .speaker_encoder import SAMPLE_RATE, SpeakerEncoder, WindowEmbeddings, load_speaker_encoder
from .transcript import Segment, SpeakerTurn

if TYPE_CHECKING:
    from .audio import Audio

_EDGE = (FRAME_SIZE - FRAME_STEP) // 2  # frame t owns samples [t*270 + 360, (t+1)*270 + 360): frames tile the audio


@dataclass(frozen=True)
class DiarizationOptions:
    num_speakers: int | None = None  # exact count when given
    min_speakers: int = 1
    max_speakers: int | None = None
    # Segmentation chunks (10 s) slide this far, so each frame is seen by two chunks (pyannote
    # slides 1 s). 3.3 s gave the same DER on every sample, dev scene and crosstalk scene, and cost
    # 1.5x the CPU (on the 2-hour input diarization took 16 % of the pipeline's time at 3.3 s).
    step_s: float = 5.0
    # Speech the segmentation model hears counts only this close to the VAD's speech: the model
    # alone took 5 s of chant for speech in dev_long_intro, while the VAD clipped up to 0.56 s
    # of real speech onsets there, which this margin gives back.
    vad_margin_s: float = 0.5
    # A local speaker change cuts a stretch when at least this share of the chunks that see
    # the point place a change there (within `change_tolerance_s`): any one of them, as a chunk
    # that hears two similar voices as one says nothing, and a needless cut is undone by
    # clustering (requiring half of three chunks missed a hand-over between two voices).
    change_support: float = 0.3
    change_tolerance_s: float = 0.2
    # An overlap (two speakers), a stretch between overlaps or a pause inside speech shorter than
    # this is noise in the count, folded into its surroundings (a short pause still cuts a stretch).
    min_run_s: float = 0.1
    # A stretch shorter than this that continues another one without a pause takes its speaker
    # (see `_followers`); one between pauses is clustered like any other.
    min_stretch_s: float = 0.5
    # Two people speak where the chunks' mean probability of a two-speaker class reaches
    # overlap_onset, for as long as it stays above overlap_offset (`Segmentation.speaker_count`).
    # Single-speaker speech of the samples and dev scenes stayed below 0.33 (99 % below 0.26).
    overlap_onset: float = 0.3
    overlap_offset: float = 0.2
    # Exclusive turns (what Whisper decodes) reach this far into the pauses around them, and at
    # least to the edges of the VAD region they open or close (see `_asr_turns`): windows starting
    # right at the speech onset cost words.
    asr_pad_s: float = 0.1
    encoder: str = "ge2e"  # name for load_speaker_encoder when no encoder is passed
    clustering: ClusteringOptions = field(default_factory=ClusteringOptions)

    def __post_init__(self) -> None:
        if self.num_speakers is not None and self.num_speakers < 1:
            raise ValueError(f"--num-speakers must be at least 1, not {self.num_speakers}")
        if self.min_speakers < 1 or (self.max_speakers is not None and self.max_speakers < self.min_speakers):
            raise ValueError(f"need 1 <= --min-speakers ({self.min_speakers}) <= --max-speakers ({self.max_speakers})")

    @property
    def bounds(self) -> tuple[int, int | None]:
        """(fewest, most) speakers to find; most is None when unbounded."""
        if self.num_speakers is not None:
            return self.num_speakers, self.num_speakers
        return self.min_speakers, self.max_speakers


@dataclass
class Diarization:
    """What diarization knows about a file; speakers are SPEAKER_00, ... in order of first speech."""

    turns: list[SpeakerTurn]  # overlap-aware, sorted by start: turns of two speakers may overlap
    exclusive: list[SpeakerTurn]  # one speaker at a time, sorted and disjoint, padded: what ASR decodes
    embeddings: dict[str, np.ndarray] = field(default_factory=dict)  # speaker -> unit GE2E centroid

    @property
    def speakers(self) -> list[str]:
        return list(self.embeddings) or sorted({t.speaker for t in self.turns})

    def overlaps(self) -> list[tuple[float, float, str, str]]:
        """(start, end, speaker, other) for every stretch where two speakers' turns overlap, both ways."""
        out = []
        turns = sorted(self.turns, key=lambda t: t.start)
        for i, a in enumerate(turns):
            for b in turns[i + 1:]:
                if b.start >= a.end:
                    break
                if b.speaker != a.speaker:
                    start, end = b.start, min(a.end, b.end)
                    out += [(start, end, a.speaker, b.speaker), (start, end, b.speaker, a.speaker)]
        return sorted(out)


_EMBED_BATCH_S = 60.0  # seconds of speech per encoder call, so `progress` moves steadily
_MIN_CLIP = int(1.6 * SAMPLE_RATE)  # GE2E's window; shorter stretches are looped up to it


@dataclass
class SpeechMap:
    """What diarization computes once per file, whatever speaker count is asked for: how many
    people speak in each frame, and the single-speaker stretches with their GE2E windows."""

    segmentation: Segmentation
    spans: list[tuple[float, float]]  # the VAD's speech regions (seconds)
    count: np.ndarray  # (frames,) uint8: 0, 1 or 2 people speaking
    region: np.ndarray  # (frames,) int32: index in `spans` of each frame's region, -1 far from speech
    stretches: list[tuple[int, int]]  # [start, end) frames of single-speaker speech
    windows: list[WindowEmbeddings]  # GE2E windows of each stretch
    dim: int  # embedding size


def diarize(audio: np.ndarray | Audio, regions: list[tuple[float, float]],
            options: DiarizationOptions = DiarizationOptions(), progress: ProgressHook | None = None,
            encoder: SpeakerEncoder | None = None, model: SegmentationModel | None = None) -> Diarization:
    """Who speaks when in 16 kHz mono `audio` (an array or `audio.Audio`), within (and near) the VAD's
    speech `regions` (sorted seconds); `progress("diarize", done, total)` in seconds of that speech."""
    speech = map_speech(audio, regions, options, progress, encoder, model)
    return assign_speakers(speech, options) if speech else Diarization([], [])


def map_speech(audio: np.ndarray | Audio, regions: list[tuple[float, float]],
               options: DiarizationOptions = DiarizationOptions(), progress: ProgressHook | None = None,
               encoder: SpeakerEncoder | None = None, model: SegmentationModel | None = None) -> SpeechMap | None:
    """Steps 1-2 and the embeddings of step 3 (see the module doc); None when there is no speech."""
    total = len(audio) / SAMPLE_RATE
    spans = [(max(0.0, float(s)), min(total, float(e))) for s, e in regions]
    spans = [(s, e) for s, e in spans if e - s > 1.0 / SAMPLE_RATE]
    speech_s, hook = sum(e - s for s, e in spans), progress or no_progress

    def report(fraction: float) -> None:  # segmentation, then embedding, in seconds of the speech
        hook("diarize", min(fraction, 1.0) * speech_s, speech_s)

    if not spans:
        report(1.0)
        return None
    seg = segment(audio, options.step_s, spans, model or load_segmentation_model(),
                  progress=lambda f: report(0.3 * f))
    region = region_of_frames(seg.num_frames, spans, options.vad_margin_s)
    for c, start in enumerate(seg.starts):  # the model's speech far from the VAD's is music or noise
        n = min(CHUNK_FRAMES, seg.num_frames - int(start))
        seg.activity[c, :n] &= (region[start:start + n] >= 0)[:, None]
        seg.activity[c, n:] = False
    count = np.where(region >= 0, seg.speaker_count(options.overlap_onset, options.overlap_offset), 0)
    count, pauses = smooth_count(count, max(1, round(options.min_run_s * SAMPLE_RATE / FRAME_STEP)))
    tolerance = max(1, round(options.change_tolerance_s * SAMPLE_RATE / FRAME_STEP))
    cuts = np.r_[pauses, seg.change_points(options.change_support, tolerance)].astype(np.int64)
    stretches = _stretches(count == 1, region, cuts)
    enc = encoder if encoder is not None else load_speaker_encoder(options.encoder)
    windows = _embed(audio, stretches, enc, lambda f: report(0.3 + 0.7 * f))
    return SpeechMap(seg, spans, count, region, stretches, windows, enc.dim)


def assign_speakers(speech: SpeechMap, options: DiarizationOptions = DiarizationOptions()) -> Diarization:
    """Steps 3-5: cluster the stretches into speakers (within `options.bounds`), give each
    overlap its two speakers, and read the turns off the frames."""
    lo, hi = options.bounds
    times = [(_edge(a), _edge(b)) for a, b in speech.stretches]
    followers = _followers(speech.stretches, max(1, round(options.min_stretch_s * SAMPLE_RATE / FRAME_STEP)))
    pieces = [p for i, (s, e) in enumerate(times) if i not in followers
              for p in bisect(i, s, e, speech.windows[i], options.clustering)]
    label = np.full(len(speech.count), -1, dtype=np.int32)
    vectors = np.zeros((0, speech.dim), dtype=np.float32)
    if pieces:
        labels = cluster(pieces, speech.windows, lo, hi, options.clustering) if hi != 1 else np.zeros(len(pieces), int)
        for p, lab in zip(pieces, labels, strict=True):
            p.label = int(lab)
        n_labels = int(labels.max()) + 1
        if n_labels > 1:
            cents = centroids(pieces, speech.windows, n_labels)
            pieces = [q for p in pieces for q in
                      split_by_centroids(p, speech.windows[p.stretch], cents, times[p.stretch][0], options.clustering)]
        vectors = centroids(pieces, speech.windows, n_labels)
        for p in pieces:
            label[_frame(p.start):_frame(p.end)] = p.label
        for i, j in followers.items():
            (a, b), (c, d) = speech.stretches[i], speech.stretches[j]
            label[a:b] = label[d - 1] if d == a else label[c]
    if hi == 1:  # one voice: crosstalk is that voice too
        label[(speech.count > 0) & (label < 0)] = 0
        second = np.full(len(label), -1, dtype=np.int32)
    else:
        second = _overlap_speakers(speech.segmentation, speech.count, label, speech.region)
    return _result(label, second, speech, vectors, options.asr_pad_s)


def _edge(frame: int) -> float:
    """Seconds where global frame `frame` begins (frames tile the audio in 270-sample steps)."""
    return (frame * FRAME_STEP + _EDGE) / SAMPLE_RATE if frame > 0 else 0.0


def _frame(seconds: float) -> int:
    return max(0, int(round((seconds * SAMPLE_RATE - _EDGE) / FRAME_STEP)))


def _followers(stretches: list[tuple[int, int]], min_frames: int) -> dict[int, int]:
    """{i: j}: stretch i, shorter than `min_frames`, continues stretch j without a pause (a cut by a
    local change or a region bound), j being the longer of its neighbours and not short itself.
    Such a sliver's own embedding is unreliable (a 0.2 s end of a turn went to another voice and
    Whisper made up words for it); it takes its neighbour's speaker."""
    out = {}
    for i, (a, b) in enumerate(stretches):
        if b - a >= min_frames:
            continue
        touching = [j for j in (i - 1, i + 1) if 0 <= j < len(stretches)
                    and (stretches[j][1] == a or stretches[j][0] == b)
                    and stretches[j][1] - stretches[j][0] >= min_frames]
        if touching:
            out[i] = max(touching, key=lambda j: stretches[j][1] - stretches[j][0])
    return out


def _stretches(single: np.ndarray, region: np.ndarray, cuts: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) frames of single-speaker speech between pauses, overlaps, region bounds and `cuts`."""
    brk = np.zeros(len(single), dtype=bool)
    brk[0] = True
    brk[1:] = (single[1:] != single[:-1]) | (region[1:] != region[:-1])
    brk[cuts[(cuts > 0) & (cuts < len(single))]] = True
    bounds = np.r_[np.flatnonzero(brk), len(single)]
    return [(int(a), int(b)) for a, b in zip(bounds, bounds[1:], strict=False) if single[a]]


def _embed(audio: np.ndarray, stretches: list[tuple[int, int]], enc: SpeakerEncoder,
           report: Callable[[float], None]) -> list[WindowEmbeddings]:
    """GE2E windows of every stretch, in batches of about a minute of speech."""
    from threadpoolctl import threadpool_limits

    out: list[WindowEmbeddings] = []
    speech = sum(b - a for a, b in stretches) or 1
    done, batch, short = 0, [], []
    for i, (a, b) in enumerate(stretches):
        clip = audio[a * FRAME_STEP + _EDGE if a else 0:b * FRAME_STEP + _EDGE]
        if 0 < len(clip) < _MIN_CLIP:
            # the encoder would zero-pad a 1.6 s window, and a third of silence pulls the
            # embedding off the voice; repeating the speech fills the window with the voice
            clip = np.tile(clip, -(-_MIN_CLIP // len(clip)))[:_MIN_CLIP]
            short.append(i)
        batch.append(clip)
        done += b - a
        if sum(len(x) for x in batch) >= _EMBED_BATCH_S * SAMPLE_RATE or i == len(stretches) - 1:
            # small matmuls: BLAS threads only contend (on a busy 2-core machine ~10x slower)
            with threadpool_limits(limits=1, user_api="blas"):
                out.extend(enc.embed_windows_batch(batch))
            report(done / speech)
            batch = []
    for i in short:
        we, (a, b) = out[i], stretches[i]
        out[i] = WindowEmbeddings(we.embeddings[:1], np.zeros(1), np.full(1, _edge(b) - _edge(a)))
    return out


def _overlap_speakers(seg, count: np.ndarray, label: np.ndarray, region: np.ndarray) -> np.ndarray:
    """Fill `label` (in place) in overlapped frames with the speaker kept for ASR, and return
    (num_frames,) int32: the other speaker there, -1 where one or nobody talks."""
    second = np.full(len(label), -1, dtype=np.int32)
    for a, b, value in runs(np.where(region >= 0, count, 0)):
        if value < 2:
            continue
        before = int(label[a - 1]) if a > 0 else -1
        after = int(label[b]) if b < len(label) else -1
        if before >= 0 and after >= 0 and before != after:
            # an interruption: each keeps half of it for ASR, both are heard throughout
            mid = (a + b) // 2
            label[a:mid], second[a:mid] = before, after
            label[mid:b], second[mid:b] = after, before
            continue
        known = before if before >= 0 else after
        votes = _linked_speakers(seg, label, a, b)
        if known >= 0:
            votes[known] = 0
        ranked = [int(k) for k in np.argsort(-votes) if votes[k] > 0]
        if known < 0 and ranked:
            known, ranked = ranked[0], ranked[1:]
        if known >= 0:
            label[a:b] = known
            second[a:b] = ranked[0] if ranked else -1
    return second


def _linked_speakers(seg, label: np.ndarray, a: int, b: int) -> np.ndarray:
    """Votes per global speaker for the local speakers active in frames [a, b): each one's
    contiguous activity around the overlap, in each chunk that sees it, counted by the global
    speaker of its single-speaker frames."""
    votes = np.zeros(max(1, int(label.max()) + 1), dtype=np.int64)
    for c in np.flatnonzero((seg.starts < b) & (seg.starts + CHUNK_FRAMES > a)):
        start = int(seg.starts[c])
        act = seg.activity[c]
        for k in range(act.shape[1]):
            on = np.r_[False, act[:, k], False]
            lo, hi = max(0, a - start), min(CHUNK_FRAMES, b - start)
            if not on[1 + lo:1 + hi].any():
                continue
            edges = np.flatnonzero(on[1:] != on[:-1])  # run starts and ends, alternating
            for r0, r1 in zip(edges[::2], edges[1::2], strict=True):
                if r0 < hi and r1 > lo:
                    own = label[start + r0:start + r1]
                    votes += np.bincount(own[own >= 0], minlength=len(votes))[:len(votes)]
    return votes


def _asr_turns(turns: list[tuple[SpeakerTurn, int]], spans: list[tuple[float, float]], pad_s: float,
               end_of_audio: float) -> list[SpeakerTurn]:
    """What Whisper decodes, from (exclusive turn, VAD region) pairs: each turn reaches `pad_s` into
    the pauses around it; one that opens or closes its VAD region starts or ends where the region
    does (the VAD pads its regions by as much), unless the segmentation heard speech beyond that
    (an onset the VAD clipped), so that a region one speaker holds is decoded exactly as without
    diarization; never past the middle of a pause."""
    out = []
    for i, (turn, r) in enumerate(turns):
        before, after = (turns[i - 1] if i else None), (turns[i + 1] if i + 1 < len(turns) else None)
        start, end = turn.start - pad_s, turn.end + pad_s
        if (before is None or before[1] != r) and turn.start >= spans[r][0] - pad_s:
            start = spans[r][0]
        if (after is None or after[1] != r) and turn.end <= spans[r][1] + pad_s:
            end = spans[r][1]
        start = max(start, (before[0].end + turn.start) / 2 if before else 0.0)
        end = min(end, (turn.end + after[0].start) / 2 if after else end_of_audio)
        out.append(SpeakerTurn(start, end, turn.speaker))
    return out


def _result(label: np.ndarray, second: np.ndarray, speech: SpeechMap, vectors: np.ndarray,
            pad_s: float) -> Diarization:
    """Turns from frame labels, speakers renamed SPEAKER_00, ... by first speech."""
    first: dict[int, int] = {}
    for a, _, value in runs(label):
        if value >= 0:
            first.setdefault(value, a)
    order = sorted(first, key=first.get)
    names = {k: f"SPEAKER_{i:02d}" for i, k in enumerate(order)}
    # exclusive turns end at VAD region bounds too, so none outgrows Whisper's 30 s window
    region = speech.region
    key = np.where(label >= 0, label * (int(region.max()) + 1) + region, -1)
    exclusive = [(SpeakerTurn(_edge(a), _edge(b), names[int(label[a])]), int(region[a]))
                 for a, b, value in runs(key) if value >= 0]
    exclusive = _asr_turns(exclusive, speech.spans, pad_s, _edge(len(label)))
    turns = []
    for k in order:
        active = (label == k) | (second == k)
        turns += [SpeakerTurn(_edge(a), _edge(b), names[k]) for a, b, on in runs(active.astype(np.int8)) if on]
    embeddings = {names[k]: vectors[k] for k in order if k < len(vectors)}
    return Diarization(sorted(turns, key=lambda t: (t.start, t.speaker)), exclusive, embeddings)


def mark_overlaps(segments: list[Segment], diarization: Diarization) -> None:
    """Give each segment the other speakers heard during it (`Segment.overlap`), and stretch it
    over its own speaker's crosstalk next to it, so that the segments of both speakers cover
    an overlap (in place). A segment was decoded from an exclusive turn: its text and words
    stay its speaker's own, and still lie inside it."""
    turns = {}
    for t in diarization.turns:
        turns.setdefault(t.speaker, []).append(t)
    for start, end, speaker, other in diarization.overlaps():
        turn = next((t for t in turns.get(speaker, []) if t.start <= start and end <= t.end), None)
        own = sorted((s for s in segments if s.speaker == speaker and turn is not None
                      and s.start < turn.end and s.end > turn.start), key=lambda s: s.start)
        if not own:
            continue  # no words of this speaker there: the other speaker's segment lists them
        i = min(range(len(own)), key=lambda j: max(own[j].start - end, start - own[j].end, 0.0))
        seg = own[i]
        # never over a neighbouring segment of the same speaker
        seg.start = min(seg.start, max(start, own[i - 1].end if i else start))
        seg.end = max(seg.end, min(end, own[i + 1].start if i + 1 < len(own) else end))
        seg.overlap.append(SpeakerTurn(max(start, seg.start), min(end, seg.end), other))
