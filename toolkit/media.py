"""Media in: check an input, probe its streams, and decode 16 kHz mono audio on the media's clock (PyAV).

Decoding places every frame at its timestamp, so damaged media (lost or undecodable packets,
a file cut short) never shifts later words: gaps become silence where they were, and what was
damaged is reported in `MediaInfo.damage`. The ffmpeg executable (for callers that want one)
is the one on PATH, else the static build that the `imageio-ffmpeg` wheel ships.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import os
import shutil
import stat
from pathlib import Path

import numpy as np

from .audio import SAMPLE_RATE, AudioFile
from .progress import ProgressHook
from .transcript import MediaDamage, MediaInfo, MediaStream

# A decoded frame this far from where the previous one ended is placed at its own time (filling
# with silence, or dropping a repeat): far above the 1 ms rounding of Matroska timestamps, and
# below a 23 ms AAC frame, so one lost frame no longer shifts every later word.
PLACEMENT_TOLERANCE_S = 0.02
REPORTED_GAP_S = 0.1  # gaps and repeats from this long are damage worth a note (ffmpeg's min_hard_comp)
TRUNCATION_S = 0.5  # audio that ends this much before the container says is reported as cut short


class MediaError(Exception):
    """An input that cannot be turned into audio; the message names the file and the reason."""

    def __init__(self, path: str | Path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


@functools.lru_cache(maxsize=1)
def ffmpeg_executable() -> str:
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg
    except ImportError as e:
        raise RuntimeError("no ffmpeg on PATH and imageio-ffmpeg is not installed") from e
    return imageio_ffmpeg.get_ffmpeg_exe()


def file_sha256(path: str | Path) -> str:
    """The file's SHA-256; remembered per (path, size, mtime, ctime, inode), since a batch hashes each
    input to decide whether to skip it and the pipeline records it again, and a video is gigabytes.
    The ctime changes on every write, even one that puts the size and mtime back."""
    st = os.stat(path)
    return _sha256(os.path.abspath(path), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


@functools.lru_cache(maxsize=256)
def _sha256(path: str, size: int, mtime_ns: int, ctime_ns: int, inode: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _ffmpeg_url(path: str | Path) -> str:
    """An explicit file: URL, so that a name like `interview:part2.wav` is not read as a protocol."""
    return "file:" + os.path.abspath(path)


_NOT_REGULAR = ((stat.S_ISDIR, "is a folder, not a media file"), (stat.S_ISFIFO, "is a named pipe (FIFO), not a file"),
                (stat.S_ISCHR, "is a character device, not a file"), (stat.S_ISBLK, "is a block device, not a file"),
                (stat.S_ISSOCK, "is a socket, not a file"))


def check_input(path: str | Path) -> os.stat_result:
    """The input's stat if it is a non-empty regular file we can open; else a MediaError that says
    what it is instead. Nothing is read, so a FIFO or /dev/zero cannot hang or flood the run."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            raise MediaError(path, f"broken symbolic link (to {os.readlink(path)})") from None
        raise MediaError(path, "no such file") from None
    except OSError as e:
        reason = {errno.ELOOP: "symbolic link loop", errno.ENAMETOOLONG: "name too long",
                  errno.ENOTDIR: "no such file (a part of the path is not a folder)"}.get(e.errno)
        raise MediaError(path, reason or f"cannot be read ({e.strerror})") from None
    for is_kind, reason in _NOT_REGULAR:
        if is_kind(st.st_mode):
            raise MediaError(path, reason)
    if st.st_size == 0:
        raise MediaError(path, "empty file (0 bytes)")
    try:
        with open(path, "rb"):
            pass
    except OSError as e:
        raise MediaError(path, f"cannot be read ({e.strerror})") from None
    return st


