"""The translation stage: a segment's text (or audio) to English, and how far to trust the result.

Rooms, each one job:
  result.py      requests, results (a typed `error` when a backend failed), the backend protocol
  guard.py       boilerplate Whisper invents and decoding loops, removed and named
  lexicon.py     negation, number words, key terms, a user's glossary
  checks.py      consistency checks between source and English, each a named flag with evidence
  confidence.py  the calibrated confidence and the one verdict every backend's output gets
  sentences.py   sentence splitting for text models
  engines.py     transformers / CTranslate2 seq2seq engines
  text.py        a text model as a translator: split, batch per language, join, judge
  whisper.py     Whisper's translate task (the only module here that imports `asr`)
  routing.py     routing per source language, loading, the availability check
"""

from .checks import CHECKS, consistency_checks
from .confidence import judged
from .guard import guard, hallucination_phrase, repetition, strip_boilerplate
from .lexicon import KEY_TERMS, Term, load_glossary
from .result import REASONS, UNRELIABLE, TranslationRequest, TranslationResult, Translator, failed_result
from .routing import RoutedTranslator, TranslationOptions, load_translator, parse_spec
from .sentences import split_sentences, split_text
from .text import Seq2SeqTranslator, translate_pieces

__all__ = [
    "CHECKS", "KEY_TERMS", "REASONS", "UNRELIABLE", "RoutedTranslator", "Seq2SeqTranslator", "Term",
    "TranslationOptions",
    "TranslationRequest", "TranslationResult", "Translator", "consistency_checks", "failed_result", "guard",
    "hallucination_phrase", "judged", "load_glossary", "load_translator", "parse_spec", "repetition",
    "split_sentences", "split_text", "strip_boilerplate", "translate_pieces",
]
