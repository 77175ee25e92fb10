"""Multilingual video transcripts: who said what, in which language, when, and what it means in English."""

from .pipeline import PipelineOptions, transcribe
from .transcript import MediaInfo, Segment, Speaker, Transcript, Word
from .writers import get_writer

__all__ = ["PipelineOptions", "transcribe", "Transcript", "Segment", "Word", "Speaker", "MediaInfo", "get_writer"]
__version__ = "0.1.0"