def probe(path: str | Path) -> MediaInfo:
    """Streams, duration and codecs of `path`; raises MediaError if it is not readable media."""
    import av

    path = Path(path)
    check_input(path)
    try:
        with av.open(_ffmpeg_url(path), metadata_errors="ignore") as container:
            streams = [MediaStream(
                index=s.index, codec_type=s.type, codec_name=s.codec_context.name if s.codec_context else "",
                language=s.metadata.get("language") if s.metadata.get("language") not in (None, "und") else None,
                channels=getattr(s.codec_context, "channels", None) if s.type == "audio" else None,
                sample_rate=getattr(s.codec_context, "sample_rate", None) if s.type == "audio" else None,
                default=bool(s.disposition & av.stream.Disposition.default) if hasattr(av.stream, "Disposition")
                else False,
            ) for s in container.streams]
            duration = container.duration / av.time_base if container.duration else 0.0
            format_name = container.format.name
    except av.FFmpegError as e:
        raise MediaError(path, f"not a media file ffmpeg can read ({e.strerror or type(e).__name__})") from e
    return MediaInfo(path=str(path), duration=float(duration), format_name=format_name, streams=streams)


def choose_audio_stream(info: MediaInfo, requested: int | None = None) -> int:
    """The 0-based position among audio streams: `requested`, else the default-flagged one, else the first."""
    audio = [s for s in info.streams if s.codec_type == "audio"]
    if not audio:
        others = ", ".join(sorted({s.codec_type for s in info.streams})) or "nothing"
        raise MediaError(info.path, f"no audio stream (the file holds {others})")
    if requested is not None:
        if not 0 <= requested < len(audio):
            raise MediaError(info.path, f"--audio-stream {requested} does not exist "
                                        f"(the file has {len(audio)} audio stream(s), numbered from 0)")
        return requested
    defaults = [i for i, s in enumerate(audio) if s.default]
    return defaults[0] if defaults else 0


class _Timeline:
    """Decoded 16 kHz samples laid out on the media's clock, written to `audio` as they come: a frame
    that starts later than the previous one ended gets silence before it, one that starts earlier
    has its repeat dropped."""

    def __init__(self, audio: AudioFile):
        self.audio = audio
        self.filled = 0

    def place(self, pos: int | None, chunk: np.ndarray) -> None:
        if pos is None or abs(pos - self.filled) <= PLACEMENT_TOLERANCE_S * SAMPLE_RATE:
            pos = self.filled  # on time, within the jitter of rounded timestamps
        if pos < self.filled:
            chunk, pos = chunk[self.filled - pos:], self.filled
        if not chunk.size:
            return
        self.audio.append_silence(pos - self.filled)
        self.audio.append(chunk)
        self.filled = pos + chunk.size


class _DamageLog:
    """What went wrong while decoding, in seconds on the media's clock."""

    def __init__(self, origin: float):
        self.origin = origin
        self.next_start: float | None = None  # where the next frame should begin
        self.gaps: list[tuple[float, float]] = []
        self.overlaps: list[tuple[float, float]] = []
        self.errors: list[tuple[float, float]] = []  # packets the decoder refused

    def frame(self, frame) -> None:
        if frame.time is None:
            return
        start = frame.time - self.origin
        if self.next_start is not None:
            if start - self.next_start >= REPORTED_GAP_S:
                self.gaps.append((self.next_start, start))
            elif self.next_start - start >= REPORTED_GAP_S:
                self.overlaps.append((start, self.next_start))
        self.next_start = start + frame.samples / frame.sample_rate

    def refused(self, packet) -> None:
        if packet.pts is None or packet.time_base is None:
            return
        start = float(packet.pts * packet.time_base) - self.origin
        self.errors.append((start, start + float((packet.duration or 0) * packet.time_base)))

    def damage(self, audio_end: float, declared_end: float) -> list[MediaDamage]:
        """Undecodable stretches (with the gaps they caused), missing ones, repeats, an early end."""
        truncated = declared_end - audio_end >= TRUNCATION_S
        errors = _merge([e for e in self.errors if not (truncated and e[0] >= audio_end - PLACEMENT_TOLERANCE_S)])
        found = []
        for start, end in self.gaps:
            hit = [e for e in errors if e[0] < end and e[1] > start - PLACEMENT_TOLERANCE_S]
            found.append(MediaDamage("undecodable" if hit else "missing", start, end))
        covered = [(d.start, d.end) for d in found]
        found += [MediaDamage("undecodable", s, e) for s, e in errors
                  if not any(cs - PLACEMENT_TOLERANCE_S <= s and e <= ce + PLACEMENT_TOLERANCE_S for cs, ce in covered)]
        found += [MediaDamage("overlap", s, e) for s, e in self.overlaps]
        if truncated:
            found.append(MediaDamage("truncated", audio_end, declared_end))
        return sorted(found, key=lambda d: d.start)


