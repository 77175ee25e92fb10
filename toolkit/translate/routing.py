"""Routing and loading: which backend translates which source language, and whether it can run.

Spec strings for `load_translator`:
  "auto"                         a cached NLLB-200 or opus-mt pair if the HF cache has one, else whisper
  "whisper"                      faster-whisper task="translate" on the segment's audio (English only)
  "nllb", "m2m100", "opus-mt"    short names (opus-mt is Helsinki-NLP/opus-mt-{src}-{tgt} per source)
  "Helsinki-NLP/opus-mt-ru-en"   a hub name, or a local folder saved with `save_pretrained`
  "ct2:/models/nllb-ct2"         a `ct2-transformers-converter` folder (tokenizer files copied in)
  "ru=opus-mt,az=nllb,*=whisper" a routing table from source language to any of the above
Nothing here loads a model: text models load on first use; `check_available` says, from local
files only (and one short connection attempt when online), whether a route can run at all.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..models import (
    TRANSLATION_MODELS,
    ModelNotAvailableError,
    Runtime,
    hf_cached,
    hub_reachable,
    offline,
    resolve_runtime,
)
from ..progress import ProgressHook
from .lexicon import Term, load_glossary
from .result import (
    TranslationRequest,
    TranslationResult,
    Translator,
    empty_result,
    failed_result,
    progress_seconds,
)
from .text import Seq2SeqTranslator

AUTO_NLLB = TRANSLATION_MODELS["nllb"]
MT_PACKAGES = ("torch", "transformers", "sentencepiece")  # what a transformers MT model needs (`toolkit[mt]`)


@dataclass(frozen=True)
class TranslationOptions:
    """Settings of the text MT models (NLLB, opus-mt, ...); Whisper's translate task decodes with beam 5."""

    beam_size: int = 4
    max_tokens: int = 200  # longest piece given to a text model at once; longer segments are split at sentences
    batch_size: int = 16  # pieces translated together
    no_repeat_ngram_size: int = 0
    glossary: str | None = None  # a file of key terms to check (translate/lexicon.py `load_glossary`)

    def __post_init__(self) -> None:
        for name in ("beam_size", "max_tokens", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"--mt-{name.replace('_', '-')} must be at least 1, not {getattr(self, name)}")
        if self.glossary and not Path(self.glossary).expanduser().is_file():
            raise ValueError(f"--glossary {self.glossary}: no such file")


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
                 whisper_model: str = "base", whisper_batch_size: int = 0,
                 options: TranslationOptions = TranslationOptions()):
        self.routes = routes
        self.whisper_batch_size = whisper_batch_size
        self.target = target
        self.runtime = runtime
        self.whisper_model = whisper_model
        self.options = options
        self.glossary: tuple[Term, ...] = load_glossary(Path(options.glossary).expanduser()) if options.glossary \
            else ()
        self._backends: dict[str, Translator] = {}
        if target != "en" and any(self._resolve(s, v) == "whisper" for s, v in routes.items()):
            raise ValueError(f"Whisper translates to English only, not {target!r}; route to a text model instead")

    @property
    def name(self) -> str:
        """What each route runs, e.g. "whisper-base translate (ct2 int8, cpu)"; models loaded so far
        are named by their engine, the rest by their spec."""
        parts = []
        for source, value in self.routes.items():
            spec = self._resolve(source) if source != "*" or value not in TRANSLATION_MODELS else \
                TRANSLATION_MODELS[value].format(src="*", tgt=self.target)
            if spec in self._backends:
                label = self._backends[spec].name
            elif spec == "whisper":
                from .whisper import WhisperTranslator  # (the only module that imports asr)

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
            if hf_cached(AUTO_NLLB):
                return AUTO_NLLB
            pair = TRANSLATION_MODELS["opus-mt"].format(src=source, tgt=self.target)
            return pair if source != "*" and hf_cached(pair) else "whisper"
        if value in TRANSLATION_MODELS:
            return TRANSLATION_MODELS[value].format(src=source, tgt=self.target)
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
                from .whisper import WhisperTranslator

                self._backends[spec] = WhisperTranslator(self.whisper_model, self.runtime,
                                                         batch_size=self.whisper_batch_size, glossary=self.glossary)
            else:
                o = self.options
                self._backends[spec] = Seq2SeqTranslator(spec, self.runtime, batch_size=o.batch_size,
                                                         num_beams=o.beam_size, max_tokens=o.max_tokens,
                                                         no_repeat_ngram_size=o.no_repeat_ngram_size,
                                                         glossary=self.glossary)
        return self._backends[spec]

    def check_available(self, sources: Iterable[str]) -> None:
        """Raise ModelNotAvailableError (or ValueError for a missing route) now, in well under a second,
        when a route for one of `sources` cannot run: a folder that is not there, packages that are not
        installed, a hub model that is not in the local cache while downloads are off or the hub is out
        of reach. Reads local files only, and tries one connection to the hub when a download is needed."""
        for source in dict.fromkeys(s for s in sources if s != self.target):
            spec = self._resolve(source)
            if spec is None:
                raise ValueError(f"no translation route for source language {source!r} "
                                 f"(routes: {', '.join(self.routes)}; add *=MODEL for a default)")
            if spec != "whisper":
                _check_model(spec)

    def translate(self, requests: list[TranslationRequest], target: str | None = None,
                  progress: ProgressHook | None = None) -> list[TranslationResult]:
        target = target or self.target
        if target != self.target:
            raise ValueError(f"this translator was loaded for {self.target!r}, not {target!r}")
        results: list[TranslationResult | None] = [None] * len(requests)
        # one call per backend, not per language: Whisper decodes each request with its own language
        # prompt in one batch (Russian and Azerbaijani turns apart made batches half as full), and a
        # text model batches each language apart itself
        groups: dict[str, list[int]] = {}
        specs: dict[str, str | None] = {}
        for i, req in enumerate(requests):
            if not req.text.strip():
                results[i] = empty_result("")
            elif req.source == target:  # already in the target language: the text is its own translation
                results[i] = TranslationResult(req.text.strip(), 1.0, True, None, "identity")
            else:
                if req.source not in specs:
                    specs[req.source] = self._resolve(req.source)
                groups.setdefault(specs[req.source] or f"no route for {req.source}", []).append(i)
        seconds = progress_seconds(requests)
        total = sum(seconds)
        done = total - sum(seconds[i] for g in groups.values() for i in g)
        for idx in groups.values():
            source = requests[idx[0]].source  # one of the sources that share this backend

            def sub_progress(stage: str, n: float, _total: float, base: float = done) -> None:
                if progress:
                    progress(stage, min(base + n, total), total)

            try:  # one failing route (no route, a model that will not load) fails only its own requests
                backend = self.backend_for(source)
                outs = backend.translate([requests[i] for i in idx], target, progress=sub_progress)
                if len(outs) != len(idx):
                    raise RuntimeError(f"{backend.name}: {len(outs)} results for {len(idx)} requests")
            except Exception as e:
                outs = [failed_result(e, str(self._resolve(source))) for _ in idx]
            for i, out in zip(idx, outs, strict=True):
                results[i] = out
            done += sum(seconds[i] for i in idx)
        if progress:
            progress("translate", total, total)
        return [r for r in results if r is not None]




