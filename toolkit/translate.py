"""Segment translation: Whisper's own `task="translate"`, or a text MT model (MarianMT / opus-mt,
NLLB-200, M2M100, mBART-50) through transformers or CTranslate2, routed per source language.

Every backend ends in the same guard (`assess_translation`), so a translation is never trusted
only because a model produced it: Whisper base invents YouTube outros and loops on Azerbaijani
(shared/FINDINGS.md), and MT models loop or truncate on text they do not know.

Spec strings for `load_translator`:
  "auto"                         a cached NLLB-200 or opus-mt pair if the HF cache has one, else whisper
  "whisper"                      faster-whisper task="translate" on the segment's audio (English only)
  "nllb", "m2m100", "opus-mt"    short names (opus-mt is Helsinki-NLP/opus-mt-{src}-{tgt} per source)
  "Helsinki-NLP/opus-mt-ru-en"   a hub name, or a local folder saved with `save_pretrained`
  "ct2:/models/nllb-ct2"         a `ct2-transformers-converter` folder (tokenizer files copied in)
  "ru=opus-mt,az=nllb,*=whisper" a routing table from source language to any of the above
Nothing here loads a model at import; models are loaded on first use and cached.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .asr import Decoded, DecodeOptions, RegionRecognizer, Window
from .asr import compression_ratio as whisper_compression_ratio
from .media import SAMPLE_RATE
from .models import ModelNotAvailableError, Runtime, decode_batch_size, load_whisper, offline, resolve_runtime
from .utils import chunks

UNRELIABLE = 0.5  # confidence below this is flagged `translation_unreliable`
FAILED_PREFIX = "failed: "  # TranslationResult.reason of a request whose backend raised
LOGPROB_FLOOR = -1.0  # Whisper's own log_prob_threshold; confidence 0.5 sits exactly here
COMPRESSION_CEILING = 2.4  # Whisper's compression_ratio_threshold
MAX_LENGTH_RATIO = 3.0  # translation chars / source chars; ru/az -> en is ~0.8-1.3
MIN_LENGTH_RATIO = 0.15

SHORT_NAMES = {
    "nllb": "facebook/nllb-200-distilled-600M",
    "m2m100": "facebook/m2m100_418M",
    "opus-mt": "Helsinki-NLP/opus-mt-{src}-{tgt}",
}
AUTO_NLLB = SHORT_NAMES["nllb"]

# ISO 639-1 -> FLORES-200 codes used by NLLB's tokenizer. Azerbaijani is North Azerbaijani
# (Latin script, Republic of Azerbaijan), not South Azerbaijani (azb_Arab).
NLLB_CODES = {
    "af": "afr_Latn", "am": "amh_Ethi", "ar": "arb_Arab", "az": "azj_Latn", "be": "bel_Cyrl",
    "bg": "bul_Cyrl", "bn": "ben_Beng", "ca": "cat_Latn", "cs": "ces_Latn", "da": "dan_Latn",
    "de": "deu_Latn", "el": "ell_Grek", "en": "eng_Latn", "es": "spa_Latn", "et": "est_Latn",
    "fa": "pes_Arab", "fi": "fin_Latn", "fr": "fra_Latn", "he": "heb_Hebr", "hi": "hin_Deva",
    "hr": "hrv_Latn", "hu": "hun_Latn", "hy": "hye_Armn", "id": "ind_Latn", "it": "ita_Latn",
    "ja": "jpn_Jpan", "ka": "kat_Geor", "kk": "kaz_Cyrl", "ko": "kor_Hang", "ky": "kir_Cyrl",
    "lt": "lit_Latn", "lv": "lvs_Latn", "mn": "khk_Cyrl", "nl": "nld_Latn", "no": "nob_Latn",
    "pl": "pol_Latn", "ps": "pbt_Arab", "pt": "por_Latn", "ro": "ron_Latn", "ru": "rus_Cyrl",
    "sk": "slk_Latn", "sl": "slv_Latn", "sr": "srp_Cyrl", "sv": "swe_Latn", "tg": "tgk_Cyrl",
    "th": "tha_Thai", "tk": "tuk_Latn", "tr": "tur_Latn", "uk": "ukr_Cyrl", "ur": "urd_Arab",
    "uz": "uzn_Latn", "vi": "vie_Latn", "zh": "zho_Hans",
}
MBART50_CODES = {
    "ar": "ar_AR", "az": "az_AZ", "de": "de_DE", "en": "en_XX", "es": "es_XX", "fa": "fa_IR",
    "fr": "fr_XX", "it": "it_IT", "ja": "ja_XX", "ka": "ka_GE", "kk": "kk_KZ", "ru": "ru_RU",
    "tr": "tr_TR", "uk": "uk_UA", "zh": "zh_CN",
}

# Whisper tiny/base/small translate these to English tolerably (FLEURS X->en in the Whisper
# paper); anything else, Azerbaijani included (chrF 12-21 measured here), is capped below
# UNRELIABLE even when the text looks clean, because fluent invention is the failure mode.
WHISPER_SMALL_SIZES = ("tiny", "base", "small")
WHISPER_TRUSTED_SOURCES = frozenset(
    "ru uk de fr es it pt nl pl sv ca ja zh ko tr cs ro da fi no hu el id vi".split())

# Whisper's training data was full of subtitle files, so it emits their credits and YouTube
# outros over speech it cannot read. Matched after normalisation (lowercase, no punctuation).
HALLUCINATION_PHRASES = (
    "thanks for watching", "thank you for watching", "thank you so much for watching",
    "thank you very much for watching", "thanks for listening and", "please subscribe",
    "like and subscribe", "subscribe to my channel", "subscribe to our channel", "subscribe to the channel",
    "don t forget to subscribe", "don t forget to like", "hit the bell", "click the bell",
    "let me know in the comments", "in the comments below", "leave a comment", "leave your comments",
    "see you in the next video", "see you in the next episode", "in the next video",
    "end of this video", "end of the video", "if you have any questions", "please let me know",
    "subtitles by", "subtitled by", "subtitles made by", "subtitle by", "captions by", "captioned by",
    "amara org", "transcription by", "transcribed by", "translated by", "editor of subtitles",
    "subtitle editor", "corrector", "dimatorzok", "www ", " com ",
)
# Credits that are only boilerplate when they are the whole output ("You." over silence).
WHOLE_HALLUCINATIONS = frozenset({"you", "to be continued", "the end", "bye", "bye bye", "music", "applause"})


@dataclass
class TranslationRequest:
    text: str  # the segment's transcript
    source: str  # ISO 639-1 of the segment (az, ru, en, ...)
    audio: np.ndarray | None = None  # the segment's 16 kHz mono clip (for the whisper backend)
    avg_logprob: float | None = None  # the transcript's own decoder score, if known
    # The region as the recogniser already encoded it: the whisper backend then decodes the
    # translate task from the same encoder output instead of encoding the audio again.
    window: Window | None = None


@dataclass
class TranslationResult:
    text: str  # "" when dropped
    confidence: float  # 0..1
    reliable: bool
    reason: str | None = None  # why unreliable: "hallucination_phrase", "repetition", "length_ratio", ...
    backend: str = ""  # which model produced it (a routing table mixes several)


class Translator(Protocol):
    name: str

    def translate(self, requests: list[TranslationRequest], target: str = "en",
                  progress: Callable[[int, int], None] | None = None) -> list[TranslationResult]: ...


# --------------------------------------------------------------------------------------------
# The guard


def _normalise(text: str) -> str:
    text = re.sub(r"[^\w\s]", " ", text.lower().replace("’", "'").replace("'", " "))
    return " " + re.sub(r"\s+", " ", text).strip() + " "


def hallucination_phrase(text: str) -> str | None:
    """The known boilerplate phrase `text` contains, if any."""
    norm = _normalise(text)
    if norm.strip() in WHOLE_HALLUCINATIONS:
        return norm.strip()
    for phrase in HALLUCINATION_PHRASES:
        if _normalise(phrase) in norm:
            return phrase
    return None


def repetition(text: str) -> bool:
    """A decoding loop: a word n-gram or a short character run repeated back to back."""
    # digits are left out so that "1000000" is not a loop
    if re.search(r"(.{2,12}?)(?:[\s,.-]*\1){4,}", re.sub(r"\d", "", text.lower())):
        return True
    words = _normalise(text).split()
    if len(words) >= 8 and len(set(words)) / len(words) < 0.3:
        return True
    for n in range(1, 5):
        run, best = 1, 1
        for i in range(n, len(words) - n + 1, n):
            run = run + 1 if words[i:i + n] == words[i - n:i] else 1
            best = max(best, run)
        if best >= (4 if n == 1 else 3):
            return True
    return False


def strip_boilerplate(text: str) -> str:
    """`text` without its boilerplate sentences; "" when nothing else is left."""
    sentences = split_sentences(text)
    kept = [s for s in sentences if hallucination_phrase(s) is None]
    return " ".join(kept).strip()


def assess_translation(source_text: str, translation: str, *, avg_logprob: float | None = None,
                       compression_ratio: float | None = None) -> tuple[float, str | None]:
    """One guard for every backend: (confidence 0..1, reason it is unreliable or None).

    Confidence is 1 + avg_logprob / 2 (so Whisper's -1.0 threshold maps to UNRELIABLE), capped
    by the text checks; a reason always comes with a confidence below UNRELIABLE.
    """
    source = source_text.strip()
    out = translation.strip()
    if not source and not out:
        return 1.0, None
    if not out:
        return 0.0, "empty"
    if hallucination_phrase(out):
        return 0.0, "hallucination_phrase"
    ratio = compression_ratio if compression_ratio is not None else whisper_compression_ratio(out)
    if repetition(out) or (len(out) > 60 and ratio > COMPRESSION_CEILING):
        return 0.05, "repetition"
    confidence = 0.9 if avg_logprob is None else min(1.0, max(0.0, 1.0 + avg_logprob / 2.0))
    if source:
        length_ratio = len(out) / len(source)
        if len(out) > 40 and length_ratio > MAX_LENGTH_RATIO:
            return min(confidence, 0.2), "length_ratio"
        if len(source) > 40 and length_ratio < MIN_LENGTH_RATIO:
            return min(confidence, 0.2), "length_ratio"
    if avg_logprob is not None and avg_logprob < LOGPROB_FLOOR:
        return min(confidence, UNRELIABLE - 0.01), "low_logprob"
    return max(confidence, UNRELIABLE), None


def guarded_result(source_text: str, translation: str, *, backend: str, avg_logprob: float | None = None,
            ratio: float | None = None) -> TranslationResult:
    translation = re.sub(r"\s+", " ", translation).strip()
    confidence, reason = assess_translation(source_text, translation, avg_logprob=avg_logprob,
                                            compression_ratio=ratio)
    if reason == "hallucination_phrase":
        translation = strip_boilerplate(translation)
    elif reason == "repetition":
        translation = ""  # a loop carries no meaning worth showing a reader
    return TranslationResult(translation, round(confidence, 3), reason is None, reason, backend)


def _empty(backend: str) -> TranslationResult:
    return TranslationResult("", 1.0, True, None, backend)


# --------------------------------------------------------------------------------------------
# Splitting long segments

_SENTENCE_END = re.compile(r"(?<=[.!?…;。！？])[\"»”)\]]*\s+")


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text.strip()) if s.strip()]


def split_text(text: str, count_tokens: Callable[[str], int], max_tokens: int) -> list[str]:
    """Pieces of `text` no longer than `max_tokens`, cut at sentence ends where possible.

    Short neighbouring sentences are packed together so the model keeps some context; a
    sentence over the budget is cut between words (MT models degrade, and Marian's positions
    run out, on inputs far longer than their training sentences).
    """
    text = text.strip()
    if not text:
        return []
    if count_tokens(text) <= max_tokens:
        return [text]
    units: list[str] = []
    for sentence in split_sentences(text):
        if count_tokens(sentence) <= max_tokens:
            units.append(sentence)
            continue
        chunk: list[str] = []
        for word in sentence.split():
            if chunk and count_tokens(" ".join(chunk + [word])) > max_tokens:
                units.append(" ".join(chunk))
                chunk = []
            chunk.append(word)
        if chunk:
            units.append(" ".join(chunk))
    pieces: list[str] = []
    for unit in units:
        if pieces and count_tokens(pieces[-1] + " " + unit) <= max_tokens:
            pieces[-1] = pieces[-1] + " " + unit
        else:
            pieces.append(unit)
    return pieces


# --------------------------------------------------------------------------------------------
# Text MT engines: one model each; `Seq2SeqTranslator` does routing-free split/batch/join


def _lang_tokens(tokenizer: Any, source: str, target: str) -> tuple[str | None, str | None]:
    """The (source, target) language tokens a multilingual tokenizer wants, or (None, None)."""
    vocab = tokenizer.get_vocab()
    if "eng_Latn" in vocab:
        table, kind = NLLB_CODES, "NLLB"
    elif "en_XX" in vocab:
        table, kind = MBART50_CODES, "mBART-50"
    elif "__en__" in vocab:
        return f"__{source}__", f"__{target}__"
    else:
        return None, None
    missing = [c for c in (source, target) if c not in table or table[c] not in vocab]
    if missing:
        raise ValueError(f"{kind} has no language code for {', '.join(missing)}")
    return table[source], table[target]


def _marian_target_prefix(tokenizer: Any, target: str) -> str:
    """Multi-target opus-mt models (e.g. opus-mt-en-ROMANCE) select the target with >>xx<<."""
    token = f">>{target}<<"
    return token + " " if token in tokenizer.get_vocab() else ""


def _decode_cap(n_input_tokens: int) -> int:
    """Most tokens one piece may generate; per input, so a piece's output never depends on its batch."""
    return min(512, 2 * n_input_tokens + 16)


class _Engine:
    """One loaded text-to-text model. `generate` returns (text, avg log-prob, ended with EOS) per text."""

    description: str
    tokenizer: Any
    max_tokens: int

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text)["input_ids"])

    def generate(self, texts: list[str], source: str, target: str) -> list[tuple[str, float | None, bool]]:
        raise NotImplementedError


