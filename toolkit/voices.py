"""Voice prints of a transcript's speakers, and naming them from a voice library.

A print is computed from the speaker turns the pipeline decodes (one speaker at a time) and
the audio, with the pipeline's speaker encoder behind the `SpeakerEncoder` protocol; it does
not depend on how diarization found the turns. Matching is one-to-one inside a file: two
speakers of one transcript are two people by construction, so a name goes to one of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from .models import cpu_cores
from .progress import ProgressHook, no_progress
from .speaker_encoder import SAMPLE_RATE, SpeakerEncoder, load_speaker_encoder, one_thread
from .transcript import VoiceMatch, VoicePrint

if TYPE_CHECKING:
    from .audio import Audio

# Calibrated with scripts/calibrate_voices.py (README "People across videos"): GE2E prints of one
# voice recorded alike sit at cosine 0.91-0.99; different real people at <= 0.89 (two women, both
# telephone-band prompts); synthetic voices of one engine (espeak variants, pitch-shifted festival)
# reach 0.95; one voice through a telephone band with reverb falls to 0.45-0.84. Set for precision.
MATCH_THRESHOLD = 0.90  # a speaker takes a library name from this cosine to the name's pooled print
LINK_THRESHOLD = 0.90  # two groups of appearances become one person from this mean cosine ...
LINK_FLOOR = 0.88  # ... when no two appearances of the person sit below this one
# A print resting on less speech than this scatters more: its names and identities are marked
# weak, and in linking it must reach WEAK_MARGIN more (a 2 s print of a voice sat as low as 0.41).
WEAK_SECONDS = 8.0
WEAK_MARGIN = 0.04
DEFAULT_ENCODER = "ge2e"  # the pipeline's speaker encoder (diarization's too)
_MIN_CLIP = int(1.6 * SAMPLE_RATE)  # GE2E's window; shorter turns are looped up to it


class Turn(Protocol):
    """What a print needs of a speaker turn: when and who (`transcript.SpeakerTurn` is one)."""

    start: float
    end: float
    speaker: str


@dataclass(frozen=True)
class _Span:
    start: float
    end: float
    speaker: str


def voice_prints(audio: np.ndarray | Audio, turns: Iterable[Turn], encoder: SpeakerEncoder | None = None,
                 max_seconds: float = 180.0, progress: ProgressHook | None = None) -> dict[str, VoicePrint]:
    """One print per speaker of `turns` over 16 kHz mono `audio` (an array or `audio.Audio`);
    `progress("voices", done, total)` in seconds of the speech embedded.

    Each window embedding counts with the seconds of audio it covers, so a print is the
    length-weighted centroid of the speaker's speech. At most `max_seconds` of a speaker's
    speech are embedded (turns spread over the file): a centroid is stable long before that,
    and the cost stays bounded on hours of one voice.
    """
    encoder = encoder or load_speaker_encoder(DEFAULT_ENCODER)
    by_speaker: dict[str, list[tuple[int, int]]] = {}
    for turn in turns:
        a, b = max(0, int(round(turn.start * SAMPLE_RATE))), min(len(audio), int(round(turn.end * SAMPLE_RATE)))
        if b > a:
            by_speaker.setdefault(turn.speaker, []).append((a, b))
    from threadpoolctl import threadpool_limits

    chosen = {speaker: _spread(spans, int(max_seconds * SAMPLE_RATE)) for speaker, spans in by_speaker.items()}
    total = sum(b - a for spans in chosen.values() for a, b in spans)  # samples
    done, progress = 0, progress or no_progress

    def centroid(spans: list[tuple[int, int]]) -> np.ndarray:
        clips = [_fill_window(audio[a:b]) for a, b in spans]
        summed = np.zeros(encoder.dim, dtype=np.float64)
        with one_thread():  # the speakers are the parallel work here
            embedded = encoder.embed_windows_batch(clips)
        for (a, b), windows in zip(spans, embedded, strict=True):
            covered = np.minimum(windows.ends, (b - a) / SAMPLE_RATE) - windows.starts
            summed += (np.maximum(covered, 1e-3)[:, None] * windows.embeddings).sum(axis=0)
        return summed

    prints: dict[str, VoicePrint] = {}
    # Small matmuls: BLAS threads only contend (see diarize.py); scoped to this call. Speakers are
    # embedded on one thread per core instead (each speaker's batch as alone: the same prints).
    with threadpool_limits(limits=1, user_api="blas"), \
            ThreadPoolExecutor(max(1, min(len(chosen), cpu_cores()))) as pool:
        for (speaker, spans), summed in zip(chosen.items(), pool.map(centroid, chosen.values()), strict=True):
            norm = float(np.linalg.norm(summed))
            if norm > 0:
                prints[speaker] = VoicePrint((summed / norm).astype(np.float32),
                                             sum(b - a for a, b in spans) / SAMPLE_RATE, encoder.name)
            done += sum(b - a for a, b in spans)
            progress("voices", done / SAMPLE_RATE, total / SAMPLE_RATE)
    return prints


def _fill_window(clip: np.ndarray) -> np.ndarray:
    # A zero-padded window is a third silence and pulls the embedding off the voice; repeating
    # the speech fills it with the voice instead (as diarization does).
    if 0 < len(clip) < _MIN_CLIP:
        return np.tile(clip, -(-_MIN_CLIP // len(clip)))[:_MIN_CLIP]
    return clip


def _spread(spans: list[tuple[int, int]], budget: int) -> list[tuple[int, int]]:
    """Spans totalling at most `budget` samples, taken evenly over the file, in time order."""
    total = sum(b - a for a, b in spans)
    if total <= budget:
        return spans
    step = total / budget
    kept, seen, due = [], 0, 0.0
    for a, b in spans:
        if seen >= due:
            kept.append((a, b))
            due += (b - a) * step
        seen += b - a
    return kept


def unit(rows: np.ndarray) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.float32)
    return rows / np.maximum(np.linalg.norm(rows, axis=-1, keepdims=True), 1e-12)


def pool(prints: Sequence[VoicePrint]) -> VoicePrint:
    """Several prints of one voice as one: their centroid weighted by the seconds each rests on."""
    if not prints or len({p.encoder for p in prints}) != 1:
        raise ValueError("pooling needs one or more prints of one encoder")
    weights = np.array([max(p.seconds, 1e-3) for p in prints])
    centroid = (weights[:, None] * np.stack([p.embedding for p in prints]).astype(np.float64)).sum(axis=0)
    return VoicePrint(unit(centroid), float(sum(p.seconds for p in prints)), prints[0].encoder)


def match_speakers(voices: dict[str, VoicePrint], known: dict[str, VoicePrint],
                   threshold: float = MATCH_THRESHOLD) -> dict[str, VoiceMatch]:
    """Name the speakers whose print reaches `threshold` against a known voice, one name per speaker.

    Greedy on the best remaining score: the surest pair is named first, and neither side is used
    again, so two speakers of one file never get one name. Prints of another encoder are ignored.
    A name resting on a print of under WEAK_SECONDS of speech is marked weak.
    """
    if not voices:
        return {}
    encoder = next(iter(voices.values())).encoder  # one transcript, one encoder
    speakers = list(voices)
    names = [n for n, v in known.items() if v.encoder == encoder]
    if not names:
        return {}
    scores = (unit(np.stack([voices[s].embedding for s in speakers]))
              @ unit(np.stack([known[n].embedding for n in names])).T)  # (speakers, names) cosines
    out: dict[str, VoiceMatch] = {}
    order = np.dstack(np.unravel_index(np.argsort(-scores, axis=None), scores.shape))[0]
    used: set[int] = set()
    for i, j in order:
        score = float(scores[i, j])
        if score < threshold:
            break
        if speakers[i] in out or j in used:
            continue
        out[speakers[i]] = VoiceMatch(names[j], score, threshold, voices[speakers[i]].seconds < WEAK_SECONDS)
        used.add(int(j))
    return out


def voice_from_source(source: str, encoder: SpeakerEncoder | None = None) -> VoicePrint:
    """The print a SOURCE names: `transcript.json#SPEAKER_01` (stored in the transcript, no audio
    needed) or `video.mp4@12.5-31.0` (the speech inside that span of the media, embedded now;
    times in seconds or [h:]m:s). Raises ValueError with one line for the user."""
    if "#" in source and Path(source.rsplit("#", 1)[0]).suffix.lower() == ".json":
        return _transcript_voice(*source.rsplit("#", 1))
    if "@" in source:
        path, span = source.rsplit("@", 1)
        start, _, end = span.partition("-")
        try:
            a, b = _seconds(start), _seconds(end)
        except ValueError:
            raise ValueError(f"{source}: a span is START-END in seconds or [h:]m:s, e.g. clip.mp4@12.5-31") from None
        if not b > a >= 0:
            raise ValueError(f"{source}: the span must end after it starts")
        return _span_voice(path, a, b, encoder)
    raise ValueError(f"{source}: name a transcript's speaker (clip.json#SPEAKER_01) or a media span "
                     "(clip.mp4@12.5-31.0)")


def _seconds(text: str) -> float:
    value = 0.0
    for part in text.strip().split(":"):
        value = value * 60 + float(part)
    return value


def _transcript_voice(path: str, speaker: str) -> VoicePrint:
    from .transcript import Transcript

    try:
        transcript = Transcript.load(path)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{path}: not a readable transcript ({e})") from e
    if speaker not in transcript.voices:
        known = ", ".join(transcript.voices) or "none: transcribe it again with this version"
        raise ValueError(f"{path}: no voice print for {speaker!r} (speakers with one: {known})")
    return transcript.voices[speaker]


def _span_voice(path: str, start: float, end: float, encoder: SpeakerEncoder | None) -> VoicePrint:
    from .media import MediaError, open_media
    from .vad import speech_regions

    try:
        _, audio = open_media(path)
    except MediaError as e:
        raise ValueError(str(e)) from e
    with audio:  # only the span is read: a print from an hour-long recording costs the span
        if start * SAMPLE_RATE >= len(audio):
            raise ValueError(f"{path}: the span starts after the end of its audio ({audio.duration:.1f} s)")
        clip = audio.read(start, end)
    # only the speech inside the span: music or silence around a voice would pull its print away
    turns = [_Span(s, e, "span") for s, e in speech_regions(clip)]
    prints = voice_prints(clip, turns, encoder)
    if "span" not in prints:
        raise ValueError(f"{path}@{start:g}-{end:g}: no speech found in that span")
    return prints["span"]
