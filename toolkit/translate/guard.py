"""The guard every backend's output passes first: boilerplate Whisper invents, decoding loops.

Whisper base emits the credits and YouTube outros of the subtitle files it was trained on over
speech it cannot read, and loops on Azerbaijani (shared/FINDINGS.md); MT models loop or run to
their length cap on text they do not know. What the guard finds is removed (boilerplate) or
dropped (a loop), and named, so the result is marked unreliable with the reason.
"""

from __future__ import annotations

import re

from .sentences import split_sentences

COMPRESSION_CEILING = 2.4  # Whisper's compression_ratio_threshold: above it a text is a loop

# Matched after normalisation (lowercase, no punctuation).
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


def compression_ratio(text: str) -> float:
    """faster-whisper's loop measure (UTF-8 bytes over zlib bytes), the one the decoder uses too."""
    from faster_whisper.transcribe import get_compression_ratio

    return get_compression_ratio(text)


def strip_boilerplate(text: str) -> str:
    """`text` without its boilerplate sentences; "" when nothing else is left."""
    return " ".join(s for s in split_sentences(text) if hallucination_phrase(s) is None).strip()


def guard(source: str, translation: str, ratio: float | None = None) -> tuple[str, str | None]:
    """(the text to keep, what was wrong or None). A loop keeps nothing: it carries no meaning."""
    out = re.sub(r"\s+", " ", translation).strip()
    if not source.strip() and not out:
        return "", None
    if not out:
        return "", "empty"
    if hallucination_phrase(out):
        return strip_boilerplate(out), "hallucination_phrase"
    ratio = ratio if ratio is not None else compression_ratio(out)
    if repetition(out) or (len(out) > 60 and ratio > COMPRESSION_CEILING):
        return "", "repetition"
    return out, None