def _missing_packages(names: Iterable[str]) -> list[str]:
    return [n for n in names if importlib.util.find_spec(n) is None]


def _check_model(spec: str) -> None:
    """One route's model: present (or downloadable now), with the packages that run it."""
    if spec.startswith("ct2:"):
        folder = Path(spec[4:]).expanduser()
        if not (folder / "model.bin").is_file():
            raise ModelNotAvailableError(f"translation model {spec[4:]!r} is not a CTranslate2 folder (no model.bin); "
                                         "convert one with ct2-transformers-converter")
        missing = _missing_packages(("ctranslate2", "transformers", "sentencepiece"))
    else:
        folder = Path(spec).expanduser()
        if spec.startswith((".", "/", "~")) and not folder.is_dir():
            raise ModelNotAvailableError(f"translation model folder {spec!r} does not exist")
        if not folder.is_dir() and not hf_cached(spec):
            how = (f"download it where you are online (huggingface-cli download {spec}) and copy the Hugging Face "
                   "cache here, or use --translator whisper")
            if offline():
                raise ModelNotAvailableError(f"translation model {spec} is not in the Hugging Face cache and downloads "
                                             f"are off (TOOLKIT_OFFLINE/HF_HUB_OFFLINE): {how}")
            if not hub_reachable():
                raise ModelNotAvailableError(f"translation model {spec} is not in the Hugging Face cache and the hub "
                                             f"cannot be reached: {how}")
        missing = _missing_packages(MT_PACKAGES)
    if missing:
        raise ModelNotAvailableError(f"translation model {spec} needs {', '.join(missing)}: "
                                     f"pip install {' '.join(missing)} (or pip install 'toolkit[mt]')")


def load_translator(spec: str = "auto", *, target: str = "en", runtime: Runtime | None = None,
                    whisper_model: str = "base", whisper_batch_size: int = 0,
                    options: TranslationOptions = TranslationOptions()) -> RoutedTranslator:
    """A translator for `spec` (see the module docstring). Text models load on first use.

    `options` apply to text models; Whisper decodes with beam 5 and no_repeat_ngram_size=3, in
    batches of `whisper_batch_size` regions (0: by device).
    """
    routes = parse_spec(spec)
    if routes == {"*": "auto"} and hf_cached(AUTO_NLLB):
        routes = {"*": AUTO_NLLB}
    for value in routes.values():
        # fail at load, not mid-run, when a folder was meant and is not there
        path = value[4:] if value.startswith("ct2:") else value
        if (value.startswith("ct2:") or path.startswith((".", "/", "~"))) and not Path(path).expanduser().exists():
            raise ModelNotAvailableError(f"translation model folder {path!r} does not exist")
    return RoutedTranslator(routes, target=target, runtime=runtime or resolve_runtime(), whisper_model=whisper_model,
                            whisper_batch_size=whisper_batch_size, options=options)
