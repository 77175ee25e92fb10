"""Multilingual video transcripts: who said what, in which language, when, and what it means in English.

`import toolkit` loads none of the models' libraries (faster-whisper, CTranslate2, PyAV,
onnxruntime, Jinja2, numpy): each name below is imported on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# `evaluate` is both a module and the function it exports; imported now, so that the package's
# name stays the function whatever is imported later (the module is light: no numpy).
from .evaluate import Evaluation, evaluate

if TYPE_CHECKING:
    from .batch import FileResult, transcribe_many
    from .diarize import DiarizationOptions
    from .pipeline import PipelineOptions, transcribe
    from .transcript import MediaInfo, Segment, Speaker, SpeakerTurn, Transcript, Word
    from .translate import TranslationOptions
    from .writers import get_writer

_LAZY = {
    "PipelineOptions": "pipeline", "transcribe": "pipeline", "transcribe_many": "batch", "FileResult": "batch",
    "DiarizationOptions": "diarize", "Transcript": "transcript", "Segment": "transcript", "Word": "transcript",
    "Speaker": "transcript", "SpeakerTurn": "transcript", "MediaInfo": "transcript",
    "TranslationOptions": "translate", "get_writer": "writers",
}

__all__ = [
    "PipelineOptions", "DiarizationOptions", "TranslationOptions", "transcribe", "transcribe_many", "FileResult",
    "Transcript", "Segment", "Word", "Speaker", "SpeakerTurn", "MediaInfo", "get_writer", "evaluate", "Evaluation",
]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
