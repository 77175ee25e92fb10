"""Speech recognition of one region at a time with faster-whisper.

Whisper's encoder always sees a 30 s window, so on a 2-core CPU it costs as much for a 3 s
turn as for a 30 s one. A region is therefore encoded once (`Window`), and that one encoder
output serves language detection, transcription in each candidate language that needs
trying, and the translate task.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .media import SAMPLE_RATE
from .transcript import Word

WINDOW_FRAMES = 3000  # mel frames in Whisper's 30 s input window
MAX_DECODE_TOKENS = 440  # Whisper's 448-token context, less the prompt


@dataclass(frozen=True)
class DecodeOptions:
    """Decoding settings; defaults measured on our samples (FINDINGS.md)."""

    beam_size: int = 5
    # One temperature: the fallback ladder doubled the cost on hard audio and varied run to
    # run, while no_repeat_ngram_size=3 at temperature 0 stopped the loops it was meant to fix.
    temperature: float = 0.0
    no_repeat_ngram_size: int = 3
    # Bounds the decode of a region by its length: a loop cannot run past this many tokens.
    max_tokens_per_second: float = 20.0
    min_tokens: int = 24
    word_timestamps: bool = True
    compression_ratio_threshold: float = 2.4  # above it a decoded span is a loop and dropped
    # Encoder input in mel frames (100 per second): Whisper's window is 3000 (30 s), and on a
    # CPU the encoder dominates a turn's cost whatever its length. A turn is encoded as its own
    # frames plus padding, at least this many (CTranslate2 accepts shorter inputs). Measured on
    # the samples: 2000 (20 s) cut the pipeline's time by a third with Russian CER and chrF
    # equal or better; 1000 cost Russian CER (0.07 -> 0.13 on real_voice_mixed). 0: always 3000.
    min_encoder_frames: int = 2000
    no_speech_threshold: float = 0.6


@dataclass
class Span:
    """One of Whisper's segments inside a window, times in the media's clock."""

    start: float
    end: float
    text: str
    words: list[Word] = field(default_factory=list)


@dataclass
class Decoded:
    """One decode of a window in one language and task."""

    language: str
    task: str
    spans: list[Span] = field(default_factory=list)
    avg_logprob: float = -10.0  # token-weighted over the kept spans

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.spans if s.text)

    @property
    def words(self) -> list[Word]:
        return [w for s in self.spans for w in s.words]


@dataclass
class Window:
    """A region: its place in the media, its mel features and its (lazily computed) encoder output."""

    start: float  # seconds in the media
    end: float
    features: np.ndarray  # shape: (n_mels, n_frames)
    encoder_output: Any = None  # ctranslate2.StorageView of the window's first (at most) 30 s


class RegionRecognizer:
    """Language probabilities and decodes for regions of one audio file, over one model."""

    def __init__(self, model, options: DecodeOptions = DecodeOptions()):
        self.model = model  # faster_whisper.WhisperModel
        self.options = options
        self._transcribe_defaults = {
            name: p.default for name, p in inspect.signature(model.transcribe).parameters.items()
            if p.default is not inspect.Parameter.empty
        }

    def window(self, audio: np.ndarray, start: float, end: float) -> Window:
        clip = audio[int(start * SAMPLE_RATE):int(end * SAMPLE_RATE)]
        return Window(start, end, self.model.feature_extractor(clip))

    def _encoded(self, window: Window):
        if window.encoder_output is None:
            from faster_whisper.audio import pad_or_trim

            frames = WINDOW_FRAMES
            if self.options.min_encoder_frames:
                content = window.features.shape[-1]
                frames = min(WINDOW_FRAMES, max(self.options.min_encoder_frames, 100 * -(-(content + 50) // 100)))
            window.encoder_output = self.model.encode(pad_or_trim(window.features[:, :frames], frames))
        return window.encoder_output

    def language_probs(self, window: Window) -> dict[str, float]:
        """Whisper's distribution over all its languages for the window's first 30 s."""
        results = self.model.model.detect_language(self._encoded(window))[0]
        return {token[2:-2]: float(p) for token, p in results}

    def _options(self, duration: float, task: str):
        from faster_whisper.transcribe import TranscriptionOptions

        o = self.options
        max_tokens = min(MAX_DECODE_TOKENS, int(o.min_tokens + o.max_tokens_per_second * duration))
        chosen = {
            "beam_size": o.beam_size, "temperatures": [o.temperature],
            "no_repeat_ngram_size": o.no_repeat_ngram_size, "condition_on_previous_text": False,
            "word_timestamps": o.word_timestamps and task == "transcribe", "without_timestamps": task != "transcribe",
            "compression_ratio_threshold": None, "log_prob_threshold": None,
            "no_speech_threshold": o.no_speech_threshold, "max_new_tokens": max_tokens,
            "multilingual": False, "clip_timestamps": "0", "initial_prompt": None, "prefix": None,
            "hallucination_silence_threshold": None, "hotwords": None,
        }
        values = {}
        for name in TranscriptionOptions.__dataclass_fields__:
            if name in chosen:
                values[name] = chosen[name]
            else:  # everything else as faster-whisper's own transcribe() would set it
                values[name] = self._transcribe_defaults[name]
        return TranscriptionOptions(**values)

    def decode(self, window: Window, language: str, task: str = "transcribe") -> Decoded:
        """Decode the window in `language` (forced); words outside the window are dropped."""
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_suppressed_tokens

        options = self._options(window.end - window.start, task)
        tokenizer = Tokenizer(self.model.hf_tokenizer, self.model.model.is_multilingual, task=task,
                              language=language)
        if options.suppress_tokens:
            options.suppress_tokens = get_suppressed_tokens(tokenizer, options.suppress_tokens)
        segments = self.model.generate_segments(window.features, tokenizer, options, False,
                                                self._encoded(window))
        spans, logprob_sum, token_count = [], 0.0, 0
        duration = window.end - window.start
        for seg in segments:
            if seg.compression_ratio > self.options.compression_ratio_threshold or seg.start >= duration:
                continue  # a loop that no_repeat_ngram_size did not stop, or text past the window
            words = [Word(window.start + max(0.0, w.start), window.start + min(duration, w.end), w.word,
                          w.probability) for w in (seg.words or []) if w.start < duration]
            if options.word_timestamps:
                if not words:
                    continue
                # the words are what is kept, so the span's text and times are theirs
                span = Span(words[0].start, words[-1].end, "".join(w.word for w in words).strip(), words)
            else:
                span = Span(window.start + seg.start, window.start + min(duration, seg.end), seg.text.strip())
            spans.append(span)
            logprob_sum += seg.avg_logprob * max(1, len(seg.tokens))
            token_count += max(1, len(seg.tokens))
        return Decoded(language=language, task=task, spans=spans,
                       avg_logprob=logprob_sum / token_count if token_count else -10.0)
