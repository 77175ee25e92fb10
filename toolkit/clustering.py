"""Which pieces of speech share a voice: GE2E window embeddings, change points and clustering.

A *stretch* is speech of one person as the segmentation model sees it (between pauses,
overlaps and local speaker changes); its 1.6 s GE2E windows are embedded once. A *piece* is a
stretch or a part of one, the unit that gets a speaker. The method, tuned on GE2E cosines
(see `shared/FINDINGS.md` "Speaker encoder trials"):
1. `bisect`: a long stretch is cut where the windows before and after a point sound unlike each
   other (the segmentation model can hear two similar voices as one local speaker).
2. `cluster`: greedy agglomeration on length-weighted centroids, with a merge threshold
   corrected for how much speech each side holds: whole turns separate the voices, single
   1.6 s windows scatter about as far as a similar voice does.
3. `split_by_centroids`: with clusters known, long pieces are checked again against the
   cluster centroids, which catches hand-overs between voices too close for step 1 alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .speaker_encoder import WindowEmbeddings


@dataclass(frozen=True)
class ClusteringOptions:
    # Clusters merge while the cosine of their centroids, corrected for the scatter expected
    # from their amount of speech (see `_shrink`), reaches merge_similarity: two 6 s turns
    # merge at cosine >= 0.82, a 1.3 s sentence joins a large cluster at >= 0.76. On the
    # samples same-voice turns sit at >= 0.86; whole-voice centroids of different voices <= 0.78.
    merge_similarity: float = 0.88
    noise_s: float = 0.45  # c in the 1/duration scatter model (seconds)
    # A cluster holding less speech than small_cluster_s joins its nearest neighbour from
    # this corrected cosine on: a lone short sentence founds a speaker only if it is clearly
    # unlike every other voice (different real voices sit far below; see `_pair_threshold`).
    small_cluster_s: float = 3.0
    small_merge_similarity: float = 0.80
    # Clusters of at least small_cluster_s each are one voice when their centroids reach this
    # cosine, whatever their size (see `_merge_voices`).
    voice_similarity: float = 0.80
    # Pieces shorter than this (s) do not seed clusters, their embeddings being noisy;
    # they join the nearest cluster. A 1-2 s sentence still founds its own speaker.
    min_cluster_s: float = 1.0
    # Step 1: cut a stretch where the mean embeddings of the windows either side of a point
    # have cosine below this (different voices measured 0.49-0.70 over 4 windows, one voice
    # mostly >= 0.84 but down to ~0.71 with 2 windows a side). Cutting is cheap to undo:
    # pieces that cluster together are joined again, so this errs towards cutting.
    split_similarity: float = 0.78
    # Step 3: split where the two sides are nearer to different centroids, each by at
    # least this cosine margin, and the sides themselves have cosine below change_similarity.
    change_margin: float = 0.06
    change_similarity: float = 0.80
    min_side_windows: int = 2  # windows each side of a split (2 windows ~ 2.3 s of audio)
    # Sides are compared over at most this many windows (4 ~ 3.9 s): a wider context mixes
    # in the turns before and after when several speakers alternate inside one stretch.
    change_context_windows: int = 4
    min_turn_s: float = 1.0  # no split leaves a piece shorter than this
    # Memory bound: at most this many nodes enter one O(n^2) agglomeration; longer inputs
    # are clustered in rounds, longest pieces first (see `cluster`).
    max_cluster_pieces: int = 2000


@dataclass
class Piece:
    stretch: int  # index of its stretch (and of the stretch's WindowEmbeddings)
    start: float  # seconds
    end: float
    lo: int  # window index range [lo, hi) inside the stretch's WindowEmbeddings
    hi: int
    label: int = -1

    @property
    def duration(self) -> float:
        return self.end - self.start


def _mean_unit(x: np.ndarray) -> np.ndarray:
    m = x.mean(axis=0)
    return m / max(float(np.linalg.norm(m)), 1e-12)


def _window_time(we: WindowEmbeddings, k: int, stretch_start: float) -> float:
    """Change time between window k-2 and window k: window k-1 straddles it and is left out."""
    return stretch_start + 0.5 * (we.ends[k - 2] + we.starts[k])


def _candidates(we: WindowEmbeddings, lo: int, hi: int, stretch_start: float, start: float, end: float,
                options: ClusteringOptions) -> list[tuple[int, np.ndarray, np.ndarray, float]]:
    """Candidate splits (k, left mean, right mean, time): left windows end at k-1, right start at k."""
    m, w = options.min_side_windows, options.change_context_windows
    out = []
    for k in range(lo + m + 1, hi - m + 1):
        t = _window_time(we, k, stretch_start)
        if t - start < options.min_turn_s or end - t < options.min_turn_s:
            continue
        left = _mean_unit(we.embeddings[max(lo, k - 1 - w):k - 1])
        out.append((k, left, _mean_unit(we.embeddings[k:min(hi, k + w)]), t))
    return out


def bisect(stretch: int, start: float, end: float, we: WindowEmbeddings, options: ClusteringOptions) -> list[Piece]:
    """Cut at the most dissimilar point while it is below split_similarity, then cut each side again."""
    out: list[Piece] = []
    todo = [(start, end, 0, len(we.embeddings))]  # a work list, not recursion: a stretch may hold many turns
    while todo:
        a, b, lo, hi = todo.pop()
        best = None
        for k, left, right, t in _candidates(we, lo, hi, start, a, b, options):
            sim = float(left @ right)
            if best is None or sim < best[0]:
                best = (sim, k, t)
        if best is None or best[0] >= options.split_similarity:
            out.append(Piece(stretch, a, b, lo, hi))
            continue
        _, k, t = best
        todo.append((a, t, lo, k - 1))
        todo.append((t, b, k, hi))
    return sorted(out, key=lambda p: p.start)


def cluster(pieces: list[Piece], windows: list[WindowEmbeddings], lo: int, hi: int | None,
            options: ClusteringOptions) -> np.ndarray:
    """A cluster index per piece, between `lo` and `hi` clusters (None: no upper bound).

    At most `max_cluster_pieces` nodes enter one agglomeration (its score matrix is
    quadratic). Pieces enter longest first; after each round the waiting ones that clearly
    belong to a cluster join it, and the rest enter the next round beside the clusters found
    so far, so a minor voice is not lost however many pieces the dominant one has.
    """
    n = len(pieces)
    dur = np.array([p.duration for p in pieces], dtype=np.float64)
    sums = np.stack([windows[p.stretch].embeddings[p.lo:p.hi].sum(axis=0) for p in pieces]).astype(np.float64)
    order = np.argsort(-dur, kind="stable")
    seeds = order[dur[order] >= options.min_cluster_s]
    if len(seeds) == 0:
        seeds = order
    cap = max(2, options.max_cluster_pieces)

    labels = np.full(n, -1, dtype=int)
    node_sums = np.zeros((0, sums.shape[1]))
    node_dur = np.zeros(0)
    pending = seeds
    while len(pending):
        room = max(1, cap - len(node_dur))
        batch, pending = pending[:room], pending[room:]
        merged = _centroid_linkage(np.concatenate([node_sums, sums[batch]]),
                                   np.concatenate([node_dur, dur[batch]]), 1, None, options)
        old = merged[:len(node_dur)]
        # relabel earlier members through their node's new cluster
        labels[labels >= 0] = old[labels[labels >= 0]]
        labels[batch] = merged[len(node_dur):]
        node_sums, node_dur = _node_stats(sums, dur, labels)
        if len(pending) == 0:
            break
        best, score = _nearest(sums[pending], dur[pending], node_sums, node_dur, options)
        fits = score >= 0
        labels[pending[fits]] = best[fits]
        pending = pending[~fits]
        node_sums, node_dur = _node_stats(sums, dur, labels)
        if len(node_dur) >= cap:  # pathological: more voices than the cap; keep the memory bound
            labels[pending] = _nearest(sums[pending], dur[pending], node_sums, node_dur, options)[0]
            break

    labels = _merge_voices(labels, sums, dur, lo, options)
    count = int(labels.max()) + 1
    if count > (hi if hi is not None else count) or count < lo:
        # the exact or bounded count is reached on the clusters themselves, not the pieces
        node_sums, node_dur = _node_stats(sums, dur, labels)
        if count < lo:
            labels = _split_to(labels, sums, dur, seeds, lo, options)
        else:
            forced = _centroid_linkage(node_sums, node_dur, lo, hi, options)
            labels[labels >= 0] = forced[labels[labels >= 0]]

    rest = np.flatnonzero(labels < 0)
    if len(rest):
        node_sums, node_dur = _node_stats(sums, dur, labels)
        labels[rest] = _nearest(sums[rest], dur[rest], node_sums, node_dur, options)[0]
    _, labels = np.unique(labels, return_inverse=True)
    return labels


def _merge_voices(labels: np.ndarray, sums: np.ndarray, dur: np.ndarray, lo: int,
                  options: ClusteringOptions) -> np.ndarray:
    """Join clusters of at least `small_cluster_s` whose centroids reach `voice_similarity`, most
    similar first, never below `lo` clusters.

    The size correction expects two big clusters of one voice to sit at cosine ~1, but a voice's
    passages differ in more than noise (measured on the 2-hour benchmark input: sub-clusters of one
    voice at 0.82-0.88 from its main cluster, each one passage repeated through the input), while
    whole-voice centroids of different voices sat at <= 0.78 on every input but the two where GE2E
    cannot tell the voices apart at all. The margin is thin on both sides (0.02)."""
    labels = labels.copy()
    while True:
        node_sums, node_dur = _node_stats(sums, dur, labels)
        if len(node_dur) <= max(1, lo):
            return labels
        units = _unit(node_sums)
        score = units @ units.T
        big = node_dur >= options.small_cluster_s
        score[~(big[:, None] & big[None, :])] = -np.inf
        np.fill_diagonal(score, -np.inf)
        i, j = np.unravel_index(int(np.argmax(score)), score.shape)
        if score[i, j] < options.voice_similarity:
            return labels
        labels[labels == j] = i
        labels[labels > j] -= 1


def _split_to(labels: np.ndarray, sums: np.ndarray, dur: np.ndarray, seeds: np.ndarray, lo: int,
              options: ClusteringOptions) -> np.ndarray:
    """Re-run the agglomeration on the (capped) seeds down to `lo` clusters; asked for more
    speakers than the threshold finds, the last merges are undone."""
    seeds = seeds[:max(lo, options.max_cluster_pieces)]
    out = np.full(len(labels), -1, dtype=int)
    out[seeds] = _centroid_linkage(sums[seeds], dur[seeds], lo, lo, options)
    return out


def _node_stats(sums: np.ndarray, dur: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    k = int(labels.max()) + 1
    mask = labels >= 0
    node_sums = np.zeros((k, sums.shape[1]))
    np.add.at(node_sums, labels[mask], sums[mask])
    node_dur = np.bincount(labels[mask], weights=dur[mask], minlength=k).astype(np.float64)
    return node_sums, node_dur


def _nearest(sums: np.ndarray, dur: np.ndarray, node_sums: np.ndarray, node_dur: np.ndarray,
             options: ClusteringOptions) -> tuple[np.ndarray, np.ndarray]:
    """Best node per row and how far its corrected cosine clears the merge threshold."""
    best = np.empty(len(sums), dtype=int)
    margin = np.empty(len(sums))
    units = _unit(node_sums)
    node_shrink = _shrink(node_dur, options)
    for a in range(0, len(sums), 4096):  # bounded temporaries for very long inputs
        s, d = sums[a:a + 4096], dur[a:a + 4096]
        score = (_unit(s) @ units.T) * np.outer(_shrink(d, options), node_shrink)
        score -= _pair_threshold(np.minimum.outer(d, node_dur), options)
        best[a:a + 4096] = np.argmax(score, axis=1)
        margin[a:a + 4096] = score[np.arange(len(s)), best[a:a + 4096]]
    return best, margin


def _shrink(dur: np.ndarray, options: ClusteringOptions) -> np.ndarray:
    """1 / expected norm of a centroid holding `dur` seconds of one voice, relative to its noise-free value.

    Window embeddings scatter around a voice's direction with a variance falling as 1/duration
    (fitted on the samples: a 1.6 s window sits at cosine ~0.89 to its voice's centroid, a 6 s
    turn ~0.93 to another turn of the voice), so the cosine two same-voice clusters can be
    expected to reach is 1 / sqrt((1 + c/d1) (1 + c/d2)). Comparing cosines against that
    instead of one fixed threshold keeps short sentences from each founding a speaker.
    """
    return np.sqrt(1.0 + options.noise_s / np.maximum(dur, 1e-3))


def _pair_threshold(smaller_dur: np.ndarray, options: ClusteringOptions) -> np.ndarray:
    # A single 1.6 s window can sit as far from its own voice (corrected cosine ~0.81 at
    # sentence ends) as from a similar voice; a tiny cluster therefore needs less to join.
    return np.where(smaller_dur < options.small_cluster_s, options.small_merge_similarity, options.merge_similarity)


def _centroid_linkage(sums: np.ndarray, dur: np.ndarray, lo: int, hi: int | None,
                      options: ClusteringOptions) -> np.ndarray:
    """Greedy agglomeration on summed window embeddings (length-weighted centroids).

    Merges the pair that most clears its threshold (see `_shrink`, `_pair_threshold`) until
    none does and at most `hi` clusters remain, never going below `lo`. Returns a cluster
    index per row, numbered from 0.
    """
    k = len(sums)
    if k <= 1:
        return np.zeros(k, dtype=int)
    sums = sums.copy()
    dur = dur.astype(np.float64).copy()
    owner = np.arange(k)
    alive = np.ones(k, dtype=bool)
    unit = _unit(sums)
    shrink = _shrink(dur, options)
    score = (unit @ unit.T) * np.outer(shrink, shrink) - _pair_threshold(np.minimum.outer(dur, dur), options)
    np.fill_diagonal(score, -np.inf)
    # per-row best kept up to date, so each merge costs O(k) instead of a full O(k^2) argmax
    row_best = np.argmax(score, axis=1)
    row_max = score[np.arange(k), row_best]
    count = k
    while count > lo:
        i = int(np.argmax(row_max))
        j = int(row_best[i])
        if row_max[i] < 0 and (hi is None or count <= hi):
            break
        sums[i] += sums[j]
        dur[i] += dur[j]
        owner[owner == j] = i
        alive[j] = False
        score[j, :] = -np.inf
        score[:, j] = -np.inf
        row_max[j] = -np.inf
        shrink = _shrink(dur, options)
        row = (_unit(sums[i:i + 1]) @ _unit(sums).T)[0] * shrink * shrink[i]
        row -= _pair_threshold(np.minimum(dur, dur[i]), options)
        row[~alive] = -np.inf
        row[i] = -np.inf
        score[i, :] = row
        score[:, i] = row
        row_best[i] = int(np.argmax(row))
        row_max[i] = row[row_best[i]]
        stale = alive & ((row_best == i) | (row_best == j))
        stale[i] = False
        for r in np.flatnonzero(stale):
            row_best[r] = int(np.argmax(score[r]))
            row_max[r] = score[r, row_best[r]]
        better = alive & (row > row_max)
        row_best[better] = i
        row_max[better] = row[better]
        count -= 1
    _, labels = np.unique(owner, return_inverse=True)
    return labels


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def centroid_sums(pieces: list[Piece], windows: list[WindowEmbeddings], n_labels: int) -> np.ndarray:
    """(n_labels, dim) float64: each cluster's window embeddings summed (so longer pieces weigh more)."""
    sums = np.zeros((n_labels, windows[0].embeddings.shape[1]), dtype=np.float64)
    for p in pieces:
        sums[p.label] += windows[p.stretch].embeddings[p.lo:p.hi].sum(axis=0)
    return sums


