"""Output formats: one writer class per format, each a view of one `Transcript`.

`get_writer(fmt)` is the single entry point. Every writer goes through a temporary file
and a rename, so an interrupted run never leaves a half-written output.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, ClassVar

from .transcript import Segment, Transcript
from .utils import atomic_open

# auto: each format's own default (`ResultWriter.auto_mode`): subtitles the original, TXT/TSV both.
SUBTITLE_MODES = ("auto", "original", "translation", "both")
UNRELIABLE_MARK = "[?]"  # before a translation not to be trusted, in every text format
FAILED_TRANSLATION = "[translation failed]"
NO_TRANSLATION = "[no translation]"  # the model gave nothing (dropped as a loop, or empty)
NOT_TRANSLATED = "[not translated]"  # translation was not asked for
UNRELIABLE_CONFIDENCE = 0.5  # translate.UNRELIABLE: a translation_confidence below it is not to be trusted


def translation_flags(seg: Segment) -> list[str]:
    """The segment's translation flags, short: ["unreliable", "negation"] for translation_unreliable, ..."""
    return [f.removeprefix("translation_") for f in seg.flags if f.startswith("translation_")]


def shown_translation(seg: Segment, target: str) -> str:
    """The translation as a reader sees it: marked `[?]` when flagged, never the original in its place."""
    if seg.language == target:
        return seg.translation.get(target, "").strip() or seg.text.strip()
    if target not in seg.translation:
        return NOT_TRANSLATED
    if "translation_failed" in seg.flags:
        return FAILED_TRANSLATION
    text = seg.translation[target].strip()
    confidence = seg.translation_confidence.get(target)
    flagged = bool(translation_flags(seg)) or (confidence is not None and confidence < UNRELIABLE_CONFIDENCE)
    body = text or NO_TRANSLATION
    return f"{UNRELIABLE_MARK} {body}" if flagged or not text else body


