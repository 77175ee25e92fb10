"""Which language a region is spoken in, chosen among the run's candidates.

Two kinds of evidence, fused:
- Audio: Whisper's language probabilities for the region. Whisper hears its high-resource
  languages reliably (every Russian turn of our samples: p(ru) >= 0.96) and low-resource ones
  poorly (the Azerbaijani turns: p(az) <= 0.07, top label hu/th/fi). So a confident
  high-resource label decides, and a low one *rules that language out*; a low-resource
  candidate is what remains when the high-resource ones are ruled out.
- Text: the decoded text, through `lingua` restricted to the candidates. langdetect (the
  design card's detector) has no Azerbaijani profile and answers `tr` for it, so it is
  used only for candidates lingua does not know. A forced decode mostly comes out in the
  forced language's script, so text evidence can only overturn a decision when it points
  elsewhere (an English turn decoded under `ru` stays English text).
Azerbaijani is never reported as Turkish: Whisper's `tr` counts as evidence for `az` when
`az` is a candidate and `tr` is not.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from .asr import Decoded, RegionRecognizer, Window

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
TEXT_OVERRULES = 0.9  # text-ID confidence needed to try another candidate
MIN_TEXT_WORDS = 3  # shorter texts are not evidence


@dataclass(frozen=True)
class AudioEvidence:
    masses: dict[str, float]  # candidate -> Whisper probability mass (itself + relatives)
    primary: str  # the candidate to decode first
    alternatives: tuple[str, ...]  # also decoded and compared, when audio cannot tell
    confidence: float  # 0..1, how sure the audio alone is of `primary`


def audio_evidence(probs: dict[str, float], candidates: tuple[str, ...] | list[str]) -> AudioEvidence:
    """Turn Whisper's distribution over ~99 languages into a decision plan over the candidates."""
    owner: dict[str, str] = {c: c for c in candidates}
    for c in candidates:
        for rel in RELATIVES.get(c, ()):
            owner.setdefault(rel, c)
    masses = {c: 0.0 for c in candidates}
    for label, p in probs.items():
        if label in owner:
            masses[owner[label]] += p
    ranked = sorted(candidates, key=lambda c: -masses[c])
    top = ranked[0]
    if masses[top] >= CONFIDENT:
        weak = [c for c in ranked if c not in WELL_HEARD]
        doubt = (weak[0],) if top in WELL_HEARD and masses[top] < SURE and weak and weak[0] != top else ()
        return AudioEvidence(masses, top, doubt, masses[top] / max(1e-9, sum(masses.values())))
    remaining = [c for c in ranked if c not in WELL_HEARD or masses[c] >= RULED_OUT]
    weak = [c for c in remaining if c not in WELL_HEARD]
    if weak:  # what Whisper cannot hear well is what is left once the well-heard are ruled out
        ruled_out = [masses[c] for c in candidates if c not in remaining]
        return AudioEvidence(masses, weak[0], tuple(weak[1:]), 1.0 - max(ruled_out, default=0.0))
    return AudioEvidence(masses, top, tuple(ranked[1:2]), masses[top] / max(1e-9, sum(masses.values())))


def audio_allows(audio: AudioEvidence, language: str) -> bool:
    """Whether the audio leaves `language` possible: a well-heard language that Whisper gave
    under RULED_OUT is not spoken, whatever a garbled decode's letters look like (the synthetic
    Azerbaijani voice decodes to Latin-script babble that text ID may call English)."""
    return language not in WELL_HEARD or audio.masses.get(language, 0.0) >= RULED_OUT


class TextLanguageId:
    """Text language identification restricted to the candidates."""

    def __init__(self, candidates: tuple[str, ...] | list[str]):
        self.candidates = tuple(candidates)
        self._lingua = _lingua_detector(tuple(c for c in self.candidates if _lingua_language(c) is not None))
        self._langdetect_only = tuple(c for c in self.candidates if _lingua_language(c) is None)

    def detect(self, text: str) -> tuple[str | None, float]:
        """(candidate, confidence) for `text`, or (None, 0) when it is too short to say."""
        if len(text.split()) < MIN_TEXT_WORDS:
            return None, 0.0
        scores: dict[str, float] = {}
        if self._lingua is not None:
            for value in self._lingua.compute_language_confidence_values(text):
                scores[value.language.iso_code_639_1.name.lower()] = value.value
        if self._langdetect_only:
            scores.update(_langdetect_scores(text, self._langdetect_only))
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


def decide_and_decode(recognizer: RegionRecognizer, windows: list[Window], candidates: tuple[str, ...],
                      text_id: TextLanguageId) -> list[LanguageDecision]:
    """Decide each window's language among `candidates` and return its decode in that language.

    The windows go through each step together, so every step is one batched model call:
    language probabilities, the audio's candidates, then the languages the text points to.
    """
    audio = [audio_evidence(probs, candidates) for probs in recognizer.language_probs(windows)]
    decodes: list[dict[str, Decoded]] = [{} for _ in windows]

    def decode_all(wanted: list[tuple[int, str]]) -> None:
        for (i, lang), decoded in zip(wanted, recognizer.decode([(windows[i], lang) for i, lang in wanted]),
                                      strict=True):
            decodes[i][lang] = decoded

    decode_all([(i, lang) for i, a in enumerate(audio) for lang in (a.primary, *a.alternatives)])
    # language -> (what the text says, confidence), per window
    verdicts = [{a.primary: text_id.detect(d[a.primary].text)} for a, d in zip(audio, decodes, strict=True)]
    overruled = []
    for i, a in enumerate(audio):
        text_lang, text_conf = verdicts[i][a.primary]
        if (text_lang and text_lang not in decodes[i] and text_conf >= TEXT_OVERRULES
                and audio_allows(a, text_lang)):
            overruled.append((i, text_lang))
    decode_all(overruled)
    for d, v in zip(decodes, verdicts, strict=True):
        for lang, decoded in d.items():
            if lang not in v:
                v[lang] = text_id.detect(decoded.text)
    return [_decision(a, d, v) for a, d, v in zip(audio, decodes, verdicts, strict=True)]


def _decision(audio: AudioEvidence, decodes: dict[str, Decoded],
              verdicts: dict[str, tuple[str | None, float]]) -> LanguageDecision:
    def agreement(lang: str) -> float:
        said, conf = verdicts[lang]
        return conf if said == lang else (0.5 if said is None else 0.0)

    # log-prob per token, nudged by the text's agreement; ties go to the audio's choice
    best = max(decodes, key=lambda lang: (decodes[lang].avg_logprob + agreement(lang), lang == audio.primary))
    said, conf = verdicts[best]
    text_share = conf if said == best else (0.5 if said is None else 1.0 - conf)
    audio_share = audio.confidence if best == audio.primary else audio.masses.get(best, 0.0)
    return LanguageDecision(decodes[best], best, round(0.5 * audio_share + 0.5 * text_share, 3), audio,
                            tuple(decodes))