def _load_tokenizer(path: str) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path, local_files_only=offline() or Path(path).is_dir())


def _token_budget(tokenizer: Any, config_max: int | None, cap: int) -> int:
    limits = [cap]
    if config_max:
        limits.append(int(config_max) - 8)  # room for language and end tokens
    model_max = getattr(tokenizer, "model_max_length", None)
    if model_max and model_max < 100_000:
        limits.append(int(model_max) - 8)
    return max(8, min(limits))


class _HFEngine(_Engine):
    def __init__(self, name: str, runtime: Runtime, num_beams: int, max_tokens: int, no_repeat_ngram_size: int):
        import torch
        from transformers import AutoModelForSeq2SeqLM
        from transformers.utils import logging as hf_logging

        local = Path(name).expanduser().is_dir()
        bar = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # a library stage must not draw on the caller's terminal
        try:
            self.tokenizer = _load_tokenizer(str(Path(name).expanduser()) if local else name)
            self.model = AutoModelForSeq2SeqLM.from_pretrained(
                str(Path(name).expanduser()) if local else name, local_files_only=offline() or local)
        except (OSError, ValueError) as e:
            where = "is not a model folder" if local else (
                "is not in the Hugging Face cache and downloads are off (HF_HUB_OFFLINE/TOOLKIT_OFFLINE)"
                if offline() else "could not be loaded or downloaded")
            raise ModelNotAvailableError(f"translation model {name!r} {where}: {e}") from e
        finally:
            if bar:
                hf_logging.enable_progress_bar()
        self.device = "cuda" if runtime.device == "cuda" and torch.cuda.is_available() else "cpu"
        self.model.to(self.device).eval()
        if self.device == "cuda" and "float16" in runtime.compute_type:
            self.model.half()  # the runtime's precision, as CTranslate2 models get it
        self.torch = torch
        self.num_beams = num_beams
        self.no_repeat_ngram_size = no_repeat_ngram_size
        self.max_tokens = _token_budget(self.tokenizer, getattr(self.model.config, "max_position_embeddings", None),
                                        max_tokens)
        half = ", float16" if self.model.dtype == torch.float16 else ""
        self.description = f"{name} (transformers, {self.device}{half})"

    def generate(self, texts: list[str], source: str, target: str) -> list[tuple[str, float | None, bool]]:
        src_tok, tgt_tok = _lang_tokens(self.tokenizer, source, target)
        kwargs: dict[str, Any] = {}
        if src_tok is not None:
            self.tokenizer.src_lang = src_tok
            kwargs["forced_bos_token_id"] = self.tokenizer.convert_tokens_to_ids(tgt_tok)
        else:
            prefix = _marian_target_prefix(self.tokenizer, target)
            texts = [prefix + t for t in texts]
        batch = self.tokenizer(texts, return_tensors="pt", padding=True, truncation=True,
                               max_length=self.max_tokens + 8).to(self.device)
        caps = [_decode_cap(int(n)) for n in batch["attention_mask"].sum(dim=1)]
        with self.torch.inference_mode():
            # +2: max_length counts the decoder start token, and models with forced_eos_token_id put EOS
            # in the last slot, which would make a runaway look finished
            out = self.model.generate(**batch, num_beams=self.num_beams, max_length=max(caps) + 2,
                                      no_repeat_ngram_size=self.no_repeat_ngram_size, return_dict_in_generate=True,
                                      output_scores=True, **kwargs)
        eos = self.model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos])
        decoded, ended = [], []
        for row, cap in zip(out.sequences.tolist(), caps, strict=True):
            row = row[1:cap + 1]
            stop = next((k for k, t in enumerate(row) if t in eos_ids), None)
            ended.append(stop is not None)
            decoded.append(self.tokenizer.decode(row if stop is None else row[:stop], skip_special_tokens=True))
        if getattr(out, "sequences_scores", None) is not None:
            scores = [float(s) for s in out.sequences_scores]
        else:
            # greedy search: the mean chosen-token log-probability, padding excluded
            trans = self.model.compute_transition_scores(out.sequences, out.scores, normalize_logits=True)
            scores = []
            for row in trans:
                valid = row[self.torch.isfinite(row)]
                scores.append(float(valid.mean()) if len(valid) else 0.0)
        return list(zip(decoded, scores, ended, strict=True))


