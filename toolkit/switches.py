"""Where the language changes inside one speaker's stretch of speech: pure decisions over evidence.

A region whose language decision is clear (language.AudioEvidence.clear), whose decode is in one
script and covers it is taken as one language: it costs nothing here. Any other region gets a closer look:
Whisper's language probabilities over short probes across it (each probe encoded on its own:
probes cut from the region's encoder output measured useless, ru 0.94 on its own against tl 0.54
sliced), each probe labelled by the same audio rule as a region. Where the labels change, the
region is cut at the pause between decoded words (or at a joint between merged regions) nearest
the change, and each piece is decided and decoded on its own.

A window merged from several same-speaker regions (short pauses) is probed region by region even
when its decision is clear, and one region is enough to cut at its joint: merging respects the
language decision.

Measured, and left out: lingua's `detect_multiple_languages_of` over the first decode. A forced
decode comes out in the forced language, so its sections only ever split relatives (uk inside
ru, tr inside az) and never found a real switch on the samples, the dev scenes or our scenes.
"""

from __future__ import annotations

from .language import CONFIDENT, RULED_OUT, SURE, WELL_HEARD, AudioEvidence, audio_evidence
from .transcript import Word

PROBE_S = 2.0  # s of audio behind one probe's language probabilities
PROBE_HOP_S = 1.0  # s between probe starts
# mel frames a probe is encoded as (6 s): its language probabilities matched those of the 20 s
# input regions get (same top label on 16 of 17 probes measured), at a fifth of the cost
PROBE_FRAMES = 600
MIN_PIECE_S = 1.0  # a shorter stretch in another language is not split off
# probes in a row that must agree before a language other than the region's counts: single 2 s
# probes of the synthetic Azerbaijani voice over music measured p(de) 0.86 and p(en) 0.62
MIN_PROBES = 2
MIN_GAP_S = 0.02  # s between two decoded words that counts as a pause
SNAP_S = 0.8  # s around a change within which a pause between words (or a joint) is looked for
MIN_SCRIPT_RUN = 2  # words in another script that make a decode suspect
# s of a region without decoded words that make it suspect: a decoder in the wrong language stops
# early (a Russian decode dropped the Azerbaijani 3 s that followed without a pause); the decodes
# of the samples leave at most ~0.5 s uncovered
UNCOVERED_S = 1.5

SCRIPTS = (("Cyrl", 0x0400, 0x052F), ("Arab", 0x0600, 0x06FF), ("Latn", 0x0041, 0x024F))


def script(text: str) -> str | None:
    """The script of a word's letters (Cyrillic, Arabic, Latin), or None for digits and punctuation."""
    counts: dict[str, int] = {}
    for ch in text:
        if ch.isalpha():
            for name, low, high in SCRIPTS:
                if low <= ord(ch) <= high:
                    counts[name] = counts.get(name, 0) + 1
                    break
    return max(counts, key=counts.get) if counts else None


def mixed_script(words: list[Word]) -> bool:
    """Whether a decode holds a run of words in a script other than its main one: a forced decode
    that broke out of its language (Whisper writes Russian in Cyrillic even under `az`)."""
    scripts = [s for s in (script(w.word) for w in words) if s]
    if not scripts:
        return False
    main = max(set(scripts), key=scripts.count)
    run = best = 0
    for s in scripts:
        run = run + 1 if s != main else 0
        best = max(best, run)
    return best >= MIN_SCRIPT_RUN


def uncovered(start: float, end: float, words: list[Word]) -> float:
    """The longest stretch of the region without decoded words."""
    edges = [start, *(t for w in words for t in (w.start, w.end)), end]
    return max(b - a for a, b in zip(edges[::2], edges[1::2], strict=False))


def needs_closer_look(audio: AudioEvidence, start: float, end: float, words: list[Word]) -> bool:
    return not audio.clear or mixed_script(words) or uncovered(start, end, words) >= UNCOVERED_S


def merged_spans(start: float, end: float, joints: tuple[float, ...]) -> list[tuple[float, float]]:
    """The regions a merged window was made of (between its joints): each heard on its own before
    the merge is trusted, so that a merge never joins two languages."""
    bounds = [start, *joints, end]
    return list(zip(bounds, bounds[1:], strict=False))


