"""Consistency checks between a segment's source text and its English translation.

Each check is a named flag with its evidence, for a reader to verify: negation on one side
only, numbers and dates that do not survive, key terms and names that vanish or appear, and
source words that are no words of the language (the recogniser misheard, so the translation of
that passage is a guess). Measured on the samples
and dev scenes (README, "Translation"); a check fires on text, never on a model's score.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

from .lexicon import (
    AZ_ENDINGS,
    AZ_MONTHS,
    AZ_NEGATION,
    AZ_NEGATIVE_VERB,
    AZ_NUMBERS,
    EN_MONTHS,
    EN_NEGATION,
    EN_NOT_NAMES,
    EN_NUMBERS,
    KEY_TERMS,
    RU_ENDINGS,
    RU_MONTHS,
    RU_NEGATION,
    RU_NI_WORD,
    RU_NOT_NAMES,
    RU_NUMBERS,
    Term,
)

# A length check (English 0.45-2.2 times the source's characters) was measured too and dropped: it
# flagged none of the 46 wrong translations of the samples (Whisper's inventions are as long as
# their source), so it could only ever add false alarms.
CHECKS = ("negation", "numbers", "terms", "names", "unclear_source")
FUZZY_TERM = 85  # rapidfuzz partial_ratio at which a misheard source word still counts as the term

_WORD = re.compile(r"\w+(?:['’]\w+)*")
_SENTENCE_START = re.compile(r"(?:^|[.!?…:]\s*|[\"«“—-]\s*)$")


def consistency_checks(source: str, language: str, translation: str, *, glossary: Iterable[Term] = (),
                       target: str = "en") -> dict[str, str]:
    """The checks that fail for this pair: check name -> evidence. Only English targets are checked."""
    if target != "en" or not source.strip() or not translation.strip() or language == target:
        return {}
    found = {
        "negation": negation(source, language, translation),
        "numbers": numbers(source, language, translation),
        "terms": terms(source, translation, (*KEY_TERMS, *glossary)),
        "names": names(source, language, translation),
        "unclear_source": unclear_source(source, language, (*KEY_TERMS, *glossary)),
    }
    return {name: evidence for name, evidence in found.items() if evidence}


def _words(text: str) -> list[str]:
    return _WORD.findall(text.replace("’", "'"))


@functools.lru_cache(maxsize=1)
def _morph():
    """pymorphy3's Russian dictionary (OpenCorpora), loaded once; None when it is not installed."""
    try:
        import pymorphy3
    except ImportError:
        return None
    return pymorphy3.MorphAnalyzer()


@functools.lru_cache(maxsize=65536)
def _ru_lemma(word: str) -> str:
    morph = _morph()
    return morph.parse(word)[0].normal_form if morph else word


# --- negation ---------------------------------------------------------------------------------


def _negations(text: str, language: str) -> list[str]:
    out = []
    for word in _words(text):
        low = word.lower()
        if language == "en":
            hit = low in EN_NEGATION or low.endswith("n't")
        elif language == "ru":
            hit = low in RU_NEGATION or bool(RU_NI_WORD.match(low))
        elif language == "az":
            hit = low in AZ_NEGATION or (word[:1].islower() and bool(AZ_NEGATIVE_VERB.match(low)))
        else:
            return []
        if hit:
            out.append(word)
    return out


def negation(source: str, language: str, translation: str) -> str | None:
    """Negation on one side only: "не объявляли" -> "declared" reverses the claim."""
    if language not in ("ru", "az"):
        return None
    src, out = _negations(source, language), _negations(translation, "en")
    if src and not out:
        return f"negation in the source ({', '.join(src)}), none in the English"
    if out and not src:
        return f"negation in the English ({', '.join(out)}), none in the source"
    return None


# --- numbers and dates ------------------------------------------------------------------------


