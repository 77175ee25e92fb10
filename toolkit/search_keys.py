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
- q is k (Arabic qaf: Raqqa, Ракка; Iraq, Ирак) and also g, as it sounds in Azerbaijani words
  (Sumqayıt, Сумгаит; qrup, группа), so a word with q gets both keys.
- doubled letters are single (Raqqa, Ракка -> raka).

A query is read both ways (as Azerbaijani and not), and a query word matches a word whose key
is one of its keys, or the stem of one (the key without a final vowel) followed by an
inflection ending (`_forms`): Ракку "raku" and Rəqqədə "rakada" match Raqqa (stem
"rak"), ракета does not. Short words (under 3 letters) match only themselves. `scripts/
benchmark_search.py --dictionary` measures what this costs in false hits.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

KEY_VERSION = 1  # bump when a rule changes: indexes built with another version are rebuilt
MIN_STEM = 3  # letters a stem keeps: shorter ones would match far too many words
MIN_BARE_STEM = 4  # letters a stem needs to match a word on its own (группа ~ group)

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
_QAF = ("k", "g")  # and q: к in Arabic names (Rəqqə, Ракка), г in Turkic words (Sumqayıt, Сумгаит)
# Applied in order; the first is one pass over the digraphs (leftmost, longest first).
_DIGRAPHS = {"shch": "sh", "dzh": "j", "zh": "j", "dj": "j", "kh": "h", "gh": "g", "ph": "f", "ck": "k", "ts": "s",
             "ou": "u", "w": "v", "x": "ks"}
_FOLDS: tuple[tuple[re.Pattern, str | dict[str, str]], ...] = tuple((re.compile(p), r) for p, r in (
    ("|".join(sorted(_DIGRAPHS, key=len, reverse=True)), _DIGRAPHS),
    (r"c(?!h)(?=[eiy])", "s"), (r"c(?!h)", "k"),
    (r"(?<=[b-df-hj-np-tv-z])y(?=[aeiou])", ""), (r"y", "i"), (r"q", "k"), (r"(.)\1+", r"\1"),
))
_FOLD_SUBS = tuple((p, r if isinstance(r, str) else (lambda m, table=r: table[m.group()])) for p, r in _FOLDS)
_NOT_KEY = re.compile(r"[^a-z0-9]+")
_VOWELS = "aeiou"


def _key(word: str, azerbaijani: bool, schwa: str = "a", qaf: str = "k") -> str:
    from anyascii import anyascii

    text = unicodedata.normalize("NFC", word.casefold())
    if azerbaijani:
        for pattern, replacement in _AZ_DIGRAPHS:
            text = pattern.sub(replacement, text)
        text = "".join(schwa if c == "ə" else _AZ_LETTERS.get(c, c) for c in text)
    text = text.replace("q", qaf)
    text = _NOT_KEY.sub("", (text if text.isascii() else anyascii(text)).lower())
    for pattern, replacement in _FOLD_SUBS:
        text = pattern.sub(replacement, text)
    return text


@lru_cache(maxsize=200_000)
def word_keys(word: str, azerbaijani: bool = False) -> tuple[str, ...]:
    """'Багдади', 'Baghdadi' -> ('bagdadi',); 'Rəqqədə' in Azerbaijani text -> ('rakada', 'ragada',
    'rekede', 'regede'). Empty for a word with no letters or digits."""
    lower = word.casefold()
    schwas = _SCHWA if azerbaijani and "ə" in lower else _SCHWA[:1]
    qafs = _QAF if "q" in lower else _QAF[:1]  # an Azerbaijani name in English text too (Sumqayit)
    return tuple(dict.fromkeys(k for schwa in schwas for qaf in qafs if (k := _key(word, azerbaijani, schwa, qaf))))


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


# Inflection endings, as they look in keys. A query word matches its own key; the key followed by
# an Azerbaijani case or number suffix (the forms after a vowel and after a consonant differ) or
# English -s; and its stem (the key without a final vowel) followed by a Russian noun or
# adjective ending. A light stemmer: "Raqqa" finds Ракку and Rəqqədə but not ракета; "zakat"
# finds заката but not закатать or закатный.
_RUSSIAN_ENDINGS = ("а я о е ё ы и у ю ь ой ей ом ем ам ям ах ях ами ями ов ев ью ья ье ьи ий ый ая яя ое ее ые ие "
                    "ого его ому ему ым им ых их ую юю ою ею ии ия ию ием иях иям иями").split()
