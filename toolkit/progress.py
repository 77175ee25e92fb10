"""The library's one progress hook: `progress(stage, done, total)`, in seconds of media.

Every stage of a file reports through it, `done` out of `total` seconds of the media it covers:

  extract     audio decoded, of the file's duration
  vad         audio scanned for speech, of the duration
  diarize     speech heard for speakers, of the speech found
  transcribe  speech decoded, of the speech to decode
  translate   speech translated, of the speech to translate
  voices      speech heard for voice prints, of the speakers' speech

Stages come in this order, except that `translate` may interleave with `transcribe` (Whisper's
translate task runs on each batch of speech while its encoder output is at hand). A stage that is
off (no diarization, no translation) does not report.
"""

from __future__ import annotations

from collections.abc import Callable

ProgressHook = Callable[[str, float, float], None]

STAGES = ("extract", "vad", "diarize", "transcribe", "translate", "voices")
LABELS = {"extract": "extracting", "vad": "finding speech", "diarize": "speakers", "transcribe": "transcribing",
          "translate": "translating", "voices": "voices"}


def no_progress(stage: str, done: float, total: float) -> None:
    pass
