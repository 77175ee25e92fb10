"""Speech regions from the Silero VAD model that faster-whisper ships (ONNX, offline)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from faster_whisper.vad import VadOptions, get_speech_timestamps

from .media import SAMPLE_RATE


@dataclass(frozen=True)
class VadSettings:
    """Tuned for turn-level regions: faster-whisper's defaults (2 s minimum silence) merge
    whole conversations into one chunk, while speakers on our material hand over after
    0.2-1.2 s pauses."""

    threshold: float = 0.5  # speech probability above which a frame is speech
    min_silence_ms: int = 300  # a pause at least this long ends a region
    speech_pad_ms: int = 100  # padding kept on both sides of a region
    min_speech_ms: int = 250  # shorter bursts are dropped (clicks, breaths)
    max_region_s: float = 28.0  # longer regions are cut, so one fits Whisper's 30 s window


def speech_regions(audio: np.ndarray, settings: VadSettings = VadSettings()) -> list[tuple[float, float]]:
    """(start, end) seconds of speech in 16 kHz mono `audio`, sorted and disjoint."""
    if audio.size == 0:
        return []
    options = VadOptions(
        threshold=settings.threshold,
        min_silence_duration_ms=settings.min_silence_ms,
        speech_pad_ms=settings.speech_pad_ms,
        min_speech_duration_ms=settings.min_speech_ms,
        max_speech_duration_s=settings.max_region_s,
    )
    stamps = get_speech_timestamps(audio, options)
    regions = [(s["start"] / SAMPLE_RATE, s["end"] / SAMPLE_RATE) for s in stamps]
    merged: list[tuple[float, float]] = []
    for start, end in regions:  # padding can make neighbours touch; keep them disjoint
        if merged and start < merged[-1][1]:
            start = merged[-1][1]
        if end > start:
            merged.append((start, end))
    return merged