def format_timestamp(seconds: float, decimal_marker: str = ".", always_hours: bool = True) -> str:
    millis = max(0, round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    head = f"{hours:02d}:" if always_hours or hours else ""
    return f"{head}{minutes:02d}:{secs:02d}{decimal_marker}{millis:03d}"


@dataclass
class ResultWriter:
    """Owns the path and the atomic write; subclasses implement only `write_result`."""

    extension: ClassVar[str]
    auto_mode: ClassVar[str] = "original"  # what `subtitles="auto"` means for this format
    subtitles: str = "auto"  # auto | original | translation | both: which text cue-like formats show
    target: str = "en"  # translation language shown when `subtitles` asks for it

    def __post_init__(self) -> None:
        if self.subtitles not in SUBTITLE_MODES:
            raise ValueError(f"subtitles must be one of {', '.join(SUBTITLE_MODES)}, not {self.subtitles!r}")

    def write(self, transcript: Transcript, path: str | Path) -> Path:
        path = Path(path)
        with atomic_open(path) as f:
            self.write_result(transcript, f, path)
        return path

    def write_result(self, transcript: Transcript, file: IO[str], path: Path) -> None:
        raise NotImplementedError

    def mode(self, transcript: Transcript) -> str:
        """The subtitle mode in force; auto shows a translation only where the transcript has one."""
        if self.subtitles != "auto":
            return self.subtitles
        translated = any(self.target in s.translation for s in transcript.segments)
        return self.auto_mode if translated else "original"

    def segment_text(self, seg: Segment, mode: str | None = None) -> str:
        """The text a line or cue shows for `seg`, by the `subtitles` mode. A translation that is
        flagged, empty or failed is shown as such (`shown_translation`), never replaced by the original."""
        mode = mode or (self.auto_mode if self.subtitles == "auto" else self.subtitles)
        original = seg.text.strip()
        if mode == "original":
            return original
        translated = shown_translation(seg, self.target)
        if mode == "translation" or translated == original:
            return translated
        return f"{original}\n{translated}"


class JsonWriter(ResultWriter):
    extension = "json"

    def write_result(self, transcript: Transcript, file: IO[str], path: Path) -> None:
        file.write(transcript.to_json())
        file.write("\n")


def _show_speakers(transcript: Transcript) -> bool:
    return len(transcript.speakers) > 1 or bool(transcript.matches)  # a recognised voice is worth naming


@dataclass
class SubtitleWriter(ResultWriter):
    """SRT and VTT share this cue iterator and differ only in class attributes."""

    decimal_marker: ClassVar[str] = "."
    always_hours: ClassVar[bool] = True
    max_cue_s: float = 7.0  # a longer segment's original text is cut into cues at word boundaries
    max_cue_chars: int = 84  # two subtitle lines

    def cues(self, transcript: Transcript) -> Iterator[tuple[str, str, str]]:
        """(start, end, text) per cue, the speaker named when the file has several."""
        named = _show_speakers(transcript)
        mode = self.mode(transcript)
        for seg in transcript.segments:
            for start, end, text in self._segment_cues(seg, mode):
                if named:
                    text = self.speaker_label(transcript.speaker_label(seg.speaker), text)
                yield (format_timestamp(start, self.decimal_marker, self.always_hours),
                       format_timestamp(end, self.decimal_marker, self.always_hours), text)

    def _segment_cues(self, seg: Segment, mode: str) -> Iterator[tuple[float, float, str]]:
        text = self.segment_text(seg, mode)
        if not text:
            return
        long = seg.duration > self.max_cue_s or len(text) > self.max_cue_chars
        if mode != "original" or not seg.words or not long:
            yield seg.start, seg.end, text  # a translation has no word times to cut it by
            return
        cue: list = []
        for word in seg.words:
            if cue:
                length = len("".join(w.word for w in cue) + word.word)
                sentence_end = cue[-1].word.rstrip()[-1:] in ".!?;:" and word.end - cue[0].start > 2.0
                if word.end - cue[0].start > self.max_cue_s or length > self.max_cue_chars or sentence_end:
                    yield cue[0].start, cue[-1].end, "".join(w.word for w in cue).strip()
                    cue = []
            cue.append(word)
        if cue:
            yield cue[0].start, cue[-1].end, "".join(w.word for w in cue).strip()

    def speaker_label(self, speaker: str, text: str) -> str:
        return f"[{speaker}] {text}"


class SrtWriter(SubtitleWriter):
    extension = "srt"
    decimal_marker = ","

    def write_result(self, transcript: Transcript, file: IO[str], path: Path) -> None:
        for i, (start, end, text) in enumerate(self.cues(transcript), start=1):
            file.write(f"{i}\n{start} --> {end}\n{text}\n\n")


class VttWriter(SubtitleWriter):
    extension = "vtt"

    def write_result(self, transcript: Transcript, file: IO[str], path: Path) -> None:
        file.write("WEBVTT\n\n")
        for start, end, text in self.cues(transcript):
            file.write(f"{start} --> {end}\n{text}\n\n")

    def speaker_label(self, speaker: str, text: str) -> str:
        return f"<v {speaker}>{text}"  # WebVTT's own voice span


class TxtWriter(ResultWriter):
    """One line per segment; with the translation, an indented `en:` line under it, flags named at its end."""

    extension = "txt"
    auto_mode = "both"

    def write_result(self, transcript: Transcript, file: IO[str], path: Path) -> None:
        mode = self.mode(transcript)
        for seg in transcript.segments:
            stamp = f"[{format_timestamp(seg.start, always_hours=False)} - " \
                    f"{format_timestamp(seg.end, always_hours=False)}]"
            head = f"{stamp} {transcript.speaker_label(seg.speaker)} ({seg.language}):"
            flags = translation_flags(seg)
            suffix = f"  (flags: {', '.join(flags)})" if flags else ""
            if mode == "original":
                file.write(f"{head} {seg.text.strip()}\n")
            elif mode == "translation":
                file.write(f"{head} {shown_translation(seg, self.target)}{suffix}\n")
            elif seg.language == self.target:
                file.write(f"{head} {seg.text.strip()}\n")
            else:
                file.write(f"{head} {seg.text.strip()}\n    {self.target}: {shown_translation(seg, self.target)}"
                           f"{suffix}\n")


class TsvWriter(ResultWriter):
    """One row per segment; times in integer milliseconds, as openai/whisper's TSV."""

    extension = "tsv"
    auto_mode = "both"

    def write_result(self, transcript: Transcript, file: IO[str], path: Path) -> None:
        """The translation's columns: its text (a failed one says so), its confidence, its flags."""
        translated = self.mode(transcript) != "original"
        columns = ["start", "end", "speaker", "language", "text"]
        if translated:
            columns += [f"translation_{self.target}", "translation_confidence", "translation_flags"]
        file.write("\t".join(columns) + "\n")
        for seg in transcript.segments:
            row = [str(round(seg.start * 1000)), str(round(seg.end * 1000)), transcript.speaker_label(seg.speaker),
                   seg.language,
                   _tsv_cell(seg.text)]
            if translated:
                confidence = seg.translation_confidence.get(self.target)
                text = shown_translation(seg, self.target).removeprefix(UNRELIABLE_MARK).strip()
                row += [_tsv_cell(text), "" if confidence is None else f"{confidence:.2f}",
                        ",".join(translation_flags(seg))]
            file.write("\t".join(row) + "\n")


def _tsv_cell(text: str) -> str:
    return " ".join(text.split())  # tabs and newlines would break the row


class RttmWriter(ResultWriter):
    """NIST RTTM: one SPEAKER line per segment (consecutive same-speaker segments merged)."""

    extension = "rttm"

    def write_result(self, transcript: Transcript, file: IO[str], path: Path) -> None:
        uri = "_".join(Path(transcript.media.path or path.stem).stem.split()) or "media"
        turns: list[list] = []
        for seg in transcript.segments:
            if turns and turns[-1][2] == seg.speaker and seg.start - turns[-1][1] < 1e-6:
                turns[-1][1] = seg.end
            else:
                turns.append([seg.start, seg.end, seg.speaker])
        for start, end, speaker in turns:
            speaker = "_".join(transcript.speaker_label(speaker).split())  # RTTM fields are space-separated
            file.write(f"SPEAKER {uri} 1 {start:.3f} {end - start:.3f} <NA> <NA> {speaker} <NA> <NA>\n")


WRITERS: dict[str, type[ResultWriter]] = {
    cls.extension: cls for cls in (JsonWriter, SrtWriter, VttWriter, TxtWriter, TsvWriter, RttmWriter)
}
# html: the report is where flags come with their evidence, beside the media; it costs milliseconds
DEFAULT_FORMATS = ("json", "srt", "vtt", "txt", "tsv", "html")


def register_writer(cls: type[ResultWriter]) -> type[ResultWriter]:
    """Class decorator for formats defined outside this module (e.g. the HTML report)."""
    WRITERS[cls.extension] = cls
    return cls


def available_formats() -> list[str]:
    _load_optional_writers()
    return sorted(WRITERS)


def _load_optional_writers() -> None:
    try:
        from . import report  # noqa: F401  (registers "html")
    except ImportError:
        pass


def get_writer(fmt: str, **options) -> ResultWriter:
    fmt = fmt.lower().lstrip(".")
    if fmt not in WRITERS:
        _load_optional_writers()
    if fmt not in WRITERS:
        raise ValueError(f"unknown output format {fmt!r}; choose from {', '.join(available_formats())}")
    return WRITERS[fmt](**options)


def parse_formats(spec: str) -> list[str]:
    """'json,srt' -> ['json', 'srt']; 'all' -> every format; unknown names raise ValueError."""
    names = [f.strip().lower() for f in spec.split(",") if f.strip()]
    if names == ["all"]:
        return available_formats()
    for name in names:
        get_writer(name)
    return names


def write_outputs(transcript: Transcript, outdir: str | Path, stem: str, formats: list[str] | tuple[str, ...],
                  **options) -> list[Path]:
    """Write every format in `formats` as OUTDIR/STEM.EXT; returns the paths written."""
    outdir = Path(outdir)
    return [get_writer(fmt, **options).write(transcript, outdir / f"{stem}.{WRITERS[fmt].extension}")
            for fmt in formats]
