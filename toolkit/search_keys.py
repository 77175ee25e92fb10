"""Search keys: one spelling for a word whatever the script it was written in.

An analyst types "Raqqa" and means "Ракку" (Russian, accusative), "Rəqqədə" (Azerbaijani,
locative) and "Raqqa" (English). A word's key is its transliteration to ASCII by `anyascii`
(chosen over unidecode for its permissive licence (ISC) and per-character tables that cover
every script, and over PyICU, which needs the ICU C library), followed by folds that make the
usual Latin spellings of the same sound agree:

- Azerbaijani text is read by its sound first: ş -> sh, ç -> ch, x -> kh, c -> j (Azerbaijani
  c is English j and Russian дж), ğ -> g, ı -> i, ö -> o, ü -> u; ə is written a in some
  names and e in others (Rəqqə ~ Raqqa, Əmir ~ Emir), so a word with ə gets both keys.
- digraphs: shch -> sh, dzh/dj/zh -> j, kh -> h, gh -> g (Baghdadi ~ Багдади), ph -> f,
  ts -> s, ou -> u, w -> v, x -> ks; English c is s before e/i/y and k elsewhere (Islamic ~
  исламик); a y between a consonant and a vowel is dropped (закят "zakyat" ~ zakat), other
  y's are i.
- k, g and q are one letter: Arabic qaf is q in English and Azerbaijani but к in Russian
  (Raqqa, Ракка), and Azerbaijani q is г in Russian (Sumqayıt, Сумгаит; qrup, группа).
- doubled letters are single (Raqqa, Ракка -> raka).

A query is read both ways (as Azerbaijani and not), and a query word matches a word one of
whose keys starts with the stem of one of its keys: the key without a final vowel, so that an
inflected form matches (Ракку "raku" and Rəqqədə "rakada" match Raqqa, stem "rak"). Stems keep
3 letters or more; ranking puts exact keys first. `scripts/benchmark_search.py` measures what
this costs in false hits.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

KEY_VERSION = 1  # bump when a rule changes: indexes built with another version are rebuilt
MIN_STEM = 3  # letters a stem keeps: shorter ones would match far too many words

# A word: letters, digits and the combining marks that follow them (Cyrillic and Arabic vowel
# marks stay inside their word). The page's JavaScript uses the same definition (`browser_rules`).
_MARKS = "\u0300-\u036f\u0483-\u0489\u0591-\u05c7\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed"
_WORD = re.compile(rf"\w[\w{_MARKS}]*")
_WORD_JS = rf"[\p{{L}}\p{{N}}_][\p{{L}}\p{{N}}_{_MARKS}]*"  # Python's \w is [\p{L}\p{N}_]

# Azerbaijani letters by their sound, before transliteration (anyascii would give ş -> s,
# x -> x, c -> c); English ch and ck in Azerbaijani text are kept out of the way of c first.
_AZ_DIGRAPHS = ((re.compile("ch"), "ç"), (re.compile("ck"), "k"))
_AZ_LETTERS = {"ş": "sh", "ç": "ch", "x": "kh", "c": "j", "ğ": "g", "ı": "i", "ö": "o", "ü": "u"}
_SCHWA = ("a", "e")  # the two ways ə is written in other scripts
_FOLDS = tuple((re.compile(p), r) for p, r in (
    (r"shch", "sh"), (r"d?zh|dj", "j"), (r"kh", "h"), (r"gh", "g"), (r"ph", "f"), (r"ck", "k"),
    (r"c(?!h)(?=[eiy])", "s"), (r"c(?!h)", "k"), (r"ts", "s"), (r"ou", "u"), (r"w", "v"), (r"x", "ks"),
    (r"(?<=[b-df-hj-np-tv-z])y(?=[aeiou])", ""), (r"y", "i"), (r"[gq]", "k"), (r"(.)\1+", r"\1"),
))
_VOWELS = "aeiou"


def _key(word: str, azerbaijani: bool, schwa: str = "a") -> str:
    from anyascii import anyascii

    text = unicodedata.normalize("NFC", word.casefold())
    if azerbaijani:
        for pattern, replacement in _AZ_DIGRAPHS:
            text = pattern.sub(replacement, text)
        text = "".join(schwa if c == "ə" else _AZ_LETTERS.get(c, c) for c in text)
    text = re.sub(r"[^a-z0-9]", "", anyascii(text).lower())
    for pattern, replacement in _FOLDS:
        text = pattern.sub(replacement, text)
    return text


@lru_cache(maxsize=200_000)
def word_keys(word: str, azerbaijani: bool = False) -> tuple[str, ...]:
    """'Багдади', 'Baghdadi' -> ('bakdadi',); 'Rəqqədə' in Azerbaijani text -> ('rakada', 'rekede').
    Empty for a word with no letters or digits."""
    variants = _SCHWA if azerbaijani and "ə" in word.casefold() else _SCHWA[:1]
    return tuple(dict.fromkeys(k for schwa in variants if (k := _key(word, azerbaijani, schwa))))


def words(text: str) -> list[tuple[int, int, str]]:
    """(start, end, word) for every word of `text`, offsets into `text`."""
    return [(m.start(), m.end(), m.group()) for m in _WORD.finditer(text)]


def text_keys(text: str, language: str = "") -> list[tuple[str, ...]]:
    """The keys of every word of `text` in order (aligned with `words`), read as `language`."""
    azerbaijani = language == "az"
    return [word_keys(w, azerbaijani) for _, _, w in words(text)]


def indexed_text(keys: list[tuple[str, ...]]) -> str:
    """What the full-text index holds for a text: every key of every word, space-separated."""
    return " ".join(k for word in keys for k in word)


@dataclass(frozen=True)
class QueryTerm:
    word: str  # as typed
    keys: tuple[str, ...]  # read as Azerbaijani and not
    stems: tuple[str, ...]  # each key without a final vowel, where that leaves MIN_STEM letters

    def matches(self, keys: tuple[str, ...]) -> bool:
        return any(k.startswith(s) for k in keys for s in self.stems)

    def exact(self, keys: tuple[str, ...]) -> bool:
        return any(k in self.keys for k in keys)


def _stem(key: str) -> str:
    return key[:-1] if key[-1] in _VOWELS and len(key) - 1 >= MIN_STEM else key


def query_terms(query: str) -> list[QueryTerm]:
    """The terms of a query, in order, each once."""
    terms: dict[tuple[str, ...], QueryTerm] = {}
    for _, _, word in words(query):
        keys = tuple(dict.fromkeys(word_keys(word) + word_keys(word, azerbaijani=True)))
        if keys and keys not in terms:
            terms[keys] = QueryTerm(word, keys, tuple(dict.fromkeys(_stem(k) for k in keys)))
    return list(terms.values())


# What a page needs to compute the same keys in JavaScript: the rules above, plus the
# transliteration of each character it may meet (anyascii maps one character at a time).
_BASE_ALPHABETS = ("abcdefghijklmnopqrstuvwxyz0123456789абвгдеёжзийклмнопрстуфхцчшщъыьэюяəğıöüşçіїєґў"
                   "âîûêôàèéùëï")


def browser_rules(texts: list[str] | None = None) -> dict:
    """The key rules as JSON-ready data for the report index's search (the same keys as here)."""
    from anyascii import anyascii

    chars = set(_BASE_ALPHABETS) | {c for text in texts or () for c in text.casefold()}
    return {"version": KEY_VERSION, "min_stem": MIN_STEM, "vowels": _VOWELS, "word": _WORD_JS,
            "chars": {c: re.sub(r"[^a-z0-9]", "", anyascii(c).lower()) for c in sorted(chars)},
            "az_digraphs": [(p.pattern, r) for p, r in _AZ_DIGRAPHS], "az_letters": _AZ_LETTERS,
            "schwa": list(_SCHWA), "folds": [(p.pattern, r.replace("\\1", "$1")) for p, r in _FOLDS]}
