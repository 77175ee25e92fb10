"""Who spoke when: speaker turns inside VAD speech regions.

Method (tuned on the GE2E encoder, see `shared/FINDINGS.md` "Speaker encoder trials"):
1. Every region is cut into resemblyzer's 1.6 s windows, each embedded once.
2. A region whose first and second part sound like clearly different voices is split
   there (speakers can hand over without a pause, and then VAD returns one region).
3. Segments are clustered on their mean embedding (the utterance embedding resemblyzer
   would give) by average-linkage agglomerative clustering with a cosine-distance
   threshold: whole-region embeddings separate speakers, single windows do not.
4. With clusters known, long segments are checked again against the cluster centroids,
   which catches hand-overs between voices too close for step 2 alone.
5. Neighbouring pieces of one region with the same speaker are joined again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .speaker_encoder import SAMPLE_RATE, SpeakerEncoder, WindowEmbeddings, load_speaker_encoder


@dataclass(frozen=True)
class DiarizationOptions:
    num_speakers: int | None = None  # exact count when given
    min_speakers: int = 1
    max_speakers: int | None = None
    # Clusters merge while the cosine of their centroids, corrected for the scatter expected
    # from their amount of speech (see `_shrink`), reaches merge_similarity: two 6 s regions
    # merge at cosine >= 0.82, a 1.3 s sentence joins a large cluster at >= 0.76. On the
    # samples same-voice regions sit at >= 0.86; whole-voice centroids of different voices <= 0.78.
    merge_similarity: float = 0.88
    noise_s: float = 0.45  # c in the 1/duration scatter model (seconds)
    # A cluster holding less speech than small_cluster_s joins its nearest neighbour from
    # this corrected cosine on: a lone short sentence founds a speaker only if it is clearly
    # unlike every other voice (different real voices sit far below; see `_pair_threshold`).
    small_cluster_s: float = 3.0
    small_merge_similarity: float = 0.80
    # Segments shorter than this (s) do not seed clusters, their embeddings being noisy;
    # they join the nearest cluster. A 1-2 s sentence still founds its own speaker.
    min_cluster_s: float = 1.0
    # Step 2: split a region where the mean embeddings either side of a point have cosine
    # below this. Same-voice halves of a region measured >= 0.76, different voices 0.49-0.74.
    split_similarity: float = 0.70
    # Step 4: split where the two sides are nearer to different centroids, each by at
    # least this cosine margin, and the sides themselves have cosine below change_similarity.
    change_margin: float = 0.06
    change_similarity: float = 0.80
    min_side_windows: int = 2  # windows each side of a split (2 windows ~ 2.3 s of audio)
    # Sides are compared over at most this many windows (4 ~ 3.9 s): a wider context mixes
    # in the turns before and after when several speakers alternate inside one region.
    change_context_windows: int = 4
    min_turn_s: float = 1.0  # no split leaves a turn shorter than this
    # Memory bound: at most this many segments enter the O(n^2) clustering (the longest
    # ones); the others are assigned to the nearest centroid.
    max_cluster_segments: int = 2000
    encoder: str = "ge2e"  # name for load_speaker_encoder when no encoder is passed


@dataclass(frozen=True)
class SpeakerTurn:
    start: float
    end: float
    speaker: str


@dataclass
class _Segment:
    region: int
    start: float
    end: float
    lo: int  # window index range [lo, hi) inside the region's WindowEmbeddings
    hi: int
    label: int = -1

    @property
    def duration(self) -> float:
        return self.end - self.start


_EMBED_BATCH_S = 60.0  # seconds of speech per encoder call, so `progress` moves steadily
_MIN_CLIP = int(1.6 * SAMPLE_RATE)  # GE2E's window; shorter regions are looped up to it


def diarize(
    audio: np.ndarray,
    regions: list[tuple[float, float]],
    options: DiarizationOptions = DiarizationOptions(),
    progress: Callable[[float], None] | None = None,
    encoder: SpeakerEncoder | None = None,
) -> list[SpeakerTurn]:
    """Speaker turns for 16 kHz mono `audio` within `regions` (sorted, disjoint seconds).

    Turns are sorted, disjoint, lie inside the regions and cover them; labels are
    SPEAKER_00, SPEAKER_01, ... in order of first appearance.
    """
    report = progress or (lambda _f: None)
    total = len(audio) / SAMPLE_RATE
    spans = [(max(0.0, float(s)), min(total, float(e))) for s, e in regions]
    spans = [(s, e) for s, e in spans if e - s > 1.0 / SAMPLE_RATE]
    if not spans:
        report(1.0)
        return []
    enc = encoder if encoder is not None else load_speaker_encoder(options.encoder)

    windows = _embed_regions(audio, spans, enc, report)
    segments: list[_Segment] = []
    for r, ((s, e), we) in enumerate(zip(spans, windows, strict=True)):
        segments.extend(_bisect(r, s, e, we, 0, len(we.embeddings), s, options))
    report(0.9)

    labels = _cluster(segments, windows, options)
    for g, lab in zip(segments, labels, strict=True):
        g.label = int(lab)

    n_labels = int(labels.max()) + 1
    if n_labels > 1 and options.num_speakers != 1:
        centroids = _centroids(segments, windows, n_labels)
        refined: list[_Segment] = []
        for g in segments:
            refined.extend(_split_by_centroids(g, windows[g.region], centroids, spans[g.region], options))
        segments = refined

    turns = _join(segments)
    report(1.0)
    return turns


def _embed_regions(audio: np.ndarray, spans: list[tuple[float, float]], enc: SpeakerEncoder,
                   report: Callable[[float], None]) -> list[WindowEmbeddings]:
    out: list[WindowEmbeddings] = []
    speech = sum(e - s for s, e in spans)
    done = 0.0
    batch: list[np.ndarray] = []
    batch_s = 0.0
    short: list[int] = []
    for i, (s, e) in enumerate(spans):
        clip = audio[int(round(s * SAMPLE_RATE)):int(round(e * SAMPLE_RATE))]
        if 0 < len(clip) < _MIN_CLIP:
            # the encoder would zero-pad a 1.6 s window, and a third of silence pulls the
            # embedding off the voice (such pieces sat alone as extra "speakers"); repeating
            # the speech fills the window with the voice instead
            clip = np.tile(clip, -(-_MIN_CLIP // len(clip)))[:_MIN_CLIP]
            short.append(i)
        batch.append(clip)
        batch_s += e - s
        if batch_s >= _EMBED_BATCH_S or i == len(spans) - 1:
            out.extend(enc.embed_windows_batch(batch))
            done += batch_s
            report(0.85 * done / speech)
            batch, batch_s = [], 0.0
    for i in short:
        we = out[i]
        dur = spans[i][1] - spans[i][0]
        out[i] = WindowEmbeddings(we.embeddings[:1], np.zeros(1), np.full(1, dur))
    return out


def _mean_unit(x: np.ndarray) -> np.ndarray:
    m = x.mean(axis=0)
    return m / max(float(np.linalg.norm(m)), 1e-12)


def _window_time(we: WindowEmbeddings, k: int, region_start: float) -> float:
    """Change time between window k-2 and window k: window k-1 straddles it and is left out."""
    return region_start + 0.5 * (we.ends[k - 2] + we.starts[k])


def _best_split(we: WindowEmbeddings, lo: int, hi: int, region_start: float, seg_start: float, seg_end: float,
                options: DiarizationOptions) -> list[tuple[int, np.ndarray, np.ndarray, float]]:
    """Candidate splits (k, left mean, right mean, time): left windows end at k-1, right start at k."""
    m, w = options.min_side_windows, options.change_context_windows
    out = []
    for k in range(lo + m + 1, hi - m + 1):
        t = _window_time(we, k, region_start)
        if t - seg_start < options.min_turn_s or seg_end - t < options.min_turn_s:
            continue
        left = _mean_unit(we.embeddings[max(lo, k - 1 - w):k - 1])
        out.append((k, left, _mean_unit(we.embeddings[k:min(hi, k + w)]), t))
    return out


def _bisect(region: int, start: float, end: float, we: WindowEmbeddings, lo: int, hi: int, region_start: float,
            options: DiarizationOptions) -> list[_Segment]:
    best = None
    for k, left, right, t in _best_split(we, lo, hi, region_start, start, end, options):
        sim = float(left @ right)
        if best is None or sim < best[0]:
            best = (sim, k, t)
    if best is None or best[0] >= options.split_similarity:
        return [_Segment(region, start, end, lo, hi)]
    _, k, t = best
    return (_bisect(region, start, t, we, lo, k - 1, region_start, options)
            + _bisect(region, t, end, we, k, hi, region_start, options))


def _cluster(segments: list[_Segment], windows: list[WindowEmbeddings], options: DiarizationOptions) -> np.ndarray:
    n = len(segments)
    dur = np.array([g.duration for g in segments])
    sums = np.stack([windows[g.region].embeddings[g.lo:g.hi].sum(axis=0) for g in segments]).astype(np.float64)
    seeds = np.flatnonzero(dur >= options.min_cluster_s)
    if len(seeds) == 0:
        seeds = np.arange(n)
    if len(seeds) > options.max_cluster_segments:
        seeds = np.sort(seeds[np.argsort(-dur[seeds], kind="stable")[:options.max_cluster_segments]])

    lo = max(1, options.min_speakers)
    hi = options.max_speakers if options.max_speakers is not None else len(seeds)
    if options.num_speakers is not None:
        lo = hi = options.num_speakers
    hi = max(1, min(hi, len(seeds)))
    lo = min(lo, hi)

    seed_labels = _centroid_linkage(sums[seeds], dur[seeds], lo, hi, options)
    labels = np.full(n, -1, dtype=int)
    labels[seeds] = seed_labels
    rest = np.flatnonzero(labels < 0)
    if len(rest):
        cents = _unit(np.stack([sums[seeds][seed_labels == c].sum(axis=0) for c in range(seed_labels.max() + 1)]))
        labels[rest] = np.argmax(_unit(sums[rest]) @ cents.T, axis=1)
    return labels


def _shrink(dur: np.ndarray, options: DiarizationOptions) -> np.ndarray:
    """1 / expected norm of a centroid holding `dur` seconds of one voice, relative to its noise-free value.

    Window embeddings scatter around a voice's direction with a variance falling as 1/duration
    (fitted on the samples: a 1.6 s window sits at cosine ~0.89 to its voice's centroid, a 6 s
    region ~0.93 to another region of the voice), so the cosine two same-voice clusters can be
    expected to reach is 1 / sqrt((1 + c/d1) (1 + c/d2)). Comparing cosines against that
    instead of one fixed threshold keeps short sentences from each founding a speaker.
    """
    return np.sqrt(1.0 + options.noise_s / np.maximum(dur, 1e-3))


def _pair_threshold(smaller_dur: np.ndarray, options: DiarizationOptions) -> np.ndarray:
    # A single 1.6 s window can sit as far from its own voice (corrected cosine ~0.81 at
    # sentence ends) as from a similar voice; a tiny cluster therefore needs less to join.
    return np.where(smaller_dur < options.small_cluster_s, options.small_merge_similarity, options.merge_similarity)


def _centroid_linkage(sums: np.ndarray, dur: np.ndarray, lo: int, hi: int, options: DiarizationOptions) -> np.ndarray:
    """Greedy agglomeration on summed window embeddings (a length-weighted centroid).

    Merges the pair that most exceeds its duration-dependent threshold until none does,
    then keeps merging (best pair first) only while there are more than `hi` clusters.
    """
    k = len(sums)
    if k == 1:
        return np.zeros(1, dtype=int)
    sums = sums.copy()
    dur = dur.astype(np.float64).copy()
    owner = np.arange(k)
    unit = _unit(sums)
    shrink = _shrink(dur, options)
    score = (unit @ unit.T) * np.outer(shrink, shrink) - _pair_threshold(np.minimum.outer(dur, dur), options)
    np.fill_diagonal(score, -np.inf)
    count = k
    while count > lo:
        flat = int(np.argmax(score))
        i, j = divmod(flat, k)
        if score[i, j] < 0 and count <= hi:
            break
        sums[i] += sums[j]
        dur[i] += dur[j]
        owner[owner == j] = i
        score[j, :] = -np.inf
        score[:, j] = -np.inf
        shrink = _shrink(dur, options)
        row = (_unit(sums[i:i + 1]) @ _unit(sums).T)[0] * shrink * shrink[i]
        row -= _pair_threshold(np.minimum(dur, dur[i]), options)
        alive = np.isfinite(score[i]) | np.isfinite(score[:, i])
        row[~alive] = -np.inf
        row[i] = -np.inf
        score[i, :] = row
        score[:, i] = row
        count -= 1
    _, labels = np.unique(owner, return_inverse=True)
    return labels


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _centroids(segments: list[_Segment], windows: list[WindowEmbeddings], n_labels: int) -> np.ndarray:
    # summing windows (not segment means) weights each segment by its length
    sums = np.zeros((n_labels, windows[0].embeddings.shape[1]), dtype=np.float64)
    for g in segments:
        sums[g.label] += windows[g.region].embeddings[g.lo:g.hi].sum(axis=0)
    return (sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def _split_by_centroids(g: _Segment, we: WindowEmbeddings, centroids: np.ndarray, span: tuple[float, float],
                        options: DiarizationOptions) -> list[_Segment]:
    region_start = span[0]
    best = None
    for k, left, right, t in _best_split(we, g.lo, g.hi, region_start, g.start, g.end, options):
        if float(left @ right) >= options.change_similarity:
            continue
        sl, sr = centroids @ left, centroids @ right
        a, b = int(np.argmax(sl)), int(np.argmax(sr))
        if a == b:
            continue
        margin = min(sl[a] - sl[b], sr[b] - sr[a])
        if margin >= options.change_margin and (best is None or margin > best[0]):
            best = (margin, k, t, a, b)
    if best is None:
        return [g]
    _, k, t, a, b = best
    left = _Segment(g.region, g.start, t, g.lo, k - 1, a)
    right = _Segment(g.region, t, g.end, k, g.hi, b)
    return (_split_by_centroids(left, we, centroids, span, options)
            + _split_by_centroids(right, we, centroids, span, options))


def _join(segments: list[_Segment]) -> list[SpeakerTurn]:
    segments = sorted(segments, key=lambda g: g.start)
    merged: list[_Segment] = []
    for g in segments:
        if merged and merged[-1].region == g.region and merged[-1].label == g.label:
            merged[-1].end = g.end
        else:
            merged.append(_Segment(g.region, g.start, g.end, g.lo, g.hi, g.label))
    names: dict[int, str] = {}
    turns = []
    for g in merged:
        name = names.setdefault(g.label, f"SPEAKER_{len(names):02d}")
        turns.append(SpeakerTurn(g.start, g.end, name))
    return turns
