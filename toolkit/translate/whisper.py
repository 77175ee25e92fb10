"""Whisper's own `task="translate"` on each segment's audio: the offline backend, English only.

The only part of the translation stage that imports `asr`: it decodes the translate task from the
encoder output the recogniser already made for the segment's region.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ..asr import Decoded, DecodeOptions, RegionRecognizer, Window
from ..media import SAMPLE_RATE
from ..models import Runtime, decode_batch_size, load_whisper, resolve_runtime
from ..progress import ProgressHook
from ..utils import chunks
from .confidence import judged
from .guard import compression_ratio
from .lexicon import Term
from .result import TranslationRequest, TranslationResult, empty_result, progress_seconds

# Whisper tiny/base/small translate these to English tolerably (FLEURS X->en in the Whisper
# paper); anything else, Azerbaijani included (chrF 12-21 measured here), is never reliable,
# because fluent invention is the failure mode.
WHISPER_SMALL_SIZES = ("tiny", "base", "small")
WHISPER_TRUSTED_SOURCES = frozenset(
    "ru uk de fr es it pt nl pl sv ca ja zh ko tr cs ro da fi no hu el id vi".split())


class WhisperTranslator:
    """faster-whisper task="translate" on each segment's own audio; English is its only target."""

    def __init__(self, whisper_model: str = "base", runtime: Runtime | None = None, *, beam_size: int = 5,
                 batch_size: int = 0, trusted_sources: frozenset[str] | None = None, glossary: Iterable[Term] = ()):
        self.whisper_model = whisper_model
        self.runtime = runtime or resolve_runtime()
        self.beam_size = beam_size
        self.batch_size = decode_batch_size(self.runtime, batch_size)
        self.glossary = tuple(glossary)
        small = Path(whisper_model).name.split(".")[0] in WHISPER_SMALL_SIZES or any(
            f"-{s}" in Path(whisper_model).name for s in WHISPER_SMALL_SIZES)
        self.trusted_sources = trusted_sources if trusted_sources is not None else (
            WHISPER_TRUSTED_SOURCES if small else None)
        self.name = f"whisper-{Path(whisper_model).name} translate (ct2 {self.runtime.describe()})"

    @functools.cached_property
    def recognizer(self) -> RegionRecognizer:
        # the same (name, runtime) as transcription, so the model loaded for it is reused
        return RegionRecognizer(load_whisper(self.whisper_model, self.runtime), DecodeOptions(beam_size=self.beam_size),
                                batch_size=self.batch_size)

    def translate(self, requests: list[TranslationRequest], target: str = "en",
                  progress: ProgressHook | None = None) -> list[TranslationResult]:
        if target != "en":
            raise ValueError(f"Whisper translates to English only, not {target!r}; use a text model (e.g. nllb)")
        results: list[TranslationResult | None] = [None] * len(requests)
        todo = []
        for i, req in enumerate(requests):
            if not req.text.strip():
                results[i] = empty_result(self.name)
            elif req.window is None and (req.audio is None or len(req.audio) < SAMPLE_RATE // 10):
                results[i] = TranslationResult("", 0.0, False, "no_audio", self.name)
            else:
                todo.append(i)
        seconds = progress_seconds(requests)
        total = sum(seconds)
        done = total - sum(seconds[i] for i in todo)
        for chunk in chunks(todo, self.batch_size):
            windows = [self._window(requests[i]) for i in chunk]
            decodes = self.recognizer.decode([(w, requests[i].source) for w, i in zip(windows, chunk, strict=True)],
                                             task="translate")
            for i, decoded in zip(chunk, decodes, strict=True):
                results[i] = self._judged(requests[i], decoded)
            done += sum(seconds[i] for i in chunk)
            if progress:
                progress("translate", min(done, total), total)
        return [r for r in results if r is not None]

    def _window(self, req: TranslationRequest) -> Window:
        if req.window is not None:
            return req.window
        clip = np.asarray(req.audio, dtype=np.float32)
        return self.recognizer.window(clip, 0.0, len(clip) / SAMPLE_RATE)

    def _judged(self, req: TranslationRequest, decoded: Decoded) -> TranslationResult:
        weak = self.trusted_sources is not None and req.source not in self.trusted_sources
        logprob = decoded.avg_logprob if decoded.spans else None
        return judged(req, decoded.text, backend=self.name, decoder_logprob=logprob,
                      ratio=compression_ratio(decoded.text) if decoded.text else None, glossary=self.glossary,
                      reason="weak_source_language" if weak else None)