class _CT2Engine(_Engine):
    def __init__(self, path: str, runtime: Runtime, num_beams: int, max_tokens: int, no_repeat_ngram_size: int):
        import ctranslate2

        folder = Path(path).expanduser()
        if not (folder / "model.bin").is_file():
            raise ModelNotAvailableError(f"{path}: not a CTranslate2 model folder (no model.bin)")
        try:
            self.tokenizer = _load_tokenizer(str(folder))
        except (OSError, ValueError) as e:
            raise ModelNotAvailableError(
                f"{path}: no tokenizer next to the CTranslate2 model; convert with "
                f"ct2-transformers-converter --copy_files <the tokenizer files> ({e})") from e
        self.translator = ctranslate2.Translator(str(folder), device=runtime.device,
                                                 compute_type=runtime.compute_type)
        self.num_beams = num_beams
        self.no_repeat_ngram_size = no_repeat_ngram_size
        self.max_tokens = _token_budget(self.tokenizer, None, max_tokens)
        self.description = f"{folder.name} (ct2 {runtime.describe()})"

    def generate(self, texts: list[str], source: str, target: str) -> list[tuple[str, float | None, bool]]:
        src_tok, tgt_tok = _lang_tokens(self.tokenizer, source, target)
        if src_tok is not None:
            self.tokenizer.src_lang = src_tok
        else:
            prefix = _marian_target_prefix(self.tokenizer, target)
            texts = [prefix + t for t in texts]
        sources = [self.tokenizer.convert_ids_to_tokens(self.tokenizer(t)["input_ids"]) for t in texts]
        prefixes = [[tgt_tok] for _ in texts] if tgt_tok is not None else None
        caps = [_decode_cap(len(s)) for s in sources]
        results = self.translator.translate_batch(
            sources, target_prefix=prefixes, beam_size=self.num_beams, return_scores=True,
            no_repeat_ngram_size=self.no_repeat_ngram_size, return_end_token=True,
            max_decoding_length=max(caps) + 1, max_input_length=self.max_tokens + 16)
        out = []
        end_tokens = {self.tokenizer.eos_token}
        for r, cap in zip(results, caps, strict=True):
            tokens = r.hypotheses[0]
            if tgt_tok is not None and tokens[:1] == [tgt_tok]:
                tokens = tokens[1:]
            tokens = tokens[:cap]
            stop = next((k for k, t in enumerate(tokens) if t in end_tokens), None)
            ids = self.tokenizer.convert_tokens_to_ids(tokens if stop is None else tokens[:stop])
            out.append((self.tokenizer.decode(ids, skip_special_tokens=True), float(r.scores[0]), stop is not None))
        return out


