"""Text-to-text MT engines: one loaded model each, through transformers or CTranslate2.

An engine turns a batch of pieces in one source language into (text, avg log-prob, ended with
EOS) each; splitting, batching and judging are `text.py`'s. Models load on first use, cached.
"""

from __future__ import annotations

import functools
import threading
from pathlib import Path
from typing import Any

from ..models import ModelNotAvailableError, Runtime, offline, resolve_runtime

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


def _decode_cap(n_input_tokens: int, model_max: int | None = None) -> int:
    """Most tokens one piece may generate; per input, so a piece's output never depends on its batch.
    `model_max`: the model's own `max_length` (its generation_config.json), which is never exceeded."""
    cap = min(512, 2 * n_input_tokens + 16)
    return min(cap, max(1, model_max - 2)) if model_max else cap


def _model_max_length(path: str) -> int | None:
    """The `max_length` a model folder or hub model's own generation_config.json sets, if it has one."""
    import json

    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    folder = Path(path).expanduser()
    file = folder / "generation_config.json" if folder.is_dir() else try_to_load_from_cache(path,
                                                                                           "generation_config.json")
    try:
        return int(json.loads(Path(file).read_text(encoding="utf-8"))["max_length"])
    except (TypeError, OSError, ValueError, KeyError):
        return None


class Engine:
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


class _HFEngine(Engine):
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
        self.model_max = _model_max_length(str(Path(name).expanduser()) if local else name)
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
        caps = [_decode_cap(int(n), self.model_max) for n in batch["attention_mask"].sum(dim=1)]
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


class _CT2Engine(Engine):
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
        self.model_max = _model_max_length(str(folder))
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
        caps = [_decode_cap(len(s), self.model_max) for s in sources]
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
def _engine(spec: str, runtime: Runtime, num_beams: int, max_tokens: int, no_repeat_ngram_size: int) -> Engine:
    if spec.startswith("ct2:"):
        return _CT2Engine(spec[4:], runtime, num_beams, max_tokens, no_repeat_ngram_size)
    return _HFEngine(spec, runtime, num_beams, max_tokens, no_repeat_ngram_size)


def load_engine(spec: str, runtime: Runtime | None = None, *, num_beams: int = 4, max_tokens: int = 200,
                no_repeat_ngram_size: int = 0) -> Engine:
    """The cached engine for one model spec (hub name, folder, or ct2:FOLDER)."""
    with _ENGINE_LOCK:
        return _engine(spec, runtime or resolve_runtime(), num_beams, max_tokens, no_repeat_ngram_size)


