"""Speaker embeddings without torch: a numpy forward pass of resemblyzer's GE2E voice encoder.

The weights in `assets/ge2e.npz` were converted once from resemblyzer's `pretrained.pt`
(Apache-2.0, see `assets/NOTICE`) by `scripts/convert_ge2e.py`, which also checked this
forward pass against resemblyzer's torch output. The file carries the mel filterbank too,
so neither librosa nor torch is needed at run time.

Other encoders plug in through `SpeakerEncoder` (anything with `embed_utterance`,
`embed_windows` and `embed_windows_batch`) and `load_speaker_encoder`, whose registry
`ENCODERS` maps a name to a loader; a path to a `.npz` with the GE2E layout also works.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from .media import SAMPLE_RATE
from .models import cpu_cores

ASSETS = Path(__file__).resolve().parent / "assets"
GE2E_PATH = ASSETS / "ge2e.npz"

# resemblyzer's hyper-parameters (resemblyzer/hparams.py and VoiceEncoder.embed_utterance)
N_FFT = 400  # 25 ms
HOP = 160  # 10 ms
WINDOW_FRAMES = 160  # 1.6 s partial utterance
WINDOW_RATE = 1.3  # partial utterances per second -> a step of 77 frames
MIN_COVERAGE = 0.75  # a trailing partial is kept if this share of it is real audio
TARGET_DBFS = -30.0
INT16_MAX = 2**15 - 1
BATCH = 64  # windows per LSTM batch: bounds the (batch, 160, 1024) gate buffer to ~40 MB


@dataclass(frozen=True)
class WindowEmbeddings:
    """Per-window embeddings of one utterance; `starts`/`ends` are seconds from the utterance start."""

    embeddings: np.ndarray  # (n, dim) float32, unit rows
    starts: np.ndarray  # (n,) float64
    ends: np.ndarray  # (n,) float64, clipped to the utterance length


class SpeakerEncoder(Protocol):
    """What diarization needs from a speaker encoder. Inputs are 16 kHz mono float32."""

    name: str
    dim: int

    def embed_utterance(self, audio: np.ndarray) -> np.ndarray:
        """Unit-norm embedding of one utterance, shape (dim,)."""
        ...

    def embed_windows(self, audio: np.ndarray) -> WindowEmbeddings:
        """Unit-norm embeddings of short overlapping windows covering the utterance."""
        ...

    def embed_windows_batch(self, audios: list[np.ndarray]) -> list[WindowEmbeddings]:
        """`embed_windows` of several utterances; lets an implementation batch across them."""
        ...


def normalize_volume(audio: np.ndarray, target_dbfs: float = TARGET_DBFS) -> np.ndarray:
    """Raise (never lower) the level to `target_dbfs`, as resemblyzer's preprocessing does."""
    audio = np.asarray(audio, dtype=np.float32)
    rms = float(np.sqrt(np.mean((audio.astype(np.float64) * INT16_MAX) ** 2))) if audio.size else 0.0
    if rms <= 0.0:
        return audio
    change = target_dbfs - 20.0 * np.log10(rms / INT16_MAX)
    if change < 0:
        return audio
    return (audio * np.float32(10.0 ** (change / 20.0))).astype(np.float32)


def partial_slices(n_samples: int) -> list[tuple[int, int]]:
    """Mel-frame ranges of resemblyzer's partial utterances (VoiceEncoder.compute_partial_slices)."""
    n_frames = int(np.ceil((n_samples + 1) / HOP))
    step = int(np.round((SAMPLE_RATE / WINDOW_RATE) / HOP))
    steps = max(1, n_frames - WINDOW_FRAMES + step + 1)
    slices = [(i, i + WINDOW_FRAMES) for i in range(0, steps, step)]
    last_start = slices[-1][0] * HOP
    coverage = (n_samples - last_start) / (WINDOW_FRAMES * HOP)
    if coverage < MIN_COVERAGE and len(slices) > 1:
        slices.pop()
    return slices


_THREAD = threading.local()


@contextmanager
def one_thread() -> Iterator[None]:
    """Embed on the calling thread only, for callers that already run several embeddings at once
    (each chunk's gate buffers are ~60 MB: threads within threads multiplied them)."""
    before, _THREAD.alone = getattr(_THREAD, "alone", False), True
    try:
        yield
    finally:
        _THREAD.alone = before


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # tanh form: no overflow warnings for large negative inputs, same value
    return 0.5 * (np.tanh(0.5 * x) + 1.0)


