"""Media in: probe a container's streams (PyAV) and extract 16 kHz mono audio (ffmpeg-python).

The ffmpeg executable is the one on PATH, else the static build that the `imageio-ffmpeg`
wheel ships, so `pip install` alone is enough.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
from pathlib import Path

import numpy as np

from .transcript import MediaInfo, MediaStream

SAMPLE_RATE = 16000  # Hz: what Whisper, Silero and the speaker encoder take; every stage uses this one


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
    """The file's SHA-256; remembered per (path, size, mtime), since a batch hashes each input to
    decide whether to skip it and the pipeline records it again, and a video is gigabytes."""
    st = os.stat(path)
    return _sha256(os.path.abspath(path), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=256)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _ffmpeg_url(path: str | Path) -> str:
    """An explicit file: URL, so that a name like `interview:part2.wav` is not read as a protocol."""
    return "file:" + os.path.abspath(path)


def probe(path: str | Path) -> MediaInfo:
    """Streams, duration and codecs of `path`; raises MediaError if it is not readable media."""
    import av

    path = Path(path)
    if not path.exists():
        raise MediaError(path, "no such file")
    if path.is_dir():
        raise MediaError(path, "is a folder, not a media file")
    if path.stat().st_size == 0:
        raise MediaError(path, "empty file (0 bytes)")
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


def extract_audio(path: str | Path, audio_stream: int = 0, expected_seconds: float = 0.0) -> np.ndarray:
    """Decode one audio stream to 16 kHz mono float32 in [-1, 1].

    ffmpeg's output is read in chunks straight into one float32 array (sized from the probed
    duration, grown if needed): a 2-hour file costs one 460 MB array, not a copy of its bytes too.
    """
    import subprocess
    import tempfile

    import ffmpeg

    args = ffmpeg.input(_ffmpeg_url(path)).output(
        "pipe:", format="s16le", acodec="pcm_s16le", ac=1, ar=SAMPLE_RATE, map=f"0:a:{audio_stream}"
    ).global_args("-nostdin", "-loglevel", "error").compile(cmd=ffmpeg_executable())
    audio = np.empty(int(expected_seconds * SAMPLE_RATE) + SAMPLE_RATE, dtype=np.float32)
    filled, carry = 0, b""
    with tempfile.TemporaryFile() as errors:  # a file, not a pipe: ffmpeg can never block on it
        process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=errors)
        try:
            while chunk := process.stdout.read(1 << 20):
                chunk, carry = carry + chunk, b""
                if len(chunk) % 2:  # a sample split across reads
                    chunk, carry = chunk[:-1], chunk[-1:]
                samples = np.frombuffer(chunk, dtype=np.int16)
                if filled + samples.size > audio.size:
                    audio = np.resize(audio, max(2 * audio.size, filled + samples.size))
                audio[filled:filled + samples.size] = samples
                filled += samples.size
        finally:
            process.stdout.close()
            returncode = process.wait()
        errors.seek(0)
        lines = [ln.strip() for ln in errors.read().decode("utf-8", "replace").splitlines() if ln.strip()]
    if returncode != 0:
        raise MediaError(path, f"audio could not be decoded ({lines[-1] if lines else 'ffmpeg failed'})")
    if filled == 0:
        raise MediaError(path, "the audio stream decodes to zero samples")
    audio = audio[:filled]
    audio /= 32768.0
    return audio


def load_media(path: str | Path, audio_stream: int | None = None) -> tuple[MediaInfo, np.ndarray]:
    """Probe, pick the audio stream, extract it, and hash the file: all a pipeline needs of the input."""
    info = probe(path)
    info.audio_stream = choose_audio_stream(info, audio_stream)
    audio = extract_audio(path, info.audio_stream, info.duration)
    info.sha256 = file_sha256(path)
    if not info.duration:
        info.duration = audio.size / SAMPLE_RATE
    return info, audio
