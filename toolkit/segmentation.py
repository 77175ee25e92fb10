"""Who is active when, inside 10 s chunks: pyannote's segmentation-3.0 on onnxruntime.

The model (`assets/segmentation-3.0.onnx`, MIT, see `assets/NOTICE`) reads a 10 s chunk of
16 kHz audio and says, for each of 589 frames (one every 270 samples, 16.875 ms), which of
up to three *local* speakers talk: a powerset over {}, {0}, {1}, {2}, {0,1}, {0,2}, {1,2}, so
at most two at once. Local means per chunk: speaker 0 of one chunk need not be speaker 0 of
the next; `diarize` ties them together.

Chunks slide over the audio with a step of a fraction of their length (as pyannote.audio's
`Inference`), so every frame is seen by several chunks and its count of active speakers
is a vote (`speaker_count`). Only chunks that reach speech found by the VAD are run: long
music or silence costs nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .media import SAMPLE_RATE
from .models import cpu_cores

ASSETS = Path(__file__).resolve().parent / "assets"
SEGMENTATION_PATH = ASSETS / "segmentation-3.0.onnx"

CHUNK_SAMPLES = 10 * SAMPLE_RATE  # the model's training chunk (10 s)
FRAME_STEP = 270  # samples between output frames (16.875 ms): SincNet's strides 10 * 3 * 3 * 3
FRAME_SIZE = 991  # samples one output frame sees (its receptive field, 62 ms), centred on the frame
CHUNK_FRAMES = (CHUNK_SAMPLES - FRAME_SIZE) // FRAME_STEP + 1  # 589 frames per chunk
LOCAL_SPEAKERS = 3
# the model's powerset classes, in its output order, as rows of local-speaker activity
POWERSET = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [1, 0, 1], [0, 1, 1]], dtype=bool)


def frame_time(frames: np.ndarray | int) -> np.ndarray | float:
    """Seconds at the centre of global frame(s) `frames` (frame t sees samples t*270 .. t*270+991)."""
    return (np.asarray(frames) * FRAME_STEP + FRAME_SIZE / 2) / SAMPLE_RATE


@dataclass(frozen=True)
class Segmentation:
    """What the chunks that were run say, on one global frame grid."""

    activity: np.ndarray  # (chunks, CHUNK_FRAMES, LOCAL_SPEAKERS) bool: the most likely class, per local speaker
    speech: np.ndarray  # (chunks, CHUNK_FRAMES) float16: probability that anyone speaks
    overlap: np.ndarray  # (chunks, CHUNK_FRAMES) float16: probability that two speak
    starts: np.ndarray  # (chunks,) int: global frame of each chunk's first frame, increasing
    num_frames: int  # global frames covering the audio

    def speaker_count(self, overlap_onset: float = 0.5, overlap_offset: float = 0.5) -> np.ndarray:
        """(num_frames,) uint8: how many people speak in each frame (0, 1, 2) from the mean
        probabilities of the chunks that see it: speech from 0.5; two voices where the
        probability of a two-speaker class reaches `overlap_onset`, held while it stays above
        `overlap_offset` (hysteresis, as pyannote's `Binarize`); 0 where no chunk was run.

        pyannote's `speaker_count` averages the chunks' most likely classes instead; on
        crosstalk the model often gives the pair class 0.3-0.5, below its single-speaker
        class, and only averaged probabilities see that overlap.
        """
        speech = np.zeros(self.num_frames + CHUNK_FRAMES, dtype=np.float32)
        overlap = np.zeros_like(speech)
        seen = np.zeros_like(speech)
        for start, p_speech, p_overlap in zip(self.starts, self.speech, self.overlap, strict=True):
            speech[start:start + CHUNK_FRAMES] += p_speech
            overlap[start:start + CHUNK_FRAMES] += p_overlap
            seen[start:start + CHUNK_FRAMES] += 1
        seen = np.maximum(seen, 1.0)
        speaking = speech >= 0.5 * seen
        count = speaking.astype(np.uint8) + (speaking & _hysteresis(overlap / seen, overlap_onset, overlap_offset))
        return count[:self.num_frames]


    def change_points(self, support: float, tolerance: int) -> np.ndarray:
        """Global frames where the chunks that see the point agree (at least a `support` share of
        them, within `tolerance` frames) that their one active local speaker changes, with at most
        a short pause between (a longer pause separates speech anyway)."""
        found: list[tuple[int, int]] = []  # (global frame, chunk)
        for c, start in enumerate(self.starts):
            act = self.activity[c]
            single = np.flatnonzero(act.sum(axis=1) == 1)
            local = act[single].argmax(axis=1)
            for j in np.flatnonzero(local[1:] != local[:-1]):
                f1, f2 = single[j], single[j + 1]
                if f2 - f1 <= 2 * tolerance:
                    found.append((int(start + (f1 + f2 + 1) // 2), c))
        if not found:
            return np.zeros(0, dtype=np.int64)
        found.sort()
        cuts, group = [], found[:1]
        for point in found[1:] + [(np.iinfo(np.int64).max, -1)]:
            if point[0] - group[-1][0] <= tolerance:
                group.append(point)
                continue
            where = int(np.median([f for f, _ in group]))
            seen = int(np.sum((self.starts <= where) & (self.starts + CHUNK_FRAMES > where)))
            if len({c for _, c in group}) >= support * max(1, seen):
                cuts.append(where)
            group = [point]
        return np.array(cuts, dtype=np.int64)


def region_of_frames(num_frames: int, spans: list[tuple[float, float]], margin: float) -> np.ndarray:
    """(num_frames,) int32: the index in `spans` (sorted speech regions, seconds) of the region each
    frame belongs to, widened by `margin` but never past the midpoint between two regions; -1 for
    frames farther from speech."""
    centre = np.asarray(frame_time(np.arange(num_frames)))
    bounds = np.array([(e + s) / 2 for (_, e), (s, _) in zip(spans, spans[1:], strict=False)])
    nearest = np.searchsorted(bounds, centre).astype(np.int32)
    starts = np.array([s for s, _ in spans]) - margin
    ends = np.array([e for _, e in spans]) + margin
    inside = (centre >= starts[nearest]) & (centre < ends[nearest])
    return np.where(inside, nearest, -1).astype(np.int32)


def runs(values: np.ndarray) -> list[tuple[int, int, int]]:
    """(start, end, value) of each run of equal values."""
    if len(values) == 0:
        return []
    cuts = np.flatnonzero(values[1:] != values[:-1]) + 1
    starts = np.r_[0, cuts]
    ends = np.r_[cuts, len(values)]
    return [(int(a), int(b), int(values[a])) for a, b in zip(starts, ends, strict=True)]


def smooth_count(count: np.ndarray, min_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Runs shorter than `min_frames` are noise in a speaker count: an overlap is one speaker, one
    speaker between two overlaps is still the overlap, a pause inside speech is speech. Returns
    the smoothed count and the middle frames of the pauses it filled (a pause is still where a
    speaker may change)."""
    out = count.copy()
    filled = []
    spans = runs(count)
    for i, (a, b, value) in enumerate(spans):
        if b - a >= min_frames:
            continue
        before = spans[i - 1][2] if i else 0
        after = spans[i + 1][2] if i + 1 < len(spans) else 0
        if value >= 2:
            out[a:b] = 1
        elif value == 1 and before >= 2 and after >= 2:
            out[a:b] = 2
        elif value == 0 and before and after:
            out[a:b] = min(before, after)
            filled.append((a + b) // 2)
    return out, np.array(filled, dtype=np.int64)


def _hysteresis(p: np.ndarray, onset: float, offset: float) -> np.ndarray:
    """True in each run of `p >= offset` that somewhere reaches `onset`."""
    held = p >= offset
    run = np.cumsum(np.r_[True, held[1:] != held[:-1]])  # run id per frame
    reached = np.zeros(run[-1] + 1, dtype=bool) if len(p) else np.zeros(1, dtype=bool)
    reached[run[p >= onset]] = True
    return held & reached[run]


class SegmentationModel:
    """segmentation-3.0 on onnxruntime's CPU provider (6 MB; ~20 ms a chunk on one core)."""

    def __init__(self, path: str | Path = SEGMENTATION_PATH, threads: int = 0) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or min(4, cpu_cores())
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3  # no warnings on stderr: library code stays quiet
        # without the arena, memory goes back after each batch (with it a batch of 16 chunks
        # kept ~350 MB for the life of the process)
        opts.enable_cpu_mem_arena = False
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name

    def __call__(self, chunks: np.ndarray) -> np.ndarray:
        """(batch, CHUNK_SAMPLES) float32 -> (batch, CHUNK_FRAMES, 7) log-probabilities of the powerset classes."""
        return self.session.run(None, {self.input: chunks[:, None, :].astype(np.float32, copy=False)})[0]


@functools.lru_cache(maxsize=2)
def load_segmentation_model(path: str = str(SEGMENTATION_PATH)) -> SegmentationModel:
    """The model at `path` (default: the bundled one), loaded once per process, on first use."""
    return SegmentationModel(path)


def chunk_starts(num_samples: int, step_frames: int, regions: list[tuple[float, float]] | None = None) -> np.ndarray:
    """Global first frames of the chunks to run: every `step_frames` frames over the audio, the last one
    padded, and with `regions` only the chunks that reach one of them."""
    num_frames = max(1, (num_samples - FRAME_SIZE) // FRAME_STEP + 1)
    last = max(0, num_frames - CHUNK_FRAMES)
    starts = np.arange(0, last + step_frames, step_frames)  # the last one may run past the end: padded
    if regions is None:
        return starts
    keep = np.zeros(len(starts), dtype=bool)
    seconds = starts * FRAME_STEP / SAMPLE_RATE
    for s, e in regions:
        keep |= (seconds < e) & (seconds + CHUNK_SAMPLES / SAMPLE_RATE > s)
    return starts[keep]


def segment(audio: np.ndarray, step_s: float = 5.0, regions: list[tuple[float, float]] | None = None,
            model: SegmentationModel | None = None, batch_size: int = 4,
            progress: Callable[[float], None] | None = None) -> Segmentation:
    """Run the model on chunks sliding `step_s` apart over 16 kHz mono `audio` (only those reaching
    `regions`, when given), `batch_size` chunks per call so memory stays flat on long inputs
    (4 chunks: ~1.5x faster than one at a time on 2 cores, ~70 MB of temporaries)."""
    model = model or load_segmentation_model()
    step_frames = max(1, int(round(step_s * SAMPLE_RATE / FRAME_STEP)))
    num_frames = max(1, (len(audio) - FRAME_SIZE) // FRAME_STEP + 1)
    starts = chunk_starts(len(audio), step_frames, regions)
    activity = np.zeros((len(starts), CHUNK_FRAMES, LOCAL_SPEAKERS), dtype=bool)
    speech = np.zeros((len(starts), CHUNK_FRAMES), dtype=np.float16)
    overlap = np.zeros_like(speech)
    batch = np.zeros((batch_size, CHUNK_SAMPLES), dtype=np.float32)
    for a in range(0, len(starts), batch_size):
        part = starts[a:a + batch_size]
        batch[:] = 0.0  # the last chunk is padded with silence, as pyannote pads it
        for i, start in enumerate(part):
            piece = audio[start * FRAME_STEP:start * FRAME_STEP + CHUNK_SAMPLES]
            batch[i, :len(piece)] = piece
        log_probs = model(batch[:len(part)])
        activity[a:a + len(part)] = POWERSET[np.argmax(log_probs, axis=2)]
        probs = np.exp(log_probs)
        speech[a:a + len(part)] = 1.0 - probs[:, :, 0]
        overlap[a:a + len(part)] = probs[:, :, 1 + LOCAL_SPEAKERS:].sum(axis=2)
        if progress:
            progress((a + len(part)) / len(starts))
    return Segmentation(activity, speech, overlap, starts, num_frames)
