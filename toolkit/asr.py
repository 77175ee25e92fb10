"""Speech recognition of speech regions with faster-whisper's CTranslate2 model, in batches.

Whisper's encoder costs as much for a 3 s turn as for a 20 s one. A region is therefore
encoded once (`Window`), and that one encoder output serves language detection,
transcription in each candidate language that needs trying, and the translate task.
Regions are decoded in batches through CTranslate2's batched encode, detect_language and
generate (the primitives under faster-whisper's `BatchedInferencePipeline`), with one prompt
per region, so one batch mixes languages; words are aligned one region at a time.
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .media import SAMPLE_RATE
from .transcript import Word
from .utils import chunks

WINDOW_FRAMES = 3000  # mel frames in Whisper's 30 s input window
FRAMES_PER_SECOND = 100
# A decode that stopped short of its window's end goes on from there, as faster-whisper's own
# loop does, unless less than this is left (Whisper often ends a turn's decode early).
MIN_REST_FRAMES = 30
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
    compression_ratio_threshold: float = 2.4  # above it a decode is a loop and dropped
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
    avg_logprob: float = -10.0  # per token, of the decode; -10 when nothing was kept
    tokens: int = 0  # decoded tokens behind the kept spans (weights avg_logprob when joining)

    def followed_by(self, rest: Decoded) -> Decoded:
        """This decode and the decode of the rest of its window."""
        if not rest.spans:
            return self
        if not self.spans:
            return rest
        n = self.tokens + rest.tokens
        return Decoded(self.language, self.task, self.spans + rest.spans,
                       (self.avg_logprob * self.tokens + rest.avg_logprob * rest.tokens) / max(1, n), n)

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
    encoder_output: np.ndarray | None = None  # (encoder frames, width), host memory
    min_frames: int | None = None  # encoder input floor, overriding DecodeOptions.min_encoder_frames

    @property
    def duration(self) -> float:
        return self.end - self.start

    @property
    def content_frames(self) -> int:
        return self.features.shape[-1] - 1  # the extractor's last frame is padding

    def rest(self, frame: int) -> Window:
        """What follows `frame` of this window, as a window of its own."""
        return Window(self.start + frame / FRAMES_PER_SECOND, self.end, self.features[:, frame:])


@dataclass
class _Generated:
    """One item's raw decoder output."""

    tokens: list[int]
    avg_logprob: float
    no_speech_prob: float
    truncated: bool  # stopped by the token budget, not by the model