def _number_token(word: str, language: str) -> float | str | None:
    """A number's value, "month:N" for a month, or None; one ("один", "bir", "one") is 1."""
    low = word.lower().replace(",", ".")
    if re.fullmatch(r"\d+(?:\.\d+)?", low):
        return float(low)
    if language == "ru":
        lemma = _ru_lemma(low)
        if lemma in RU_MONTHS:
            return f"month:{RU_MONTHS.index(lemma) + 1}"
        return 1.0 if lemma in ("один", "одна") else RU_NUMBERS.get(lemma, RU_NUMBERS.get(low))
    if language == "az":
        for i, month in enumerate(AZ_MONTHS):
            if low.startswith(month) and len(low) <= len(month) + 4:
                return f"month:{i + 1}"
        return 1.0 if low == "bir" else AZ_NUMBERS.get(low)
    if language == "en":
        if word[:1].isupper() and low in EN_MONTHS:
            return f"month:{EN_MONTHS.index(low) + 1}"
        return 1.0 if low == "one" else EN_NUMBERS.get(low)
    return None


def _number_values(text: str, language: str) -> set[str]:
    """Every number written in `text`, runs of number words added up ("двадцать пять" = 25);
    a lone "one" is left out: "один", "bir", "one" are as often "a" or "alone" as a count."""
    values: set[str] = set()
    run: list[float] = []

    def close() -> None:
        if run and not (len(run) == 1 and run[0] == 1.0):
            total, current = 0.0, 0.0
            for v in run:
                if v >= 1000:
                    total, current = total + max(current, 1.0) * v, 0.0
                elif v == 100:
                    current = max(current, 1.0) * v
                else:
                    current += v
            values.add(f"{total + current:g}")
        run.clear()

    for token in re.findall(r"\d+(?:[.,]\d+)?|\w+", text):
        value = _number_token(token, language)
        if isinstance(value, str):
            close()
            values.add(value)
        elif value is None:
            close()
        else:
            run.append(value)
    close()
    return values


def _lost_and_added(lost: list[str], lost_says: str, added: list[str], added_says: str) -> str | None:
    """One check's finding in words: what the English lost, then what it added; None when neither."""
    parts = [f"{', '.join(items)} {says}" for items, says in ((lost, lost_says), (added, added_says)) if items]
    return "; ".join(parts) or None


def numbers(source: str, language: str, translation: str) -> str | None:
    """Numbers and dates (months) that are in the source and not in the English, or the reverse."""
    src, out = _number_values(source, language), _number_values(translation, "en")
    lost, added = sorted(src - out), sorted(out - src)
    return _lost_and_added(lost, "in the source, not in the English", added, "in the English, not in the source")


# --- key terms --------------------------------------------------------------------------------


def _starts_word(form: str, text: str) -> str | None:
    match = re.search(r"(?<!\w)" + re.escape(form) + r"\w*", text)
    return match.group(0) if match else None


def _source_term(term: Term, low: str) -> str | None:
    """The source's word(s) for `term`: exact, or misheard (close to a long form, spaces ignored:
    "на Гобожниками" is "многобожниками")."""
    from rapidfuzz import fuzz

    for form in term.sources:
        word = _starts_word(form, low)
        if word:
            return word
    tokens = [(m.start(), m.group(0)) for m in re.finditer(r"\w+", low)]
    squeezed = "".join(w for _, w in tokens)
    owner = [i for i, (_, w) in enumerate(tokens) for _ in w]  # squeezed character -> its word
    for form in term.sources:
        plain = form.replace(" ", "")
        if len(plain) >= 7:
            hit = fuzz.partial_ratio_alignment(plain, squeezed)
            if hit and hit.score >= FUZZY_TERM and hit.dest_end > hit.dest_start:
                first, last = owner[hit.dest_start], owner[hit.dest_end - 1]
                return " ".join(w for _, w in tokens[first:last + 1])
    return None


def terms(source: str, translation: str, key_terms: Iterable[Term]) -> str | None:
    """A key term in the source that the English does not render, or one the English has that the
    source does not: "собирал закят" -> "was going to kill" invents a killing."""
    low = source.lower().replace("ё", "е")
    english = translation.lower()
    source_names = {skeleton(w) for w in re.findall(r"\w+", low)}
    lost, added = [], []
    for term in key_terms:
        in_source = _source_term(term, low)
        in_english = next((w for form in term.english if (w := _starts_word(form, english))), None)
        if in_source and not in_english:
            lost.append(f"'{in_source}' ({term.english[0]}…)")
        elif in_english and not in_source and not any(_alike(skeleton(in_english), s) for s in source_names):
            added.append(f"'{in_english}'")  # (a transliteration, "Амер" -> "Amir", is not an addition)
    return _lost_and_added(lost, "not rendered in the English", added, "in the English, nothing like it in the source")


