"""A text MT model as a translator: long segments split, pieces batched per language, joined back."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ..models import Runtime, resolve_runtime
from ..progress import ProgressHook
from .confidence import judged
from .engines import Engine, load_engine
from .guard import guard
from .lexicon import Term
from .result import TranslationRequest, TranslationResult, empty_result, progress_seconds
from .sentences import split_text


class Seq2SeqTranslator:
    """One text model: long segments split, all pieces batched, outputs joined back per request."""

    def __init__(self, spec: str, runtime: Runtime | None = None, *, batch_size: int = 16, num_beams: int = 4,
                 max_tokens: int = 200, no_repeat_ngram_size: int = 0, glossary: Iterable[Term] = ()):
        self.spec = spec
        self.glossary = tuple(glossary)
        self.runtime = runtime or resolve_runtime()
        self.batch_size = batch_size
        self.num_beams = num_beams
        self.max_tokens = max_tokens
        self.no_repeat_ngram_size = no_repeat_ngram_size
        self._engine: Engine | None = None
        self.name = spec

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = load_engine(self.spec, self.runtime, num_beams=self.num_beams, max_tokens=self.max_tokens,
                                       no_repeat_ngram_size=self.no_repeat_ngram_size)
            self.name = self._engine.description
        return self._engine

    def translate(self, requests: list[TranslationRequest], target: str = "en",
                  progress: ProgressHook | None = None) -> list[TranslationResult]:
        return translate_pieces(self.engine, requests, target, batch_size=self.batch_size, progress=progress,
                                backend=self.engine.description, glossary=self.glossary)


def translate_pieces(engine: Engine, requests: Sequence[TranslationRequest], target: str, *,
                     batch_size: int = 16, progress: ProgressHook | None = None,
                     backend: str = "", glossary: Iterable[Term] = ()) -> list[TranslationResult]:
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
    remaining = {i: c for i, c in enumerate(counts)}
    seconds = progress_seconds(requests)
    total, done = sum(seconds), sum(s for s, c in zip(seconds, counts, strict=True) if c == 0)
    if progress:
        progress("translate", done, total)
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
                done += seconds[i]
        if progress:
            progress("translate", min(done, total), total)
    results = []
    for i, req in enumerate(requests):
        if counts[i] == 0:
            results.append(empty_result(backend))
            continue
        parts = [outputs[(i, j)] for j in range(counts[i])]
        # each piece is guarded on its own so one looping piece is dropped, not the whole segment
        texts, scores, reasons = [], [], []
        for (text, score, ended), src in zip(parts, per_request[i], strict=True):
            kept, reason = guard(src, text)
            texts.append(kept)
            # a piece that ran to the length cap without an end token is a runaway even when it reads well
            reasons.append(reason or (None if ended else "no_end"))
            if score is not None:
                scores.append(score)
        mean = sum(scores) / len(scores) if scores else None
        results.append(judged(req, " ".join(t for t in texts if t), backend=backend, decoder_logprob=mean,
                              glossary=glossary, target=target, reason=next((r for r in reasons if r), None)))
    return results
