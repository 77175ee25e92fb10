"""What every translation backend takes and gives back: requests, results, the backend protocol."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from ..asr import Window
    from ..progress import ProgressHook

UNRELIABLE = 0.5  # confidence below this is flagged `translation_unreliable`
# What a reader is told for each `TranslationResult.reason` (the evidence of `translation_unreliable`).
REASONS = {
    "checks": "the English disagrees with the source: see the other flags",
    "low_confidence": "low calibrated confidence",
    "weak_source_language": "this model does not translate this language reliably: a fluent sentence may be invented",
    "hallucination_phrase": "the model added boilerplate (a video outro or subtitle credit), removed",
    "repetition": "the model looped; nothing kept",
    "empty": "the model gave no translation",
    "no_end": "the model ran to its length limit",
    "no_audio": "no audio to translate from",
}


@dataclass
class TranslationRequest:
    text: str  # the segment's transcript
    source: str  # ISO 639-1 of the segment (az, ru, en, ...)
    audio: np.ndarray | None = None  # the segment's 16 kHz mono clip (for the whisper backend)
    avg_logprob: float | None = None  # the transcript's own decoder score, if known
    # The region as the recogniser already encoded it: the whisper backend then decodes the
    # translate task from the same encoder output instead of encoding the audio again.
    window: Window | None = None
    word_probabilities: tuple[float, ...] = ()  # the transcript's words, as the recogniser scored them
    seconds: float = 0.0  # of media the segment covers: progress is counted in these


def progress_seconds(requests: Sequence[TranslationRequest]) -> list[float]:
    """What each request counts for in progress: its seconds of media, or 1 each when none says."""
    if any(r.seconds > 0 for r in requests):
        return [max(0.0, r.seconds) for r in requests]
    return [1.0] * len(requests)


@dataclass
class TranslationResult:
    text: str  # "" when dropped or failed
    confidence: float  # 0..1, calibrated (translate/confidence.py); below UNRELIABLE: not to be trusted
    reliable: bool
    reason: str | None = None  # what the guard found: "hallucination_phrase", "repetition", "checks", ...
    backend: str = ""  # which model produced it (a routing table mixes several)
    # consistency checks that failed (translate/checks.py): name -> evidence, e.g.
    # {"negation": "'не' in the source, no negation in the English"}
    checks: dict[str, str] = field(default_factory=dict)
    error: str | None = None  # the backend raised: "ModelNotAvailableError: ..."; text is then ""

    @property
    def failed(self) -> bool:
        return self.error is not None


def failed_result(error: BaseException | str, backend: str = "") -> TranslationResult:
    message = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    return TranslationResult("", 0.0, False, "failed", backend, error=message)


def empty_result(backend: str) -> TranslationResult:
    """Nothing to translate: an empty source gives an empty, trustworthy translation."""
    return TranslationResult("", 1.0, True, None, backend)


class Translator(Protocol):
    name: str

    def translate(self, requests: list[TranslationRequest], target: str = "en",
                  progress: ProgressHook | None = None) -> list[TranslationResult]:
        """`progress("translate", done, total)` in the requests' seconds (`progress_seconds`)."""
        ...
