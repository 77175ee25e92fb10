"""Multilingual video transcripts: who said what, in which language, when, and what it means in English."""

from .batch import FileResult, transcribe_many
from .diarize import DiarizationOptions
from .evaluate import Evaluation, evaluate
from .pipeline import PipelineOptions, transcribe
from .transcript import MediaInfo, Segment, Speaker, SpeakerTurn, Transcript, Word
from .translate import TranslationOptions
from .writers import get_writer

__all__ = [
    "PipelineOptions", "DiarizationOptions", "TranslationOptions", "transcribe", "transcribe_many", "FileResult",
    "Transcript", "Segment", "Word", "Speaker", "SpeakerTurn", "MediaInfo", "get_writer", "evaluate", "Evaluation",
]
__version__ = "0.1.0"