class Ge2eEncoder:
    """resemblyzer's VoiceEncoder (3-layer LSTM 40->256, Linear 256->256, ReLU, L2) in numpy."""

    name = "ge2e"
    dim = 256

    def __init__(self, path: str | Path = GE2E_PATH) -> None:
        with np.load(path) as z:
            self.mel_basis = z["mel_basis"].astype(np.float32)  # (40, 201), librosa Slaney
            self.layers = []
            for k in range(3):
                w_ih = z[f"lstm.weight_ih_l{k}"].astype(np.float32)
                w_hh = z[f"lstm.weight_hh_l{k}"].astype(np.float32)
                bias = (z[f"lstm.bias_ih_l{k}"] + z[f"lstm.bias_hh_l{k}"]).astype(np.float32)
                self.layers.append((np.ascontiguousarray(w_ih.T), np.ascontiguousarray(w_hh.T), bias))
            self.linear_w = np.ascontiguousarray(z["linear.weight"].astype(np.float32).T)
            self.linear_b = z["linear.bias"].astype(np.float32)
        # periodic Hann, as librosa's stft uses
        self.window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)

    def mel_spectrogram(self, audio: np.ndarray) -> np.ndarray:
        """(frames, 40) mel power spectrogram, centred frames with zero padding (librosa >= 0.10)."""
        padded = np.pad(np.asarray(audio, dtype=np.float32), (N_FFT // 2, N_FFT // 2))
        n_frames = 1 + (len(padded) - N_FFT) // HOP
        frames = np.lib.stride_tricks.as_strided(
            padded, shape=(n_frames, N_FFT), strides=(padded.strides[0] * HOP, padded.strides[0]))
        power = np.abs(np.fft.rfft(frames * self.window, axis=1)) ** 2
        return (power.astype(np.float32) @ self.mel_basis.T).astype(np.float32)

    def forward(self, mels: np.ndarray) -> np.ndarray:
        """(batch, frames, 40) mel windows -> (batch, 256) unit embeddings, in chunks of BATCH.

        Chunks run on one thread per core: the LSTM's small matmuls gain nothing from BLAS threads
        (callers limit those to one), while numpy releases the GIL inside each of them. The chunks
        are the same whatever the thread count, and so are the embeddings, bit for bit."""
        out = np.empty((len(mels), self.dim), dtype=np.float32)
        starts = range(0, len(mels), BATCH)
        workers = 1 if getattr(_THREAD, "alone", False) else min(len(starts), cpu_cores())
        if workers < 2:
            for a in starts:
                out[a:a + BATCH] = self._forward_batch(mels[a:a + BATCH])
            return out
        with ThreadPoolExecutor(workers) as pool:
            for a, embedded in zip(starts, pool.map(lambda a: self._forward_batch(mels[a:a + BATCH]), starts),
                                   strict=True):
                out[a:a + BATCH] = embedded
        return out

    def _forward_batch(self, mels: np.ndarray) -> np.ndarray:
        x = np.asarray(mels, dtype=np.float32)
        b, t, _ = x.shape
        h = np.zeros((b, 256), dtype=np.float32)
        for li, (w_ih, w_hh, bias) in enumerate(self.layers):
            # input projections for all time steps in one matmul; only h @ W_hh stays sequential
            gates_in = (x.reshape(b * t, -1) @ w_ih + bias).reshape(b, t, 1024)
            h = np.zeros((b, 256), dtype=np.float32)
            c = np.zeros((b, 256), dtype=np.float32)
            last = li == len(self.layers) - 1
            seq = None if last else np.empty((b, t, 256), dtype=np.float32)
            for step in range(t):
                g = gates_in[:, step] + h @ w_hh
                i = _sigmoid(g[:, :256])  # torch gate order: input, forget, cell, output
                f = _sigmoid(g[:, 256:512])
                cell = np.tanh(g[:, 512:768])
                o = _sigmoid(g[:, 768:])
                c = f * c + i * cell
                h = o * np.tanh(c)
                if seq is not None:
                    seq[:, step] = h
            if seq is not None:
                x = seq
        e = np.maximum(h @ self.linear_w + self.linear_b, 0.0)
        return _unit_rows(e)

    def _windows(self, audio: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n = len(audio)
        audio = normalize_volume(audio)  # per utterance, as resemblyzer's preprocess_wav
        slices = partial_slices(n)
        need = slices[-1][1] * HOP
        if need >= n:
            audio = np.pad(audio, (0, need - n))
        mel = self.mel_spectrogram(audio)
        mels = np.stack([mel[a:b] for a, b in slices])
        starts = np.array([a * HOP / SAMPLE_RATE for a, _ in slices])
        ends = np.array([min(b * HOP, n) / SAMPLE_RATE for _, b in slices])
        return mels, starts, ends

    def embed_windows(self, audio: np.ndarray) -> WindowEmbeddings:
        return self.embed_windows_batch([audio])[0]

    def embed_windows_batch(self, audios: list[np.ndarray]) -> list[WindowEmbeddings]:
        parts = [self._windows(a) for a in audios]
        if not parts:
            return []
        # short utterances have 1-3 windows; one LSTM batch across all of them is far cheaper
        emb = self.forward(np.concatenate([m for m, _, _ in parts]))
        out, k = [], 0
        for mels, starts, ends in parts:
            out.append(WindowEmbeddings(emb[k:k + len(mels)], starts, ends))
            k += len(mels)
        return out

    def embed_utterance(self, audio: np.ndarray) -> np.ndarray:
        return _unit_rows(self.embed_windows(audio).embeddings.mean(axis=0, keepdims=True))[0]


def _unit_rows(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norm, 1e-12)).astype(np.float32)


# name -> loader. To add an encoder (e.g. a WeSpeaker/pyannote ONNX model), register a
# loader returning an object that satisfies `SpeakerEncoder`; diarization thresholds are
# tuned for GE2E cosines, so a new encoder will likely need its own `DiarizationOptions`.
ENCODERS: dict[str, Callable[[], SpeakerEncoder]] = {
    "ge2e": lambda: Ge2eEncoder(GE2E_PATH),
}


def load_speaker_encoder(name: str = "ge2e") -> SpeakerEncoder:
    """The encoder registered as `name`, or a GE2E-layout `.npz` at that path; loaded once, on first use."""
    if name in ENCODERS:
        return _load(name)
    path = Path(name)
    if path.suffix == ".npz" and path.is_file():
        return _load(str(path.resolve()))
    raise ValueError(f"unknown speaker encoder {name!r}; available: {', '.join(sorted(ENCODERS))} "
                     "or a path to a GE2E-layout .npz")


@functools.lru_cache(maxsize=4)
def _load(key: str) -> SpeakerEncoder:
    # keyed on the canonical name/path, so "ge2e" and the default share one instance
    return ENCODERS[key]() if key in ENCODERS else Ge2eEncoder(key)
