"""From a backend's raw output to a judged result: guard, consistency checks, calibrated confidence.

`translation_confidence` is a logistic model of the translation's quality (per-turn chrF / 100)
from the decoder's own score, the source's ASR scores, the source language and the number of
failed checks. Its coefficients were fitted by `scripts/calibrate_translation.py` on every turn
of the four public samples and the five dev scenes (Whisper base translate task, CPU int8); the
README gives the fit's ranking before and after, and leave-one-file-out. A result with a guard
reason or a failed check is never reliable, whatever its score: chrF does not see a reversed
negation or a lost name (FINDINGS.md), the checks do.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from .checks import consistency_checks
from .guard import guard
from .lexicon import Term
from .result import UNRELIABLE, TranslationRequest, TranslationResult

# Fitted by scripts/calibrate_translation.py on 52 turns (see the module docstring). Other inputs
# were tried and left out, as they did not rank better leave-one-file-out: the source's mean word
# probability and share of doubtful words, the number of failed checks (chrF does not see what
# they find), the length ratio, the share of source words unknown to the Russian dictionary.
COEFFICIENTS = {
    "intercept": 1.915,
    "decoder_logprob": 1.843,  # the translation's own mean token log-probability (Whisper: -0.2 good, -1 poor)
    "source_logprob": 0.288,  # the transcript's mean token log-probability
    "source_az": -0.658,  # Azerbaijani source (Whisper base does not translate it: chrF 12-21)
}
FLAGGED_CEILING = UNRELIABLE - 0.01  # a flagged result's confidence stays below the line


def features(request: TranslationRequest, decoder_logprob: float | None) -> dict[str, float]:
    """The model's inputs; a missing score takes the samples' median, so it neither helps nor hurts."""
    return {
        "decoder_logprob": decoder_logprob if decoder_logprob is not None else -0.6,
        "source_logprob": request.avg_logprob if request.avg_logprob is not None else -0.5,
        "source_az": 1.0 if request.source == "az" else 0.0,
    }


def calibrated(values: dict[str, float], coefficients: dict[str, float] = COEFFICIENTS) -> float:
    z = coefficients["intercept"] + sum(coefficients[k] * v for k, v in values.items())
    return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))


def judged(request: TranslationRequest, translation: str, *, backend: str, decoder_logprob: float | None = None,
           ratio: float | None = None, glossary: Iterable[Term] = (), target: str = "en",
           reason: str | None = None) -> TranslationResult:
    """The one verdict every backend's output gets. `reason`: what the backend already knows is
    wrong (a runaway decode, a source language the model cannot translate)."""
    text, found = guard(request.text, translation, ratio)
    reason = found or reason
    if not request.text.strip() and not text:
        return TranslationResult("", 1.0, True, None, backend)
    if not text:  # dropped (a loop, boilerplate only) or nothing came out
        return TranslationResult("", 0.0, False, reason or "empty", backend)
    checks = consistency_checks(request.text, request.source, text, glossary=glossary, target=target)
    confidence = calibrated(features(request, decoder_logprob))
    if checks and reason is None:
        reason = "checks"
    if reason is None and confidence < UNRELIABLE:
        reason = "low_confidence"
    if reason is not None:
        confidence = min(confidence, FLAGGED_CEILING)
    return TranslationResult(text, round(confidence, 3), reason is None, reason, backend, checks)
