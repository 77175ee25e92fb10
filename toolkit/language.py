"""Which language a region is spoken in: the run's candidates first, a confidently heard other language too.

Pure decisions: the functions here read evidence and say what to decode next or what was
said; `recognize.py` runs the decodes they ask for.

Two kinds of evidence, fused:
- Audio: Whisper's language probabilities for the region. Whisper hears its high-resource
  languages reliably (every Russian turn of our samples: p(ru) >= 0.96) and low-resource ones
  poorly (the Azerbaijani turns: p(az) <= 0.07, top label hu/th/fi). So a confident
  high-resource label decides, and a low one *rules that language out*; a low-resource
  candidate is what remains when the high-resource ones are ruled out.
- Text: the decoded text, through `lingua` over the candidates (and the outside language
  tried). langdetect (the design card's detector) has no Azerbaijani profile and answers `tr`
  for it, so it is used only for candidates lingua does not know. A forced decode mostly comes
  out in the forced language's script, so text evidence can only overturn a decision when it
  points elsewhere (an English turn decoded under `ru` stays English text).
Candidates are expectations, not a cage: a well-heard language outside them that the audio
hears with p >= SURE is decoded and labelled as itself, and one between CONFIDENT and SURE is
decoded beside the best candidate (measured: no Azerbaijani or Russian turn of the samples or dev
scenes gave an outside well-heard language more than 0.32, but 2-3 s pieces of them up to 0.8;
espeak English 0.83-0.96). Azerbaijani is never reported as Turkish: Whisper's `tr` counts as evidence
for `az` when `az` is a candidate and `tr` is not.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from .asr import Decoded

DEFAULT_CANDIDATES = ("az", "ru", "en")

# Whisper labels that count for a candidate when they are not candidates themselves:
# close relatives that Whisper confuses with it.
RELATIVES = {
    "az": ("tr", "tk"), "ru": ("uk", "be"), "uk": ("ru", "be"), "be": ("ru", "uk"), "tr": ("az",),
    "kk": ("ky", "tt", "ba"), "uz": ("tg",), "fa": ("tg",), "sr": ("hr", "bs"), "hr": ("sr", "bs"),
}
# Languages with enough Whisper training data that its audio verdict on them is trustworthy
# both ways (a low probability means "not this language").
WELL_HEARD = frozenset("en ru de fr es it pt nl pl uk zh ja ko ar tr sv".split())
CONFIDENT = 0.5  # audio probability mass above which a candidate is decided by audio alone...
# ...except a well-heard one below this, while a low-resource candidate is in play: the synthetic
# Azerbaijani voice sometimes gets p(en) of 0.5-0.6, so the low-resource candidate is decoded too
# and the better decode wins. Russian turns measured p(ru family) >= 0.84, so they stay one decode.
SURE = 0.8
RULED_OUT = 0.2  # a well-heard candidate below this mass is considered not spoken
# A decision is clear, and its window needs no closer look for a language switch, when a
# well-heard language holds at least SURE, or a low-resource one was left with every well-heard
# language under this (public samples: <= 0.15 on every Azerbaijani region but one, 0.30 p(fr)).
MIXED = 0.2
TEXT_OVERRULES = 0.9  # text-ID confidence needed to try another candidate
MIN_TEXT_WORDS = 3  # shorter texts are not evidence


@dataclass(frozen=True)
class AudioEvidence:
    masses: dict[str, float]  # language -> Whisper probability mass (itself + relatives): candidates, outsiders
    primary: str  # the language to decode first
    alternatives: tuple[str, ...]  # also decoded and compared, when audio cannot tell
    confidence: float  # 0..1, how sure the audio alone is of `primary`
    clear: bool = True  # one language, plainly: no need to look for a switch inside the region


def audio_evidence(probs: dict[str, float], candidates: tuple[str, ...] | list[str],
                   outsiders: bool = True) -> AudioEvidence:
    """Turn Whisper's distribution over ~99 languages into a decision plan: the candidates, and
    (with `outsiders`) any well-heard language outside them that the audio hears confidently."""
    owner: dict[str, str] = {c: c for c in candidates}
    for c in candidates:
        for rel in RELATIVES.get(c, ()):
            owner.setdefault(rel, c)
    if outsiders:
        for lang in sorted(WELL_HEARD - set(owner)):
            owner[lang] = lang
            for rel in RELATIVES.get(lang, ()):
                owner.setdefault(rel, lang)
    masses = {lang: 0.0 for lang in set(owner.values())}
    for label, p in probs.items():
        if label in owner:
            masses[owner[label]] += p
    heard_well = max((m for lang, m in masses.items() if lang in WELL_HEARD), default=0.0)
    outside = max((lang for lang in masses if lang not in candidates), key=masses.get, default=None)
    ranked = sorted(candidates, key=lambda c: -masses[c])
    if outside and masses[outside] >= SURE:
        ranked.insert(0, outside)
    elif outside and masses[outside] >= CONFIDENT and masses[outside] > masses[ranked[0]]:
        # doubtful (a 2-3 s piece of the synthetic Azerbaijani voice got p(de) 0.5-0.8): decoded
        # beside the best candidate, and the better decode wins
        possible = [c for c in ranked if c not in WELL_HEARD or masses[c] >= RULED_OUT] or ranked
        return AudioEvidence(masses, outside, (possible[0],), _share(masses, outside, candidates), False)
    top = ranked[0]
    weak = [c for c in ranked if c not in WELL_HEARD]
    if masses[top] >= CONFIDENT:
        doubt = (weak[0],) if top in WELL_HEARD and masses[top] < SURE and weak and weak[0] != top else ()
        clear = masses[top] >= SURE if top in WELL_HEARD else heard_well < MIXED
        return AudioEvidence(masses, top, doubt, _share(masses, top, candidates), clear)
    remaining = [c for c in ranked if c in candidates and (c not in WELL_HEARD or masses[c] >= RULED_OUT)]
    weak = [c for c in remaining if c not in WELL_HEARD]
    if weak:  # what Whisper cannot hear well is what is left once the well-heard are ruled out
        ruled_out = [masses[c] for c in candidates if c not in remaining]
        return AudioEvidence(masses, weak[0], tuple(weak[1:]), 1.0 - max(ruled_out, default=0.0),
                             heard_well < MIXED)
    return AudioEvidence(masses, top, tuple(ranked[1:2]), _share(masses, top, candidates), False)


def _share(masses: dict[str, float], language: str, candidates) -> float:
    among = sum(masses[c] for c in candidates) + (masses[language] if language not in candidates else 0.0)
    return masses[language] / max(1e-9, among)


def audio_allows(audio: AudioEvidence, language: str) -> bool:
    """Whether the audio leaves `language` possible: a well-heard language that Whisper gave
    under RULED_OUT is not spoken, whatever a garbled decode's letters look like (the synthetic
    Azerbaijani voice decodes to Latin-script babble that text ID may call English)."""
    return language not in WELL_HEARD or audio.masses.get(language, 0.0) >= RULED_OUT


class TextLanguageId:
    """Text language identification among the candidates (and, on request, one language more)."""

    def __init__(self, candidates: tuple[str, ...] | list[str]):
        self.candidates = tuple(candidates)

    def detect(self, text: str, also: str | None = None) -> tuple[str | None, float]:
        """(language, confidence) for `text` among the candidates and `also`, or (None, 0) when
        it is too short to say."""
        if len(text.split()) < MIN_TEXT_WORDS:
            return None, 0.0
        languages = self.candidates + ((also,) if also and also not in self.candidates else ())
        lingua = _lingua_detector(tuple(c for c in languages if _lingua_language(c) is not None))
        others = tuple(c for c in languages if _lingua_language(c) is None)
        scores: dict[str, float] = {}
        if lingua is not None:
            for value in lingua.compute_language_confidence_values(text):
                scores[value.language.iso_code_639_1.name.lower()] = value.value
        if others:
            scores.update(_langdetect_scores(text, others))
        if not scores:
            return None, 0.0
        best = max(scores, key=scores.get)
        return best, scores[best]


def _lingua_language(code: str):
    from lingua import IsoCode639_1, Language

    try:
        return Language.from_iso_code_639_1(IsoCode639_1.from_str(code))
    except (ValueError, AttributeError):
        return None


@functools.lru_cache(maxsize=8)
def _lingua_detector(codes: tuple[str, ...]):
    if not codes:
        return None
    from lingua import LanguageDetectorBuilder

    languages = [_lingua_language(c) for c in codes]
    if len(languages) == 1:  # lingua needs two; a lone candidate is trivially itself
        return None
    return LanguageDetectorBuilder.from_languages(*languages).build()


def _langdetect_scores(text: str, codes: tuple[str, ...]) -> dict[str, float]:
    from langdetect import DetectorFactory, detect_langs
    from langdetect.lang_detect_exception import LangDetectException

    DetectorFactory.seed = 0  # langdetect is random unless seeded
    try:
        return {r.lang: r.prob for r in detect_langs(text) if r.lang in codes}
    except LangDetectException:
        return {}


@dataclass
class LanguageDecision:
    decoded: Decoded  # the kept decode, in `language`
    language: str
    confidence: float  # fused audio and text evidence, 0..1
    audio: AudioEvidence
    tried: tuple[str, ...]  # languages decoded to reach the decision


def first_languages(audio: AudioEvidence) -> tuple[str, ...]:
    """The languages to decode a region in before any text is seen."""
    return (audio.primary, *audio.alternatives)


def text_points_to(audio: AudioEvidence, verdict: tuple[str | None, float], tried) -> str | None:
    """A language the first decode's text points to, confidently, that is not tried yet and that
    the audio allows: worth one more decode."""
    said, confidence = verdict
    if said and said not in tried and confidence >= TEXT_OVERRULES and audio_allows(audio, said):
        return said
    return None


def choose(audio: AudioEvidence, decodes: dict[str, Decoded],
           verdicts: dict[str, tuple[str | None, float]]) -> LanguageDecision:
    """The decode to keep: log-prob per token, nudged by the text's agreement; ties go to the audio's choice."""
    def agreement(lang: str) -> float:
        said, conf = verdicts[lang]
        return conf if said == lang else (0.5 if said is None else 0.0)

    best = max(decodes, key=lambda lang: (decodes[lang].avg_logprob + agreement(lang), lang == audio.primary))
    said, conf = verdicts[best]
    text_share = conf if said == best else (0.5 if said is None else 1.0 - conf)
    audio_share = audio.confidence if best == audio.primary else audio.masses.get(best, 0.0)
    return LanguageDecision(decodes[best], best, round(0.5 * audio_share + 0.5 * text_share, 3), audio,
                            tuple(decodes))
