"""Speech regions from the Silero VAD model that faster-whisper ships (ONNX, offline)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .audio import SAMPLE_RATE

if TYPE_CHECKING:
    from .audio import Audio
    from .progress import ProgressHook


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
    # Audio is read and run through the model this many seconds at a time: faster-whisper's VAD makes
    # two full-length temporaries (a padded copy and framed windows, ~1 GB for 2 h of audio), and its
    # Silero runs up to 320 s in one ONNX call (~400 MiB of activations at this size, whatever the
    # input's length). Shorter chunks use less but move regions (60 s: 50 ms on confession_mixed,
    # whose Azerbaijani CER then rose from 0.50 to 0.54).
    chunk_s: float = 600.0


def speech_regions(audio: np.ndarray | Audio, settings: VadSettings = VadSettings(),
                   progress: ProgressHook | None = None) -> list[tuple[float, float]]:
    """(start, end) seconds of speech in 16 kHz mono `audio`, sorted and disjoint. Memory: one chunk
    (`settings.chunk_s`) of audio at a time, however long `audio` is."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    if audio.size == 0:
        return []
    pad = settings.speech_pad_ms / 1000 + 0.05
    options = VadOptions(
        threshold=settings.threshold,
        min_silence_duration_ms=settings.min_silence_ms,
        speech_pad_ms=settings.speech_pad_ms,
        min_speech_duration_ms=settings.min_speech_ms,
        max_speech_duration_s=settings.max_region_s,
    )
    regions: list[tuple[float, float]] = []
    cuts = _quiet_cuts(audio, int(settings.chunk_s * SAMPLE_RATE))
    for offset, stop in zip(cuts, cuts[1:], strict=False):
        seconds = offset / SAMPLE_RATE
        for stamp in get_speech_timestamps(audio[offset:stop], options):
            start, end = seconds + stamp["start"] / SAMPLE_RATE, seconds + stamp["end"] / SAMPLE_RATE
            last = regions[-1] if regions else None
            # a region the chunk boundary cut in two is joined again, as far as Whisper's window allows
            if (last and offset and abs(last[1] - seconds) <= pad and abs(start - seconds) <= pad
                    and end - last[0] <= settings.max_region_s):
                regions[-1] = (last[0], end)
            else:
                regions.append((start, end))
        if progress:
            progress("vad", stop / SAMPLE_RATE, audio.size / SAMPLE_RATE)
    merged: list[tuple[float, float]] = []
    for start, end in regions:  # padding can make neighbours touch; keep them disjoint
        if merged and start < merged[-1][1]:
            start = merged[-1][1]
        if end > start:
            merged.append((start, end))
    return merged


def _quiet_cuts(audio: np.ndarray | Audio, step: int, search_s: float = 20.0, frame_s: float = 0.1) -> list[int]:
    """Chunk boundaries about `step` samples apart, each moved back to the quietest 100 ms of
    the `search_s` before it, so that a boundary falls in a pause rather than inside a word."""
    frame, search = int(frame_s * SAMPLE_RATE), int(search_s * SAMPLE_RATE)
    cuts = [0]
    while audio.size - cuts[-1] > step:
        nominal = cuts[-1] + step
        low = max(cuts[-1] + step // 2, nominal - search)
        frames = audio[low:nominal][: (nominal - low) // frame * frame].reshape(-1, frame)
        quietest = int(np.argmin(np.square(frames).mean(axis=1))) if len(frames) else 0
        cuts.append(low + quietest * frame + frame // 2)
    return cuts + [audio.size]