def centroids(pieces: list[Piece], windows: list[WindowEmbeddings], n_labels: int) -> np.ndarray:
    """(n_labels, dim) float32 unit centroids of the clusters."""
    return _unit(centroid_sums(pieces, windows, n_labels)).astype(np.float32)


def split_by_centroids(piece: Piece, we: WindowEmbeddings, cents: np.ndarray, stretch_start: float,
                       options: ClusteringOptions) -> list[Piece]:
    """Cut where one side is clearly nearer one cluster and the other side another one."""
    out: list[Piece] = []
    todo = [piece]
    while todo:
        g = todo.pop()
        best = None
        for k, left, right, t in _candidates(we, g.lo, g.hi, stretch_start, g.start, g.end, options):
            if float(left @ right) >= options.change_similarity:
                continue
            sl, sr = cents @ left, cents @ right
            a, b = int(np.argmax(sl)), int(np.argmax(sr))
            # one side keeps the piece's own cluster, so no cluster can vanish (num_speakers stays exact)
            if a == b or g.label not in (a, b):
                continue
            margin = min(sl[a] - sl[b], sr[b] - sr[a])
            if margin >= options.change_margin and (best is None or margin > best[0]):
                best = (margin, k, t, a, b)
        if best is None:
            out.append(g)
            continue
        _, k, t, a, b = best
        todo.append(Piece(g.stretch, g.start, t, g.lo, k - 1, a))
        todo.append(Piece(g.stretch, t, g.end, k, g.hi, b))
    return out
