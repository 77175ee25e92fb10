"""Who is who across a collection: the speakers of every transcript in a folder, clustered into identities.

Each transcript's speakers carry voice prints (`voices.py`), so linking never needs the audio.
Precision comes first, since two men made one is worse than one man seen twice:
- average linkage inside a complete-linkage floor: two groups of appearances merge when their
  mean cosine reaches `threshold` and no two appearances of the result sit below `floor`, so
  two different voices are never chained together through a third, while a man heard in many
  videos is not split apart by one noisy pair (complete linkage alone would need all pairs);
- cannot-link: two speakers of one transcript are two people by construction, never merged;
- a print resting on little speech (a 2 s turn) must reach `weak_margin` more and is marked
  weak, so a short, noisy print is not forced into an identity.

The result is `OUTDIR/speakers.json` (`SPEAKERS_NAME`): each identity (`PERSON_001`, or the voice
library's name) with its appearances (file, local speaker, speech seconds, similarity), the
threshold and the weak marks, so every decision can be audited.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from .transcript import VoicePrint, is_transcript_dict
from .utils import atomic_open
from .voices import LINK_FLOOR, LINK_THRESHOLD, MATCH_THRESHOLD, WEAK_MARGIN, WEAK_SECONDS, match_speakers, pool, unit

SPEAKERS_NAME = "speakers.json"
CACHE_NAME = ".speakers.cache.json"  # what each transcript holds for linking (see read_appearances)
SPEAKERS_VERSION = 1
# Cannot-link distance: beyond any cosine distance (<= 2) even averaged over 3,000 x 3,000 pairs
_APART = 1e9


@dataclass(frozen=True)
class LinkOptions:
    threshold: float = LINK_THRESHOLD  # lowest mean cosine between two groups of appearances that merge
    floor: float = LINK_FLOOR  # lowest cosine between any two appearances of one identity
    weak_seconds: float = WEAK_SECONDS  # a print on less speech than this is weak
    weak_margin: float = WEAK_MARGIN  # what a weak print must reach beyond threshold and floor to join
    # Memory bound: one clustering round holds at most this many prints (its distance matrices
    # are ~12 bytes x n^2: 190 MB at 4,000). Larger collections are linked in rounds, longest
    # prints first, each round's identities entering the next as pooled prints.
    max_prints: int = 4000

    def __post_init__(self) -> None:
        if not 0 < self.floor <= self.threshold <= 1:
            raise ValueError(f"need 0 < floor ({self.floor}) <= threshold ({self.threshold}) <= 1 (cosines)")


@dataclass(frozen=True)
class Appearance:
    """One speaker of one transcript."""

    file: str  # the transcript's JSON name inside OUTDIR
    media: str  # the media path the transcript records
    speaker: str  # its local id, SPEAKER_xx
    seconds: float  # speech the voice print rests on
    first: float  # start of the speaker's first segment (s)
    voice: VoicePrint
    name: str | None = None  # the voice library's name from transcription, if any


@dataclass
class Identity:
    id: str
    appearances: list[Appearance]
    similarities: list[tuple[float, float] | None]  # per appearance: (mean, lowest) cosine to the others
    weak: bool
    name: str | None = None
    name_score: float | None = None  # cosine to the library's print when the library named it
    notes: list[str] = field(default_factory=list)

    @property
    def files(self) -> list[str]:
        return sorted({a.file for a in self.appearances})

    @property
    def seconds(self) -> float:
        return sum(a.seconds for a in self.appearances)


def read_appearances(outdir: str | Path) -> tuple[list[Appearance], list[dict[str, str]]]:
    """Every speaker with a voice print in OUTDIR's transcripts, and the files left out (and why).

    What each transcript holds for linking is kept in OUTDIR/.speakers.cache.json, keyed by the
    file's size and modification time: relinking after a batch parses only the new transcripts
    (parsing is most of linking's time: ~60 MB/s, and an hour of transcript is ~1 MB of JSON).
    """
    outdir = Path(outdir)
    cache = _read_cache(outdir / CACHE_NAME)
    fresh: dict[str, dict[str, Any]] = {}
    out: list[Appearance] = []
    skipped: list[dict[str, str]] = []
    for path in sorted(outdir.glob("*.json")):
        if path.name in (SPEAKERS_NAME, CACHE_NAME):
            continue
        try:
            stat = path.stat()
        except OSError:
            continue
        key = [stat.st_size, stat.st_mtime_ns]
        entry = cache.get(path.name)
        if not isinstance(entry, dict) or entry.get("key") != key:
            entry = {"key": key, "speakers": _speaker_entries(path)}
        fresh[path.name] = entry
        speakers = entry["speakers"]
        if speakers == "unprinted":
            skipped.append({"file": path.name, "reason": "no voice prints (transcribed before voices were kept)"})
        elif isinstance(speakers, list):
            for sp in speakers:
                try:
                    out.append(Appearance(path.name, sp["media"], sp["id"], float(sp["voice"]["seconds"]),
                                          float(sp["first"]), VoicePrint.from_dict(sp["voice"]), sp.get("name")))
                except (KeyError, TypeError, ValueError):
                    continue
    if fresh != cache:
        try:
            with atomic_open(outdir / CACHE_NAME) as f:
                json.dump(fresh, f)
        except OSError:
            pass  # a cache that cannot be written costs time next run, nothing else
    return out, skipped


def _read_cache(path: Path) -> dict[str, Any]:
    try:
        cache = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return cache if isinstance(cache, dict) else {}


def _speaker_entries(path: Path) -> list[dict[str, Any]] | str | None:
    """A transcript's speakers with prints, "unprinted" for one without any, None for other JSON."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None  # not a transcript (or not ours to judge)
    if not is_transcript_dict(data):
        return None
    first: dict[str, float] = {}
    for seg in data["segments"]:
        if isinstance(seg, dict) and isinstance(seg.get("start"), (int, float)):
            speaker = seg.get("speaker") or "SPEAKER_00"
            first[speaker] = min(first.get(speaker, float("inf")), float(seg["start"]))
    media = str(data["media"].get("path", ""))
    entries = [{"id": str(e["id"]), "media": media, "first": first.get(e["id"], 0.0), "name": e.get("name") or None,
                "voice": e["voice"]}
               for e in data.get("speakers") or [] if isinstance(e, dict) and isinstance(e.get("voice"), dict)
               and e.get("id")]
    return entries if entries or not data.get("speakers") else "unprinted"


def cluster(embeddings: np.ndarray, groups: np.ndarray, seconds: np.ndarray,
            options: LinkOptions = LinkOptions()) -> np.ndarray:
    """Identity index per print (see the module's docstring); `groups` numbers the transcripts."""
    n = len(embeddings)
    if n == 0:
        return np.zeros(0, dtype=int)
    if len(np.unique(groups)) == 1:  # one transcript: its speakers are different people by construction
        return np.arange(n)  # (and a one-file batch does not pay scipy's import, 0.3 s)
    if n <= options.max_prints:
        return _linkage(unit(embeddings), [{int(g)} for g in groups], seconds, options)
    return _in_rounds(unit(embeddings), groups, seconds, options)


def _linkage(units: np.ndarray, groups: list[set[int]], seconds: np.ndarray, options: LinkOptions) -> np.ndarray:
    # 1. complete linkage cut at the floor: no identity holds two appearances less alike than that
    labels = _cut(units, groups, seconds, options, "complete", options.floor)
    if options.floor >= options.threshold:
        return labels
    # 2. inside each of those, average linkage cut at the threshold
    out = np.empty(len(units), dtype=int)
    count = 0
    for label in range(int(labels.max()) + 1):
        rows = np.flatnonzero(labels == label)
        inner = _cut(units[rows], [groups[i] for i in rows], seconds[rows], options, "average", options.threshold)
        out[rows] = count + inner
        count += int(inner.max()) + 1
    return out


def _cut(units: np.ndarray, groups: list[set[int]], seconds: np.ndarray, options: LinkOptions, method: str,
         similarity: float) -> np.ndarray:
    """scipy's hierarchical clustering on corrected cosine distances, cut at 1 - `similarity`."""
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    if len(units) == 1:
        return np.zeros(1, dtype=int)
    distance = 1.0 - units @ units.T  # (n, n) float32
    weak = seconds < options.weak_seconds
    distance[weak, :] += options.weak_margin  # a weak print must be that much nearer
    distance[:, weak] += options.weak_margin
    distance[weak[:, None] & weak[None, :]] -= options.weak_margin  # counted once for two weak prints
    for i, j in _conflicts(groups):
        distance[i, j] = distance[j, i] = _APART
    np.fill_diagonal(distance, 0.0)
    condensed = squareform(np.maximum(distance, 0.0), checks=False).astype(np.float64)
    del distance
    # Merge heights are monotone for complete and average linkage, so one cut gives clusters whose
    # largest (complete) or mean (average) distance between any two sides is within 1 - similarity.
    labels = fcluster(linkage(condensed, method=method), t=1.0 - similarity, criterion="distance")
    return np.unique(labels, return_inverse=True)[1]


def _conflicts(groups: list[set[int]]) -> list[tuple[int, int]]:
    """Pairs of prints that share a transcript (bounded by the speakers per transcript, squared)."""
    members: dict[int, list[int]] = {}
    for i, gs in enumerate(groups):
        for g in gs:
            members.setdefault(g, []).append(i)
    pairs = set()
    for rows in members.values():
        pairs.update((a, b) for k, a in enumerate(rows) for b in rows[k + 1:])
    return sorted(pairs)


def _in_rounds(units: np.ndarray, groups: np.ndarray, seconds: np.ndarray, options: LinkOptions) -> np.ndarray:
    """Beyond `max_prints`: rounds over the prints, longest first; each round's identities enter the
    next as pooled prints. Memory stays O(max_prints^2); the floor then holds exactly within a round
    and approximately across rounds (a new print meets an identity's centroid, not its members)."""
    order = np.argsort(-seconds, kind="stable")
    labels = np.full(len(units), -1)
    nodes: list[list[int]] = []  # members of each identity found so far
    cap = max(2, options.max_prints)
    start = 0
    while start < len(order):
        room = max(cap // 2, cap - len(nodes))  # at least half of every round is new prints
        batch = order[start:start + room]
        start += len(batch)
        node_units = np.stack([_pooled(units, seconds, m) for m in nodes]) if nodes else units[:0]
        node_groups = [{int(groups[i]) for i in m} for m in nodes]
        node_seconds = np.array([seconds[m].sum() for m in nodes])
        merged = _linkage(np.concatenate([node_units, units[batch]]), node_groups + [{int(groups[i])} for i in batch],
                          np.concatenate([node_seconds, seconds[batch]]), options)
        regrouped: dict[int, list[int]] = {}
        for k, members in enumerate(nodes):
            regrouped.setdefault(int(merged[k]), []).extend(members)
        for k, i in enumerate(batch):
            regrouped.setdefault(int(merged[len(nodes) + k]), []).append(int(i))
        nodes = list(regrouped.values())
        if len(nodes) > cap // 2 and start < len(order):
            # more identities than half a round: keep the largest as nodes, freeze the rest
            nodes.sort(key=lambda m: -seconds[m].sum())
            for members in nodes[cap // 2:]:
                labels[members] = labels.max() + 1
            nodes = nodes[:cap // 2]
    for members in nodes:
        labels[members] = labels.max() + 1
    return labels


def _pooled(units: np.ndarray, seconds: np.ndarray, members: list[int]) -> np.ndarray:
    return unit((units[members] * np.maximum(seconds[members], 1e-3)[:, None]).sum(axis=0))


def link(appearances: list[Appearance], options: LinkOptions = LinkOptions(),
         known: dict[str, VoicePrint] | None = None) -> list[Identity]:
    """Identities over `appearances` (prints of one encoder), largest first (most files, then most speech).

    `known`: a voice library's pooled prints by name; an identity whose pooled print reaches the
    naming threshold takes that name, one identity per name.
    """
    if not appearances:
        return []
    files = {f: i for i, f in enumerate(sorted({a.file for a in appearances}))}
    labels = cluster(np.stack([a.voice.embedding for a in appearances]),
                     np.array([files[a.file] for a in appearances]),
                     np.array([a.seconds for a in appearances]), options)
    members: dict[int, list[int]] = {}
    for i, label in enumerate(labels):
        members.setdefault(int(label), []).append(i)
    groups = sorted(members.values(), key=lambda m: (-len({appearances[i].file for i in m}),
                                                      -sum(appearances[i].seconds for i in m),
                                                      appearances[m[0]].file, appearances[m[0]].speaker))
    identities = [_identity(f"PERSON_{k:03d}", [appearances[i] for i in m], options)
                  for k, m in enumerate(groups, start=1)]
    _name(identities, known)
    return identities


def _identity(id_: str, members: list[Appearance], options: LinkOptions) -> Identity:
    members = sorted(members, key=lambda a: (a.file, a.speaker))
    units = unit(np.stack([a.voice.embedding for a in members]))
    sims = units @ units.T
    others = [np.delete(row, k) for k, row in enumerate(sims)]
    similarities = [(round(float(o.mean()), 3), round(float(o.min()), 3)) if o.size else None for o in others]
    weak = any(a.seconds < options.weak_seconds for a in members)
    return Identity(id_, members, similarities, weak)


def _name(identities: list[Identity], known: dict[str, VoicePrint] | None) -> None:
    """The library's name where it recognises an identity; else the name transcription gave its speakers."""
    if known:
        pooled = {i.id: pool([a.voice for a in i.appearances]) for i in identities}
        for ident_id, match in match_speakers(pooled, known).items():
            ident = next(i for i in identities if i.id == ident_id)
            ident.name, ident.name_score = match.name, match.score
    for ident in identities:
        given = sorted({a.name for a in ident.appearances if a.name})
        if ident.name or not given:
            continue
        if len(given) == 1:
            ident.name = given[0]
        else:
            ident.notes.append(f"its speakers were named {', '.join(given)} at transcription: left unnamed")


def link_collection(outdir: str | Path, library: str | Path | None = None,
                    options: LinkOptions = LinkOptions()) -> Path:
    """Link every transcript's speakers in OUTDIR into identities and write OUTDIR/speakers.json."""
    from .voice_library import VoiceLibrary

    outdir = Path(outdir)
    appearances, skipped = read_appearances(outdir)
    encoders: dict[str, int] = {}
    for a in appearances:
        encoders[a.voice.encoder] = encoders.get(a.voice.encoder, 0) + 1
    encoder = max(encoders, key=encoders.get) if encoders else ""
    for file in sorted({a.file for a in appearances if a.voice.encoder != encoder}):
        skipped.append({"file": file, "reason": f"voice prints of another encoder than {encoder}"})
    appearances = [a for a in appearances if a.voice.encoder == encoder]
    known = None
    if library:
        with VoiceLibrary(library) as lib:
            known = lib.voices(encoder)
    identities = link(appearances, options, known)
    document = {
        "version": SPEAKERS_VERSION,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "encoder": encoder,
        "method": "average linkage on the cosine similarity of voice prints (groups merge from a mean of "
                  "`threshold`) inside complete linkage at `floor` (no two appearances of one person below it); "
                  "two speakers of one transcript are never one person; a print on under `weak_seconds` of "
                  "speech must reach `weak_margin` more",
        "threshold": options.threshold, "floor": options.floor, "weak_seconds": options.weak_seconds,
        "weak_margin": options.weak_margin,
        "library": str(library) if library else None,
        "naming_threshold": MATCH_THRESHOLD if library else None,
        "identities": [_identity_dict(i, options.weak_seconds) for i in identities],
        "skipped": skipped,
    }
    path = outdir / SPEAKERS_NAME
    with atomic_open(path) as f:
        json.dump(document, f, ensure_ascii=False, indent=1)
        f.write("\n")
    return path


def _identity_dict(ident: Identity, weak_seconds: float) -> dict[str, Any]:
    d: dict[str, Any] = {"id": ident.id, "name": ident.name, "files": len(ident.files),
                         "seconds": round(ident.seconds, 3), "weak": ident.weak}
    if ident.name_score is not None:
        d["name_score"] = round(ident.name_score, 3)
    if ident.notes:
        d["notes"] = list(ident.notes)
    d["appearances"] = [{"file": a.file, "media": a.media, "speaker": a.speaker, "seconds": round(a.seconds, 3),
                         "first": round(a.first, 3), "similarity": s[0] if s else None,
                         "lowest": s[1] if s else None, "weak": a.seconds < weak_seconds,
                         **({"name": a.name} if a.name else {})}
                        for a, s in zip(ident.appearances, ident.similarities, strict=True)]
    return d


def read_speakers_file(path: str | Path) -> dict[str, Any] | None:
    """A speakers.json as written by `link_collection`; None when it is missing or not one."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(document, dict) or not isinstance(document.get("identities"), list):
        return None
    document.setdefault("skipped", [])
    return document