# --- names ------------------------------------------------------------------------------------


def skeleton(word: str, language: str = "en") -> str:
    """A name's consonants in Latin letters, case endings cut, so that spellings across scripts
    compare: "Багдади" and "al-Baghdadi" -> "bgd", "Ракку" and "Raqqa" -> "rk"."""
    from anyascii import anyascii

    low = word.lower()
    endings = RU_ENDINGS if language == "ru" else AZ_ENDINGS if language == "az" else ()
    for ending in endings:
        if low.endswith(ending) and len(low) - len(ending) >= 3:
            low = low[: -len(ending)]
            break
    latin = re.sub(r"[^a-z]", "", anyascii(low).lower())
    for digraph, letter in (("shch", "s"), ("dzh", "j"), ("kh", "h"), ("gh", "g"), ("zh", "j"), ("sh", "s"),
                            ("ch", "c"), ("ts", "s"), ("dj", "j")):
        latin = latin.replace(digraph, letter)
    latin = latin.translate(str.maketrans("qcxwz", "kkhvs"))
    consonants = re.sub(r"[aeiouyh]", "", latin)
    return re.sub(r"(.)\1+", r"\1", consonants)


def _alike(a: str, b: str) -> bool:
    from rapidfuzz import fuzz

    if a == b:
        return True
    if min(len(a), len(b)) >= 3 and (a.startswith(b) or b.startswith(a)):
        return True
    return min(len(a), len(b)) >= 3 and fuzz.ratio(a, b) >= 75


def _capitalised_names(text: str, not_names: frozenset[str]) -> list[str]:
    """Capitalised words that do not start a sentence: names, as far as text alone can tell."""
    out = []
    for match in re.finditer(r"\w+", text):
        word = match.group(0)
        if (word[:1].isupper() and not word.isupper() and len(word) >= 3 and word.lower() not in not_names
                and not _SENTENCE_START.search(text[:match.start()])):
            out.append(word)
    return out


def names(source: str, language: str, translation: str) -> str | None:
    """A name in the source with no transliterated counterpart in the English, or a name in the
    English with nothing like it in the source ("сламской государства" -> "the Slavs")."""
    if language not in ("ru", "az"):
        return None
    english = {skeleton(w) for w in re.findall(r"\w+", translation)}
    source_all = {skeleton(w, language) for w in re.findall(r"\w+", source)}
    lost = [w for w in _capitalised_names(source, RU_NOT_NAMES if language == "ru" else frozenset())
            if len(s := skeleton(w, language)) >= 2 and not any(_alike(s, e) for e in english)]
    added = [w for w in _capitalised_names(translation, EN_NOT_NAMES)
             if w.lower() not in EN_MONTHS and len(s := skeleton(w)) >= 2 and not any(_alike(s, x) for x in source_all)]
    return _lost_and_added(lost, "not in the English", added, "in the English, not in the source")


# --- unclear source -------------------------------------------------------------------


def unclear_source(source: str, language: str, key_terms: Iterable[Term] = ()) -> str | None:
    """Source words that are no words of the language ("приказал нам выъивать"): the recogniser
    misheard there, and a translation of that passage is a guess. Russian only (pymorphy3's
    OpenCorpora dictionary); names (capitalised) and key terms are not judged."""
    morph = _morph() if language == "ru" else None
    if morph is None:
        return None
    forms = tuple(f for t in key_terms for f in t.sources)
    unknown = [w for w in _words(source)
               if len(w) >= 3 and w.isalpha() and w[:1].islower() and re.fullmatch(r"[а-яё]+", w.lower())
               and not morph.word_is_known(w.lower()) and not w.lower().startswith(forms)]
    return f"not Russian words (misheard?): {', '.join(unknown)}" if unknown else None