def _merge(ranges: list[tuple[float, float]], join_s: float = 0.5) -> list[tuple[float, float]]:
    merged: list[tuple[float, float]] = []
    for start, end in sorted(ranges):
        if merged and start - merged[-1][1] <= join_s:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


PROGRESS_EVERY_S = 30.0  # seconds of decoded audio between two progress reports


def decode_to_file(path: str | Path, audio_stream: int = 0, expected_seconds: float = 0.0,
                   progress: ProgressHook | None = None) -> tuple[AudioFile, list[MediaDamage]]:
    """One audio stream as 16 kHz mono 16-bit samples in a temporary file, on the media's clock,
    and its damage.

    Decoded with PyAV frame by frame, placing each frame at its timestamp (as ffmpeg's
    `aresample=async=1:first_pts=0` does), so missing or undecodable packets become silence
    where they were, and every later word keeps its true time; what was found is returned.
    The samples go to the file as they are decoded: memory does not grow with the media's length.
    """
    import av

    try:
        container = av.open(_ffmpeg_url(path), metadata_errors="ignore")
    except av.FFmpegError as e:
        raise MediaError(path, f"not a media file ffmpeg can read ({e.strerror or type(e).__name__})") from e
    audio = AudioFile()
    try:
        with container:
            try:
                stream = container.streams.audio[audio_stream]
            except IndexError:
                raise MediaError(path, f"no audio stream {audio_stream}") from None
            # Time 0 is where a player's clock starts: the container's start, not the audio's.
            origin = container.start_time / av.time_base if container.start_time is not None else 0.0
            declared_end = _declared_end(container, stream, origin)
            log = _DamageLog(origin)
            first_error = _decode_stream(container, stream, _Timeline(audio), log, progress,
                                         expected_seconds or declared_end)
        if audio.size == 0:
            if first_error is not None:
                reason = first_error.strerror or type(first_error).__name__
                raise MediaError(path, f"audio could not be decoded ({reason})")
            raise MediaError(path, "the audio stream decodes to zero samples")
        excess = audio.size - round(declared_end * SAMPLE_RATE)
        if declared_end and 0 < excess <= PLACEMENT_TOLERANCE_S * SAMPLE_RATE * 5:  # the codec's padding
            audio.truncate(audio.size - excess)
        end = log.next_start if log.next_start is not None else audio.duration
        return audio.finish(), log.damage(min(end, audio.duration), declared_end)
    except BaseException:
        audio.close()
        raise