def probe_spans(start: float, end: float) -> list[tuple[float, float]]:
    """Probes across a region, every PROBE_HOP_S, the last one ending at the region's end; none
    for a region too short to hold two pieces."""
    if end - start < 2 * MIN_PIECE_S + PROBE_HOP_S:
        return []
    spans, t = [], start
    while t + PROBE_S < end:
        spans.append((t, t + PROBE_S))
        t += PROBE_HOP_S
    spans.append((max(start, end - PROBE_S), end))
    return spans


def heard(probs: dict[str, float], candidates: tuple[str, ...], outsiders: bool, region_language: str) -> str | None:
    """A probe's language: a well-heard candidate the audio gives CONFIDENT (an outsider: SURE);
    else a low-resource candidate when every well-heard language is under RULED_OUT, or the
    region's own well-heard language is under CONFIDENT there (a probe of the synthetic
    Azerbaijani voice can get p(en) 0.2-0.35; probes of English or Russian speech measured
    0.64-0.94); else None (cannot tell)."""
    audio = audio_evidence(probs, candidates, outsiders)
    loudest = max((lang for lang in audio.masses if lang in WELL_HEARD), key=audio.masses.get, default=None)
    if loudest and audio.masses[loudest] >= (CONFIDENT if loudest in candidates else SURE):
        return loudest
    weak = [c for c in candidates if c not in WELL_HEARD]
    if not weak:
        return None
    quiet = loudest is None or audio.masses[loudest] < RULED_OUT or (
        region_language in WELL_HEARD and audio.masses.get(region_language, 0.0) < CONFIDENT)
    return max(weak, key=lambda c: audio.masses[c]) if quiet else None


def pieces(start: float, end: float, spans: list[tuple[float, float]], labels: list[str | None],
           region_language: str, words: list[Word], joints: tuple[float, ...] = (),
           min_probes: int = MIN_PROBES) -> list[tuple[float, float]]:
    """The region cut where the probes' language changes; [(start, end)] when it does not. A language
    other than the region's counts from `min_probes` probes in a row."""
    runs: list[tuple[str, float, float, int]] = []  # (language, first probe start, last probe end, probes)
    for (a, b), label in zip(spans, labels, strict=True):
        if runs and runs[-1][0] == label:
            runs[-1] = (label, runs[-1][1], b, runs[-1][3] + 1)
        else:
            runs.append((label, a, b, 1))
    agreed: list[tuple[str, float, float, int]] = []
    for run in runs:
        if run[0] is None or (run[3] < min_probes and run[0] != region_language):
            continue
        if agreed and agreed[-1][0] == run[0]:
            agreed[-1] = (run[0], agreed[-1][1], run[2], agreed[-1][3] + run[3])
        else:
            agreed.append(run)
    runs = agreed
    cuts = []
    for (_, _, end_a, _), (_, start_b, _, _) in zip(runs, runs[1:], strict=False):
        cut = _snap((end_a + start_b) / 2, words, joints)
        if cut - (cuts[-1] if cuts else start) >= MIN_PIECE_S and end - cut >= MIN_PIECE_S:
            cuts.append(cut)
    bounds = [start, *cuts, end]
    return list(zip(bounds, bounds[1:], strict=False))


def _snap(t: float, words: list[Word], joints: tuple[float, ...]) -> float:
    """The pause nearest `t`: a joint between merged regions, else the middle of the nearest gap
    between decoded words within SNAP_S, else `t` itself. The nearest, not the widest: the words
    of a decode in the wrong language are timed loosely, and switches come with 0-80 ms pauses."""
    near = [j for j in joints if abs(j - t) <= SNAP_S]
    if near:
        return min(near, key=lambda j: abs(j - t))
    gaps = [(a.end + b.start) / 2 for a, b in zip(words, words[1:], strict=False)
            if b.start - a.end >= MIN_GAP_S and abs((a.end + b.start) / 2 - t) <= SNAP_S]
    return min(gaps, key=lambda g: abs(g - t)) if gaps else t


def spill(words: list[Word], cut: float, from_end: bool) -> int:
    """How many words at the end (or start) of a well-heard piece's decode lie past its last pause
    within SNAP_S of `cut` and are doubtful (mean probability < 0.5): the other language's first
    words, decoded in this one because a cut fell late ("... mission, a MOUD!")."""
    order = list(reversed(words)) if from_end else list(words)
    for n in range(1, len(order)):
        a, b = (order[n], order[n - 1]) if from_end else (order[n - 1], order[n])
        if b.start - a.end >= MIN_GAP_S and abs((a.end + b.start) / 2 - cut) <= SNAP_S:
            tail = order[:n]
            return n if sum(w.probability for w in tail) / n < 0.5 else 0
    return 0
