"""Language and text of speech regions: runs the decodes that `language` and `switches` ask for.

The decisions are pure (`language.py`, `switches.py`); this module is their executor over one
`RegionRecognizer`, and every step is one batched model call over all the regions in hand:
language probabilities, decodes in the audio's languages, decodes in the languages the text
points to, then, for regions that are not plainly one language, probes for a switch and the
decision again on each piece.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import switches
from .asr import Decoded, RegionRecognizer, Span, Window
from .language import (
    WELL_HEARD,
    LanguageDecision,
    TextLanguageId,
    audio_evidence,
    choose,
    first_languages,
    text_points_to,
)


@dataclass
class Recognized:
    """One piece of a region in one language: what one segment holds."""

    window: Window  # its audio, encoded (the translate task reuses the encoder output)
    decision: LanguageDecision


def recognize(recognizer: RegionRecognizer, audio: np.ndarray, spans: list[tuple[float, float]],
              text_id: TextLanguageId, outsiders: bool = True,
              joints: list[tuple[float, ...]] | None = None) -> list[list[Recognized]]:
    """For each (start, end) region, its pieces in order: one, or several where the language changes.
    `joints` are, per region, the pauses where shorter regions were merged into it (preferred cuts)."""
    windows = [recognizer.window(audio, a, b) for a, b in spans]
    decisions = decide(recognizer, windows, text_id, outsiders)
    result = [[Recognized(w, d)] for w, d in zip(windows, decisions, strict=True)]
    joints = joints or [() for _ in spans]
    sliding = {i for i, d in enumerate(decisions) if switches.needs_closer_look(d.audio, *spans[i], d.decoded.words)}
    look = [i for i in range(len(spans)) if i in sliding or joints[i]]
    probes = {i: switches.probe_spans(*spans[i]) if i in sliding else switches.merged_spans(*spans[i], joints[i])
              for i in look}
    probe_windows = [recognizer.window(audio, a, b, switches.PROBE_FRAMES) for i in look for a, b in probes[i]]
    probs = iter(recognizer.language_probs(probe_windows))
    cut: dict[int, list[tuple[float, float]]] = {}
    for i in look:
        labels = []
        for a, b in probes[i]:
            label = switches.heard(next(probs), text_id.candidates, outsiders, decisions[i].language)
            # a merged-in region shorter than a probe is not heard well enough on its own to cut at
            labels.append(label if i in sliding or b - a >= switches.PROBE_S else None)
        found = switches.pieces(*spans[i], probes[i], labels, decisions[i].language, decisions[i].decoded.words,
                                joints[i], min_probes=switches.MIN_PROBES if i in sliding else 1)
        if len(found) > 1:
            cut[i] = found
    if cut:
        piece_windows = [recognizer.window(audio, a, b) for i in cut for a, b in cut[i]]
        decided = iter(zip(piece_windows, decide(recognizer, piece_windows, text_id, outsiders), strict=True))
        for i in cut:
            found = [Recognized(*next(decided)) for _ in cut[i]]
            # pieces that all came out in the region's language: the whole region's decode, which
            # had the context of all of it, stands
            if any(p.decision.language != decisions[i].language for p in found):
                result[i] = _trimmed_at_cuts(found)
    return result


def decide(recognizer: RegionRecognizer, windows: list[Window], text_id: TextLanguageId,
           outsiders: bool = True) -> list[LanguageDecision]:
    """Each window's language and its decode in that language."""
    audio = [audio_evidence(p, text_id.candidates, outsiders) for p in recognizer.language_probs(windows)]
    decodes: list[dict[str, Decoded]] = [{} for _ in windows]
    verdicts: list[dict[str, tuple[str | None, float]]] = [{} for _ in windows]

    def run(wanted: list[tuple[int, str]]) -> None:
        for (i, lang), decoded in zip(wanted, recognizer.decode([(windows[i], lang) for i, lang in wanted]),
                                      strict=True):
            decodes[i][lang] = decoded
            verdicts[i][lang] = text_id.detect(decoded.text, also=lang)

    run([(i, lang) for i, a in enumerate(audio) for lang in first_languages(a)])
    run([(i, lang) for i, a in enumerate(audio)
         if (lang := text_points_to(a, verdicts[i][a.primary], decodes[i]))])
    return [choose(a, d, v) for a, d, v in zip(audio, decodes, verdicts, strict=True)]


def _trimmed_at_cuts(pieces: list[Recognized]) -> list[Recognized]:
    """Each well-heard piece without the other language's words it decoded past a late cut."""
    for left, right in zip(pieces, pieces[1:], strict=False):
        if left.decision.language == right.decision.language:
            continue
        cut = left.window.end
        for piece, from_end in ((left, True), (right, False)):
            words = piece.decision.decoded.words
            n = switches.spill(words, cut, from_end) if piece.decision.language in WELL_HEARD else 0
            if n and n < len(words):
                kept = words[:-n] if from_end else words[n:]
                piece.decision.decoded = _only(piece.decision.decoded, kept)
    return pieces


def _only(decoded: Decoded, words: list) -> Decoded:
    """`decoded` reduced to `words` (one span per original span that keeps any)."""
    keep = {id(w) for w in words}
    spans = []
    for span in decoded.spans:
        mine = [w for w in span.words if id(w) in keep]
        if mine:
            spans.append(Span(mine[0].start, mine[-1].end, "".join(w.word for w in mine).strip(), mine))
    return Decoded(decoded.language, decoded.task, spans, decoded.avg_logprob, decoded.tokens)