_ENGINE_LOCK = threading.Lock()


@functools.lru_cache(maxsize=8)
def _engine(spec: str, runtime: Runtime, num_beams: int, max_tokens: int, no_repeat_ngram_size: int) -> _Engine:
    if spec.startswith("ct2:"):
        return _CT2Engine(spec[4:], runtime, num_beams, max_tokens, no_repeat_ngram_size)
    return _HFEngine(spec, runtime, num_beams, max_tokens, no_repeat_ngram_size)


def load_engine(spec: str, runtime: Runtime | None = None, *, num_beams: int = 4, max_tokens: int = 200,
                no_repeat_ngram_size: int = 0) -> _Engine:
    """The cached engine for one model spec (hub name, folder, or ct2:FOLDER)."""
    with _ENGINE_LOCK:
        return _engine(spec, runtime or resolve_runtime(), num_beams, max_tokens, no_repeat_ngram_size)


class Seq2SeqTranslator:
    """One text model: long segments split, all pieces batched, outputs joined back per request."""

    def __init__(self, spec: str, runtime: Runtime | None = None, *, batch_size: int = 16, num_beams: int = 4,
                 max_tokens: int = 200, no_repeat_ngram_size: int = 0):
        self.spec = spec
        self.runtime = runtime or resolve_runtime()
        self.batch_size = batch_size
        self.num_beams = num_beams
        self.max_tokens = max_tokens
        self.no_repeat_ngram_size = no_repeat_ngram_size
        self._engine: _Engine | None = None
        self.name = spec

    @property
    def engine(self) -> _Engine:
        if self._engine is None:
            self._engine = load_engine(self.spec, self.runtime, num_beams=self.num_beams, max_tokens=self.max_tokens,
                                       no_repeat_ngram_size=self.no_repeat_ngram_size)
            self.name = self._engine.description
        return self._engine

    def translate(self, requests: list[TranslationRequest], target: str = "en",
                  progress: Callable[[int, int], None] | None = None) -> list[TranslationResult]:
        return translate_pieces(self.engine, requests, target, batch_size=self.batch_size, progress=progress,
                                backend=self.engine.description)