_AZERBAIJANI_SUFFIXES = ("da də dan dən ya yə a ə ı i u ü nı ni nu nü nın nin nun nün ın in un ün na nə la lə "
                         "lar lər ları ləri dakı dəki dır dir sı si su sü mız miz ımız imiz").split()
_ENGLISH_ENDINGS = ("s", "es")  # plurals and possessives (group's -> grups)


def _suffixes(stem: str, stem_key: str, endings: list[str], azerbaijani: bool) -> tuple[str, ...]:
    """How `endings` look in keys after `stem` (whose key is `stem_key`), which the keys' folds may change."""
    keys = (_key(stem + e, azerbaijani) for e in endings)
    return tuple(sorted({k[len(stem_key):] for k in keys if k.startswith(stem_key)} - {""}))


RUSSIAN_ENDINGS = _suffixes("бак", "bak", _RUSSIAN_ENDINGS, False)
AZ_AFTER_VOWEL = _suffixes("rəqqə", "raka", [e for e in _AZERBAIJANI_SUFFIXES if e[0] not in "aəıiuü"], True)
AZ_AFTER_CONSONANT = _suffixes("qrup", "krup", [e for e in _AZERBAIJANI_SUFFIXES if e[0] not in "ny"], True)


@dataclass(frozen=True)
class QueryTerm:
    word: str  # as typed
    keys: tuple[str, ...]  # read as Azerbaijani and not
    forms: frozenset[str]  # the keys of the words it matches: its keys, and its stems with an ending

    def matches(self, keys: tuple[str, ...]) -> bool:
        return any(k in self.forms for k in keys)

    def exact(self, keys: tuple[str, ...]) -> bool:
        return any(k in self.keys for k in keys)


def _forms(key: str) -> set[str]:
    """The keys of the words `key` matches; a short key ("мы") matches itself only."""
    if len(key) < MIN_STEM:
        return {key}
    vowel_final = key[-1] in _VOWELS
    stem = key[:-1] if vowel_final and len(key) - 1 >= MIN_STEM else key
    azerbaijani = AZ_AFTER_VOWEL if vowel_final else AZ_AFTER_CONSONANT
    # The stem takes the other languages' endings too (группа: Azerbaijani qrup-da, English group's), and
    # none, where it is long enough not to be another common word (группа: group; but Raqqa: not рак).
    bare = {stem} if len(stem) >= MIN_BARE_STEM else set()
    return ({key} | bare | {stem + e for e in RUSSIAN_ENDINGS + AZ_AFTER_CONSONANT + _ENGLISH_ENDINGS}
            | {key + e for e in azerbaijani + _ENGLISH_ENDINGS})


def query_terms(query: str) -> list[QueryTerm]:
    """The terms of a query, in order, each once."""
    terms: dict[tuple[str, ...], QueryTerm] = {}
    for _, _, word in words(query):
        keys = tuple(dict.fromkeys(word_keys(word) + word_keys(word, azerbaijani=True)))
        if keys and keys not in terms:
            terms[keys] = QueryTerm(word, keys, frozenset(f for k in keys for f in _forms(k)))
    return list(terms.values())


# What a page needs to compute the same keys in JavaScript: the rules above, plus the
# transliteration of each character it may meet (anyascii maps one character at a time).
_BASE_ALPHABETS = ("abcdefghijklmnopqrstuvwxyz0123456789абвгдеёжзийклмнопрстуфхцчшщъыьэюяəğıöüşçіїєґў"
                   "âîûêôàèéùëï")


def browser_rules(texts: list[str] | None = None) -> dict:
    """The key rules as JSON-ready data for the report index's search (the same keys as here)."""
    from anyascii import anyascii

    chars = set(_BASE_ALPHABETS) | {c for text in texts or () for c in text.casefold()}
    return {"version": KEY_VERSION, "min_stem": MIN_STEM, "min_bare_stem": MIN_BARE_STEM, "vowels": _VOWELS,
            "word": _WORD_JS,
            "endings": {"russian": RUSSIAN_ENDINGS, "az_after_vowel": AZ_AFTER_VOWEL,
                        "az_after_consonant": AZ_AFTER_CONSONANT, "english": _ENGLISH_ENDINGS},
            "chars": {c: re.sub(r"[^a-z0-9]", "", anyascii(c).lower()) for c in sorted(chars)},
            "az_digraphs": [(p.pattern, r) for p, r in _AZ_DIGRAPHS], "az_letters": _AZ_LETTERS,
            "schwa": list(_SCHWA), "qaf": list(_QAF),
            "folds": [(p.pattern, r.replace("\\1", "$1") if isinstance(r, str) else r) for p, r in _FOLDS]}
