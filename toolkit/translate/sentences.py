"""Sentence splitting, and cutting long segments into pieces a text MT model can take."""

from __future__ import annotations

import re
from collections.abc import Callable

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