def translate_pieces(engine: _Engine, requests: Sequence[TranslationRequest], target: str, *,
                     batch_size: int = 16, progress: Callable[[int, int], None] | None = None,
                     backend: str = "") -> list[TranslationResult]:
    """The one split/batch/join path shared by every text engine (transformers or CTranslate2)."""
    pieces: list[tuple[int, int, str]] = []  # (request index, piece index, text)
    per_request: list[list[str]] = []
    for i, req in enumerate(requests):
        parts = split_text(req.text, engine.count_tokens, engine.max_tokens)
        per_request.append(parts)
        pieces.extend((i, j, p) for j, p in enumerate(parts))
    counts = [len(parts) for parts in per_request]
    outputs: dict[tuple[int, int], tuple[str, float | None, bool]] = {}
    # group by source language (one forced language per batch) and sort by length so padding stays small
    order = sorted(range(len(pieces)), key=lambda k: (requests[pieces[k][0]].source, len(pieces[k][2])))
    done_requests: set[int] = set()
    remaining = {i: c for i, c in enumerate(counts)}
    total = len(requests)
    if progress:
        progress(sum(1 for c in counts if c == 0), total)
    start = 0
    while start < len(order):
        source = requests[pieces[order[start]][0]].source
        batch = [order[start]]
        start += 1
        while start < len(order) and len(batch) < batch_size and requests[pieces[order[start]][0]].source == source:
            batch.append(order[start])
            start += 1
        generated = engine.generate([pieces[k][2] for k in batch], source, target)
        if len(generated) != len(batch):
            raise RuntimeError(f"{backend}: {len(generated)} outputs for {len(batch)} inputs")
        for k, out in zip(batch, generated, strict=True):
            i, j, _ = pieces[k]
            outputs[(i, j)] = out
            remaining[i] -= 1
            if remaining[i] == 0:
                done_requests.add(i)
        if progress:
            progress(len(done_requests) + sum(1 for c in counts if c == 0), total)
    results = []
    for i, req in enumerate(requests):
        if counts[i] == 0:
            results.append(_empty(backend))
            continue
        parts = [outputs[(i, j)] for j in range(counts[i])]
        # each piece is guarded on its own so one looping piece is dropped, not the whole segment
        texts, scores, reasons = [], [], []
        for (text, score, ended), src in zip(parts, per_request[i], strict=True):
            r = guarded_result(src, text, backend=backend, avg_logprob=score)
            texts.append(r.text)
            # a piece that ran to the length cap without an end token is a runaway even when it reads well
            reasons.append(r.reason or (None if ended else "no_end"))
            if score is not None:
                scores.append(score)
        joined = " ".join(t for t in texts if t)
        mean = sum(scores) / len(scores) if scores else None
        result = guarded_result(req.text, joined, backend=backend, avg_logprob=mean)
        first_reason = next((r for r in reasons if r), None)
        if result.reliable and first_reason:
            result = TranslationResult(result.text, min(result.confidence, UNRELIABLE - 0.01), False, first_reason,
                                       backend)
        results.append(result)
    return results