def _decode_stream(container, stream, timeline: _Timeline, log: _DamageLog, progress: ProgressHook | None,
                   total_s: float) -> Exception | None:
    """Decode `stream` onto `timeline`; the first decoding error, if any (what came before it stands)."""
    import av

    origin = log.origin
    resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
    first_error: Exception | None = None
    reported = [0.0]

    def place(frames) -> None:
        for out in frames:
            pos = None if out.time is None else round((out.time - origin) * SAMPLE_RATE)
            timeline.place(pos, out.to_ndarray()[0])
        done = timeline.filled / SAMPLE_RATE
        if progress and done - reported[0] >= PROGRESS_EVERY_S:
            reported[0] = done
            progress("extract", done, max(total_s, done))

    try:
        for packet in container.demux(stream):
            try:
                frames = packet.decode()
            except av.FFmpegError as e:  # a damaged packet: its time stays empty, the rest decodes
                first_error = first_error or e
                log.refused(packet)
                continue
            for frame in frames:
                log.frame(frame)
                try:
                    place(resampler.resample(frame))
                except ValueError:  # the stream changed rate or layout mid-way: a fresh resampler
                    place(resampler.resample(None))
                    resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
                    place(resampler.resample(frame))
    except av.FFmpegError as e:  # the container cannot be read past here: what came before stands
        first_error = first_error or e
    place(resampler.resample(None))
    return first_error


def decode_audio(path: str | Path, audio_stream: int = 0,
                 expected_seconds: float = 0.0) -> tuple[np.ndarray, list[MediaDamage]]:
    """`decode_to_file`, read back whole as float32 in [-1, 1]: for short clips and tests."""
    audio, damage = decode_to_file(path, audio_stream, expected_seconds)
    with audio:
        return audio[:], damage


def _declared_end(container, stream, origin: float) -> float:
    """Where the container says this audio stream ends (its own duration, else the file's)."""
    import av

    if stream.duration and stream.time_base:
        start = float(stream.start_time * stream.time_base) if stream.start_time is not None else origin
        return start - origin + float(stream.duration * stream.time_base)
    return container.duration / av.time_base if container.duration else 0.0


def extract_audio(path: str | Path, audio_stream: int = 0, expected_seconds: float = 0.0) -> np.ndarray:
    """Decode one audio stream to 16 kHz mono float32 in [-1, 1] (`decode_audio` without the damage)."""
    return decode_audio(path, audio_stream, expected_seconds)[0]


def describe_damage(damage: list[MediaDamage], shown: int = 4) -> str:
    """One line for a reader: what was damaged, where, and that times were kept."""
    what = {"missing": "no audio {} (missing packets)", "undecodable": "undecodable audio {}",
            "overlap": "repeated audio at {} dropped", "truncated": "audio ends at {}"}
    parts = []
    for d in damage[:shown]:
        span = (f"{d.start:.1f} s of {d.end:.1f} s (file cut short?)" if d.kind == "truncated"
                else f"{d.start:.1f}-{d.end:.1f} s")
        parts.append(what.get(d.kind, d.kind + " {}").format(span))
    if len(damage) > shown:
        parts.append(f"and {len(damage) - shown} more")
    text = "damaged audio: " + "; ".join(parts)
    if any(d.kind in ("missing", "undecodable") for d in damage):
        text += "; gaps filled with silence, so later times stay on the media's clock"
    return text


def damage_notes(info: MediaInfo) -> list[str]:
    """The transcript's notes about its media: one line if the audio was damaged, else none."""
    return [describe_damage(info.damage)] if info.damage else []


def open_media(path: str | Path, audio_stream: int | None = None,
               progress: ProgressHook | None = None) -> tuple[MediaInfo, AudioFile]:
    """Probe, pick the audio stream, extract it to a temporary file, and hash the file: all a pipeline
    needs of the input. The caller closes the audio (`with audio:`), which removes the file."""
    info = probe(path)
    info.audio_stream = choose_audio_stream(info, audio_stream)
    audio, info.damage = decode_to_file(path, info.audio_stream, info.duration, progress)
    try:
        info.sha256 = file_sha256(path)
    except BaseException:
        audio.close()
        raise
    if not info.duration:
        info.duration = audio.duration
    if progress:
        progress("extract", audio.duration, audio.duration)
    return info, audio


def load_media(path: str | Path, audio_stream: int | None = None) -> tuple[MediaInfo, np.ndarray]:
    """`open_media` with the audio read back whole as float32: for short clips and tests."""
    info, audio = open_media(path, audio_stream)
    with audio:
        return info, audio[:]
