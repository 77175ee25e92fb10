"""The video with its subtitles inside: `<stem>.subtitled.mkv` (`--formats mkv`).

The source's video, audio and subtitle streams are copied as they are (no re-encoding, so it
takes seconds even for an hour of video) into Matroska, with two subtitle tracks added: the
original text and the translation, each tagged with its ISO 639-2 language and a title, as
players list them. The cues are those of the SRT writer.

Matroska rather than MP4: it holds SRT text as is, any codec the source had, and language
tags that every player reads; MP4 would need the text converted to mov_text.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path
from typing import IO

from .language_codes import MULTIPLE, UNDETERMINED, iso639_2b, language_name
from .transcript import Transcript
from .utils import NAME_MAX, fit_name, temp_path
from .writers import ResultWriter, SrtWriter

MAJORITY_SHARE = 0.8  # of the speech: below it, the original track is tagged "mul" (multiple languages)
# Subtitle codecs Matroska cannot hold, converted to SRT; every other stream is copied.
_CONVERT_TO_SRT = frozenset({"mov_text"})


class MuxError(OSError):
    """The subtitled video could not be written; the message names the media and the reason."""


def track_language(transcript: Transcript) -> str:
    """ISO 639-2 of the original text: its language, or "mul" when no language has MAJORITY_SHARE of the speech."""
    seconds = transcript.detected_languages
    total = sum(seconds.values())
    if not total:
        return UNDETERMINED
    code, top = next(iter(seconds.items()))
    return iso639_2b(code) if top / total >= MAJORITY_SHARE else MULTIPLE


def _original_title(transcript: Transcript) -> str:
    names = [language_name(code) for code in transcript.detected_languages]
    return f"Original ({', '.join(names)})" if names else "Original"


class SubtitledVideoWriter(ResultWriter):
    extension = "subtitled.mkv"

    def write(self, transcript: Transcript, path: str | Path) -> Path:
        from .media import MediaError, ffmpeg_executable, probe

        path = Path(path)
        if len(os.fsencode(path.name)) > NAME_MAX:  # a stem that fits the other outputs' shorter extensions
            cut = fit_name(path.name[:-len(self.extension) - 1], NAME_MAX - len(self.extension) - 1)
            path = path.with_name(f"{cut}.{self.extension}")
        media = Path(transcript.media.path)
        try:
            streams = probe(media).streams
        except MediaError as e:
            raise MuxError(f"{media}: cannot write {path.name}: {e.reason}") from e
        existing = [s for s in streams if s.codec_type == "subtitle"]
        has_translation = any(seg.translation.get(self.target, "").strip() for seg in transcript.segments)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = temp_path(path)  # the batch's cleanup knows these names
        with tempfile.TemporaryDirectory(prefix="toolkit-mux-") as work:
            tracks = [(SrtWriter(subtitles="original", target=self.target), track_language(transcript),
                       _original_title(transcript))]
            if has_translation:
                tracks.append((SrtWriter(subtitles="translation", target=self.target), iso639_2b(self.target),
                               f"{language_name(self.target)} (translation)"))
            cmd = [ffmpeg_executable(), "-nostdin", "-y", "-loglevel", "error", "-i", "file:" + os.path.abspath(media)]
            for i, (writer, _, _) in enumerate(tracks):
                srt = writer.write(transcript, Path(work) / f"track{i}.srt")
                cmd += ["-f", "srt", "-i", "file:" + str(srt)]
            # Data streams (e.g. MP4 timecodes) have no place in Matroska; everything else is kept.
            cmd += ["-map", "0:v?", "-map", "0:a?", "-map", "0:s?", "-map", "0:t?"]
            cmd += [arg for i in range(len(tracks)) for arg in ("-map", f"{i + 1}:0")]
            cmd += ["-c", "copy"]
            for i, stream in enumerate(existing):
                if stream.codec_name in _CONVERT_TO_SRT:
                    cmd += [f"-c:s:{i}", "srt"]
            for k, (_, language, title) in enumerate(tracks):
                n = len(existing) + k
                cmd += [f"-metadata:s:s:{n}", f"language={language}", f"-metadata:s:s:{n}", f"title={title}",
                        f"-disposition:s:{n}", "default" if k == len(tracks) - 1 else "0"]
            cmd += ["-f", "matroska", "file:" + str(tmp)]
            try:
                done = subprocess.run(cmd, capture_output=True, text=True, errors="replace")
                if done.returncode != 0:
                    reason = (done.stderr.strip().splitlines() or ["ffmpeg failed"])[-1]
                    raise MuxError(f"{media}: cannot write {path.name}: {reason}")
                os.replace(tmp, path)
            finally:
                tmp.unlink(missing_ok=True)
        return path

    def write_result(self, transcript: Transcript, file: IO[str], path: Path) -> None:
        raise TypeError("a subtitled video is written by write(), not into a text file")