# --------------------------------------------------------------------------------------------
# Whisper


class WhisperTranslator:
    """faster-whisper task="translate" on each segment's own audio; English is its only target."""

    def __init__(self, whisper_model: str = "base", runtime: Runtime | None = None, *, beam_size: int = 5,
                 batch_size: int = 0, trusted_sources: frozenset[str] | None = None):
        self.whisper_model = whisper_model
        self.runtime = runtime or resolve_runtime()
        self.beam_size = beam_size
        self.batch_size = decode_batch_size(self.runtime, batch_size)
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
                  progress: Callable[[int, int], None] | None = None) -> list[TranslationResult]:
        if target != "en":
            raise ValueError(f"Whisper translates to English only, not {target!r}; use a text model (e.g. nllb)")
        results: list[TranslationResult | None] = [None] * len(requests)
        todo = []
        for i, req in enumerate(requests):
            if not req.text.strip():
                results[i] = _empty(self.name)
            elif req.window is None and (req.audio is None or len(req.audio) < SAMPLE_RATE // 10):
                results[i] = TranslationResult("", 0.0, False, "no_audio", self.name)
            else:
                todo.append(i)
        done = len(requests) - len(todo)
        for chunk in chunks(todo, self.batch_size):
            windows = [self._window(requests[i]) for i in chunk]
            decodes = self.recognizer.decode([(w, requests[i].source) for w, i in zip(windows, chunk, strict=True)],
                                             task="translate")
            for i, decoded in zip(chunk, decodes, strict=True):
                results[i] = self._judged(requests[i], decoded)
            done += len(chunk)
            if progress:
                progress(done, len(requests))
        return [r for r in results if r is not None]

    def _window(self, req: TranslationRequest) -> Window:
        if req.window is not None:
            return req.window
        clip = np.asarray(req.audio, dtype=np.float32)
        return self.recognizer.window(clip, 0.0, len(clip) / SAMPLE_RATE)

    def _judged(self, req: TranslationRequest, decoded: Decoded) -> TranslationResult:
        result = guarded_result(req.text, decoded.text, backend=self.name,
                                avg_logprob=decoded.avg_logprob if decoded.spans else None,
                                ratio=whisper_compression_ratio(decoded.text) if decoded.text else None)
        if result.reliable and self.trusted_sources is not None and req.source not in self.trusted_sources:
            result = TranslationResult(result.text, min(result.confidence, 0.3), False, "weak_source_language",
                                       self.name)
        return result


# --------------------------------------------------------------------------------------------
# Routing and loading


def _hf_cached(repo_id: str) -> bool:
    """Whether the HF cache holds `repo_id`'s config and weights; never downloads."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    if not isinstance(try_to_load_from_cache(repo_id, "config.json"), str):
        return False
    return any(isinstance(try_to_load_from_cache(repo_id, f), str)
               for f in ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json"))


def parse_spec(spec: str) -> dict[str, str]:
    """"ru=A,az=B,*=C" -> {"ru": "A", "az": "B", "*": "C"}; a plain spec routes everything to it."""
    spec = spec.strip()
    if not spec:
        raise ValueError("empty translator spec")
    parts = [p.strip() for p in spec.split(",") if p.strip()]
    if not any("=" in p for p in parts):
        if len(parts) != 1:
            raise ValueError(f"translator spec {spec!r}: use src=model pairs to give several models")
        return {"*": parts[0]}
    routes = {}
    for part in parts:
        if "=" not in part:
            raise ValueError(f"translator spec {spec!r}: {part!r} is not src=model")
        src, model = (x.strip() for x in part.split("=", 1))
        if not src or not model:
            raise ValueError(f"translator spec {spec!r}: {part!r} is not src=model")
        routes[src.lower()] = model
    return routes


class RoutedTranslator:
    """Sends each request to the backend its source language is routed to, and back in order."""

    def __init__(self, routes: dict[str, str], *, target: str = "en", runtime: Runtime | None = None,
                 whisper_model: str = "base", whisper_batch_size: int = 0, batch_size: int = 16, num_beams: int = 4,
                 max_tokens: int = 200, no_repeat_ngram_size: int = 0):
        self.routes = routes
        self.whisper_batch_size = whisper_batch_size
        self.target = target
        self.runtime = runtime
        self.whisper_model = whisper_model
        self.options = {"batch_size": batch_size, "num_beams": num_beams, "max_tokens": max_tokens,
                        "no_repeat_ngram_size": no_repeat_ngram_size}
        self._backends: dict[str, Translator] = {}
        if target != "en" and any(self._resolve(s, v) == "whisper" for s, v in routes.items()):
            raise ValueError(f"Whisper translates to English only, not {target!r}; route to a text model instead")

    @property
    def name(self) -> str:
        """What each route runs, e.g. "whisper-base translate (ct2 int8, cpu)"; models loaded so far
        are named by their engine, the rest by their spec."""
        parts = []
        for source, value in self.routes.items():
            spec = self._resolve(source) if source != "*" or value not in SHORT_NAMES else \
                SHORT_NAMES[value].format(src="*", tgt=self.target)
            if spec in self._backends:
                label = self._backends[spec].name
            elif spec == "whisper":
                label = WhisperTranslator(self.whisper_model, self.runtime).name
            else:
                label = str(spec)
            parts.append(label if len(self.routes) == 1 else f"{source}={label}")
        return ", ".join(parts)

    def _resolve(self, source: str, value: str | None = None) -> str | None:
        """The concrete backend spec for `source`: a hub name/folder, ct2:PATH, or "whisper"."""
        value = value if value is not None else self.routes.get(source, self.routes.get("*"))
        if value is None:
            return None
        if value == "auto":
            if _hf_cached(AUTO_NLLB):
                return AUTO_NLLB
            pair = SHORT_NAMES["opus-mt"].format(src=source, tgt=self.target)
            return pair if source != "*" and _hf_cached(pair) else "whisper"
        if value in SHORT_NAMES:
            return SHORT_NAMES[value].format(src=source, tgt=self.target)
        return value

    def translates_audio(self, source: str) -> bool:
        """Whether `source` goes to Whisper, which translates from the audio (the caller can then
        hand over the already encoded window); False for the target itself and unrouted sources."""
        return source != self.target and self._resolve(source) == "whisper"

    def backend_for(self, source: str) -> Translator:
        spec = self._resolve(source)
        if spec is None:
            raise ValueError(f"no translation route for source language {source!r} "
                             f"(routes: {', '.join(self.routes)}; add *=MODEL for a default)")
        if spec not in self._backends:
            if spec == "whisper":
                self._backends[spec] = WhisperTranslator(self.whisper_model, self.runtime,
                                                         batch_size=self.whisper_batch_size)
            else:
                self._backends[spec] = Seq2SeqTranslator(spec, self.runtime, **self.options)
        return self._backends[spec]

    def translate(self, requests: list[TranslationRequest], target: str | None = None,
                  progress: Callable[[int, int], None] | None = None) -> list[TranslationResult]:
        target = target or self.target
        if target != self.target:
            raise ValueError(f"this translator was loaded for {self.target!r}, not {target!r}")
        results: list[TranslationResult | None] = [None] * len(requests)
        groups: dict[str, list[int]] = {}
        for i, req in enumerate(requests):
            if not req.text.strip():
                results[i] = _empty("")
            elif req.source == target:
                results[i] = TranslationResult(req.text.strip(), 1.0, True, None, "identity")
            else:
                groups.setdefault(req.source, []).append(i)
        done = len(requests) - sum(len(g) for g in groups.values())
        for source, idx in groups.items():

            def sub_progress(n: int, _total: int, base: int = done) -> None:
                if progress:
                    progress(base + n, len(requests))

            try:  # one failing route (no route, a model that will not load) fails only its own requests
                backend = self.backend_for(source)
                outs = backend.translate([requests[i] for i in idx], target, progress=sub_progress)
                if len(outs) != len(idx):
                    raise RuntimeError(f"{backend.name}: {len(outs)} results for {len(idx)} requests")
            except Exception as e:
                reason = f"{FAILED_PREFIX}{type(e).__name__}: {e}"
                outs = [TranslationResult("", 0.0, False, reason, str(self._resolve(source))) for _ in idx]
            for i, out in zip(idx, outs, strict=True):
                results[i] = out
            done += len(idx)
        if progress:
            progress(len(requests), len(requests))
        return [r for r in results if r is not None]


def load_translator(spec: str = "auto", *, target: str = "en", runtime: Runtime | None = None,
                    whisper_model: str = "base", whisper_batch_size: int = 0, batch_size: int = 16,
                    num_beams: int = 4, max_tokens: int = 200, no_repeat_ngram_size: int = 0) -> Translator:
    """A translator for `spec` (see the module docstring). Text models load on first use.

    `batch_size`, `num_beams`, `max_tokens` (split budget per piece) and `no_repeat_ngram_size`
    apply to text models; Whisper always decodes with beam 5 and no_repeat_ngram_size=3, in batches
    of `whisper_batch_size` regions (0: by device).
    """
    routes = parse_spec(spec)
    if routes == {"*": "auto"} and _hf_cached(AUTO_NLLB):
        routes = {"*": AUTO_NLLB}
    for value in routes.values():
        # fail at load, not mid-run, when a folder was meant and is not there
        path = value[4:] if value.startswith("ct2:") else value
        if (value.startswith("ct2:") or path.startswith((".", "/", "~"))) and not Path(path).expanduser().exists():
            raise ModelNotAvailableError(f"translation model folder {path!r} does not exist")
    return RoutedTranslator(routes, target=target, runtime=runtime or resolve_runtime(), whisper_model=whisper_model,
                            whisper_batch_size=whisper_batch_size, batch_size=batch_size, num_beams=num_beams,
                            max_tokens=max_tokens, no_repeat_ngram_size=no_repeat_ngram_size)