class RegionRecognizer:
    """Language probabilities and decodes for regions of one audio file, over one model.

    Every call takes a list: regions are encoded, language-detected and decoded in batches of
    `batch_size` (one generate call decodes regions in different languages, each with its own
    prompt). On a GPU batching is where the speed is; on a 2-core CPU it speeds decoding too
    (measured 1.6x at 4 regions), while the encoder there runs one region at a time, which
    measured faster than batched.
    """

    def __init__(self, model, options: DecodeOptions = DecodeOptions(), batch_size: int = 8):
        self.model = model  # faster_whisper.WhisperModel
        self.options = options
        self.batch_size = max(1, batch_size)
        self._on_gpu = model.model.device == "cuda"
        self._transcribe_defaults = {
            name: p.default for name, p in inspect.signature(model.transcribe).parameters.items()
            if p.default is not inspect.Parameter.empty
        }

    def window(self, audio: np.ndarray, start: float, end: float, min_frames: int | None = None) -> Window:
        clip = audio[int(start * SAMPLE_RATE):int(end * SAMPLE_RATE)]
        return Window(start, end, self.model.feature_extractor(clip), min_frames=min_frames)

    def _encoder_frames(self, window: Window) -> int:
        floor = self.options.min_encoder_frames if window.min_frames is None else window.min_frames
        if not floor:
            return WINDOW_FRAMES
        content = window.features.shape[-1]
        return min(WINDOW_FRAMES, max(floor, 100 * -(-(content + 50) // 100)))

    def encode(self, windows: list[Window]) -> None:
        """Fill in the encoder output of each window that lacks one."""
        import ctranslate2
        from faster_whisper.audio import pad_or_trim

        todo = [w for w in windows if w.encoder_output is None]
        per_call = self.batch_size if self._on_gpu else 1
        for frames, group in _grouped(todo, self._encoder_frames):
            for chunk in chunks(group, per_call):
                features = np.stack([pad_or_trim(w.features[:, :frames], frames) for w in chunk])
                # host memory: windows are regrouped for each decode, and a regrouped batch is
                # rebuilt from these rows (a GPU copy of a few MB per batch)
                output = self.model.model.encode(_storage(features), to_cpu=True)
                if str(output.dtype).endswith("bfloat16"):  # numpy has no bfloat16
                    output = output.to(ctranslate2.DataType.float32)
                output = np.array(output)
                for w, row in zip(chunk, output, strict=True):
                    w.encoder_output = row

    def language_probs(self, windows: list[Window]) -> list[dict[str, float]]:
        """Whisper's distribution over all its languages, for each window's first 30 s."""
        self.encode(windows)
        probs: list[dict[str, float]] = [{} for _ in windows]
        for _, idx in _grouped(range(len(windows)), lambda i: windows[i].encoder_output.shape):
            for chunk in chunks(idx, self.batch_size):
                results = self.model.model.detect_language(_stacked(windows, chunk))
                for i, result in zip(chunk, results, strict=True):
                    probs[i] = {token[2:-2]: float(p) for token, p in result}
        return probs

    @functools.lru_cache(maxsize=2)  # noqa: B019 - one per task, built once per recognizer
    def _options(self, task: str):
        from faster_whisper.transcribe import TranscriptionOptions, get_suppressed_tokens

        o = self.options
        chosen = {
            "beam_size": o.beam_size, "temperatures": [o.temperature],
            "no_repeat_ngram_size": o.no_repeat_ngram_size, "condition_on_previous_text": False,
            "word_timestamps": o.word_timestamps and task == "transcribe", "without_timestamps": task != "transcribe",
            "compression_ratio_threshold": None, "log_prob_threshold": None,
            "no_speech_threshold": o.no_speech_threshold,
            "multilingual": False, "clip_timestamps": "0", "initial_prompt": None, "prefix": None,
            "hallucination_silence_threshold": None, "hotwords": None,
        }
        values = {}
        for name in TranscriptionOptions.__dataclass_fields__:
            if name in chosen:
                values[name] = chosen[name]
            else:  # everything else as faster-whisper's own transcribe() would set it
                values[name] = self._transcribe_defaults[name]
        options = TranscriptionOptions(**values)
        if options.suppress_tokens:  # depends on the vocabulary only, not the language
            options.suppress_tokens = get_suppressed_tokens(self._tokenizer("en", task), options.suppress_tokens)
        return options

    def _token_budget(self, duration: float) -> int:
        o = self.options
        return min(MAX_DECODE_TOKENS, int(o.min_tokens + o.max_tokens_per_second * duration))

    @functools.lru_cache(maxsize=64)  # noqa: B019 - one recognizer per model, a handful of languages
    def _tokenizer(self, language: str, task: str):
        from faster_whisper.tokenizer import Tokenizer

        return Tokenizer(self.model.hf_tokenizer, self.model.model.is_multilingual, task=task, language=language)

    def decode(self, requests: list[tuple[Window, str]], task: str = "transcribe") -> list[Decoded]:
        """Decode each (window, language) pair, the language forced; words outside the window are dropped."""
        windows = [w for w, _ in requests]
        self.encode(windows)
        options = self._options(task)
        generated: list[_Generated | None] = [None] * len(requests)
        for _, idx in _grouped(range(len(requests)), lambda i: windows[i].encoder_output.shape):
            for chunk in chunks(idx, self.batch_size):
                prompts = [self.model.get_prompt(self._tokenizer(requests[i][1], task), [],
                                                 without_timestamps=options.without_timestamps) for i in chunk]
                budgets = [self._token_budget(windows[i].duration) for i in chunk]
                for i, out in zip(chunk, self._generate(_stacked(windows, chunk), prompts, budgets, options),
                                  strict=True):
                    generated[i] = out
        decoded, resume = self._decoded(requests, generated, task, options)
        rests = [(i, requests[i][0].rest(frame)) for i, frame in enumerate(resume)
                 if frame is not None and requests[i][0].content_frames - frame >= MIN_REST_FRAMES]
        if rests:
            more = self.decode([(rest, requests[i][1]) for i, rest in rests], task)
            for (i, _), extra in zip(rests, more, strict=True):
                decoded[i] = decoded[i].followed_by(extra)
        return decoded

    def _generate(self, encoder_output, prompts: list[list[int]], budgets: list[int], options) -> list[_Generated]:
        temperature = options.temperatures[0]
        search = ({"beam_size": options.beam_size, "patience": options.patience} if temperature <= 0 else
                  {"beam_size": 1, "num_hypotheses": options.best_of, "sampling_topk": 0,
                   "sampling_temperature": temperature})  # as faster-whisper samples above 0
        results = self.model.model.generate(
            encoder_output, prompts, **search, length_penalty=options.length_penalty,
            repetition_penalty=options.repetition_penalty,
            no_repeat_ngram_size=options.no_repeat_ngram_size, max_length=len(prompts[0]) + max(budgets),
            return_scores=True, return_no_speech_prob=True, suppress_blank=options.suppress_blank,
            suppress_tokens=options.suppress_tokens,
            max_initial_timestamp_index=int(round(options.max_initial_timestamp / self.model.time_precision)),
        )
        out = []
        for result, budget in zip(results, budgets, strict=True):
            tokens = result.sequences_ids[0]
            # the same average faster-whisper computes from the returned (length-normalised) score
            avg_logprob = result.scores[0] * len(tokens) ** options.length_penalty / (len(tokens) + 1)
            # A batch runs to its longest item's budget and each item is cut at its own: only a
            # decode that reaches its budget (a loop) can differ from decoding it alone.
            out.append(_Generated(tokens[:budget], avg_logprob, result.no_speech_prob, len(tokens) >= budget))
        return out

    def _decoded(self, requests: list[tuple[Window, str]], generated: list[_Generated | None], task: str,
                 options) -> tuple[list[Decoded], list[int | None]]:
        """The decodes, and for each the frame to go on from (None: the window is done)."""
        pieces: list[list[dict]] = []
        resume: list[int | None] = []
        for (window, language), gen in zip(requests, generated, strict=True):
            if gen is None or (options.no_speech_threshold is not None
                               and gen.no_speech_prob > options.no_speech_threshold):
                pieces.append([])
                resume.append(None)
                continue
            items, seek, single_ending = self.model._split_segments_by_timestamps(
                tokenizer=self._tokenizer(language, task), tokens=gen.tokens, time_offset=0.0,
                segment_size=window.content_frames, segment_duration=window.duration, seek=0)
            pieces.append(items)
            # where faster-whisper's loop would go on: after the last word, or the last timestamp;
            # a decode cut by its token budget is a loop and does not go on
            resume.append(None if gen.truncated or single_ending else seek)
        if options.word_timestamps:
            self._add_words(requests, pieces, task, options)
            for i, items in enumerate(pieces):
                ends = [w["end"] for item in items for w in item.get("words", [])]
                if resume[i] is not None and ends and ends[-1] > 0:
                    resume[i] = round(ends[-1] * FRAMES_PER_SECOND)
        # a decode that made no progress would decode the same window again
        resume = [None if frame is not None and frame <= 0 else frame for frame in resume]
        decoded = [self._kept(window, language, task, items, gen, options.word_timestamps)
                   for (window, language), gen, items in zip(requests, generated, pieces, strict=True)]
        return decoded, resume

    def _add_words(self, requests: list[tuple[Window, str]], pieces: list[list[dict]], task: str, options) -> None:
        """Word times from cross-attention, one window at a time: faster-whisper's word clean-up
        carries the last word's end from one item to the next, which across independent windows
        would make a window's word times depend on its batch."""
        for (window, language), items in zip(requests, pieces, strict=True):
            tokenizer = self._tokenizer(language, task)
            if any(t < tokenizer.eot for item in items for t in item["tokens"]):
                self.model.add_word_timestamps([items], tokenizer, _stacked([window], [0]), window.content_frames,
                                               options.prepend_punctuations, options.append_punctuations, 0.0)

    def _kept(self, window: Window, language: str, task: str, items: list[dict], gen: _Generated | None,
              with_words: bool) -> Decoded:
        spans = []
        duration = window.duration
        tokenizer = self._tokenizer(language, task)
        if gen is None or compression_ratio(tokenizer.decode(gen.tokens).strip()) > \
                self.options.compression_ratio_threshold:
            return Decoded(language=language, task=task)  # a loop no_repeat_ngram_size did not stop
        for item in items:
            text = tokenizer.decode(item["tokens"]).strip()
            if not text or item["start"] >= duration:
                continue  # text past the window
            if with_words:
                words = [Word(window.start + max(0.0, w["start"]), window.start + min(duration, w["end"]), w["word"],
                              w["probability"]) for w in item.get("words", []) if w["start"] < duration]
                if not words:
                    continue
                # the words are what is kept, so the span's text and times are theirs
                span = Span(words[0].start, words[-1].end, "".join(w.word for w in words).strip(), words)
            else:
                span = Span(window.start + item["start"], window.start + min(duration, item["end"]), text)
            spans.append(span)
        if not spans:
            return Decoded(language=language, task=task)
        return Decoded(language, task, spans, gen.avg_logprob, len(gen.tokens))


def compression_ratio(text: str) -> float:
    """faster-whisper's loop measure: UTF-8 bytes over zlib bytes (a loop compresses well)."""
    from faster_whisper.transcribe import get_compression_ratio

    return get_compression_ratio(text)


def _storage(array: np.ndarray):
    import ctranslate2

    return ctranslate2.StorageView.from_array(np.ascontiguousarray(array))


def _stacked(windows: list[Window], idx) -> Any:
    return _storage(np.stack([windows[i].encoder_output for i in idx]))


def _grouped(items, key) -> list[tuple[Any, list]]:
    """`items` grouped by `key`, groups in order of first appearance (stacked arrays need equal shapes)."""
    groups: dict[Any, list] = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    return list(groups.items())

