"""16 kHz mono audio that stages read by windows, so that memory stays flat however long the media.

Extraction writes the samples once as 16-bit PCM (what the decoder's resampler gives, so nothing
is lost) to an anonymous temporary file: on Linux it is made with O_TMPFILE and never has a name,
elsewhere it is unlinked at once, so no way out of a run (an exception, Ctrl-C, kill -9) leaves it
behind. Windows are read back with `os.pread`: reading one costs its own size, not the file's, and
nothing is mapped into the process (touched pages of a memory map would count as its memory).

An `Audio` slices like the 1-D float32 array the stages took before (`audio[a:b]`, `len(audio)`,
`audio.size`): a slice is float32 in [-1, 1], samples / 32768, exactly as the whole array held.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

import numpy as np

SAMPLE_RATE = 16000  # Hz: what Whisper, Silero and the speaker encoder take; every stage uses this one
_SCALE = np.float32(1 / 32768)  # a power of two: the float32 values are exact
_SILENCE_BLOCK = np.zeros(SAMPLE_RATE * 10, dtype="<i2")


class Audio:
    """Read-only 16 kHz mono audio; subclasses say where the 16-bit samples live (`pcm`)."""

    dtype = np.dtype(np.float32)  # of what slicing returns
    ndim = 1
    size = 0

    def pcm(self, start: int, stop: int) -> np.ndarray:
        """Samples [start, stop) as int16 (bounds already clipped by the caller)."""
        raise NotImplementedError

    def __len__(self) -> int:
        return self.size

    @property
    def shape(self) -> tuple[int]:
        return (self.size,)

    @property
    def duration(self) -> float:
        return self.size / SAMPLE_RATE

    def __getitem__(self, key: slice) -> np.ndarray:
        if not isinstance(key, slice):
            raise TypeError("audio is read by slices (audio[a:b]), not by single samples")
        start, stop, step = key.indices(self.size)
        if step != 1:
            raise ValueError("audio slices take every sample (no step)")
        if stop <= start:
            return np.zeros(0, dtype=np.float32)
        return self.pcm(start, stop).astype(np.float32) * _SCALE

    def read(self, start_s: float, end_s: float) -> np.ndarray:
        """The samples from `start_s` to `end_s` seconds, float32."""
        return self[int(start_s * SAMPLE_RATE):int(end_s * SAMPLE_RATE)]

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        # all of it: for short clips and tests; the stages read windows
        whole = self[:]
        return whole if dtype is None else whole.astype(dtype)

    def close(self) -> None:
        pass

    def __enter__(self) -> Audio:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class PcmAudio(Audio):
    """Audio over 16-bit samples already in memory (e.g. handed over by Ray's object store)."""

    def __init__(self, samples: np.ndarray):
        self.samples = np.asarray(samples, dtype="<i2").reshape(-1)
        self.size = int(self.samples.size)

    def pcm(self, start: int, stop: int) -> np.ndarray:
        return self.samples[start:stop]


class AudioFile(Audio):
    """Audio in an anonymous temporary file: written once, front to back, then read by windows."""

    def __init__(self, folder: str | None = None):
        # the pid in the name says whose a file is where the system cannot make a nameless one
        self._file = tempfile.TemporaryFile(prefix=f"toolkit-{os.getpid()}-", suffix=".pcm",
                                            dir=folder or tempfile.gettempdir())
        self.size = 0
        self._writing = True

    # -- writing (extraction)
    def append(self, samples: np.ndarray) -> None:
        self._file.write(np.ascontiguousarray(samples, dtype="<i2").tobytes())
        self.size += int(samples.size)

    def append_silence(self, count: int) -> None:
        while count > 0:
            block = _SILENCE_BLOCK[:count]
            self.append(block)
            count -= block.size

    def truncate(self, size: int) -> None:
        """Drop the samples from `size` on (a codec's trailing padding)."""
        self._file.flush()
        self._file.truncate(size * 2)
        self._file.seek(0, os.SEEK_END)
        self.size = min(self.size, size)

    def finish(self) -> AudioFile:
        """Done writing: from now on the file is only read."""
        self._file.flush()
        self._writing = False
        return self

    # -- reading (every stage)
    def pcm(self, start: int, stop: int) -> np.ndarray:
        if self._writing:
            self._file.flush()
        want, offset, parts = (stop - start) * 2, start * 2, []
        while want > 0:  # one pread returns at most ~2 GB
            data = os.pread(self._file.fileno(), want, offset)
            if not data:
                break
            parts.append(data)
            want, offset = want - len(data), offset + len(data)
        return np.frombuffer(parts[0] if len(parts) == 1 else b"".join(parts), dtype="<i2")

    def close(self) -> None:
        self._file.close()  # a nameless file is gone with its last descriptor
