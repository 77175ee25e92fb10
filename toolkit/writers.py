"""Output formats: one writer class per format, each a view of one `Transcript`.

`get_writer(fmt)` is the single entry point; writers defined in other modules (the HTML
report, ELAN, the subtitled Matroska video) are imported by name when first asked for. Every
writer goes through a temporary file and a rename, so an interrupted run never leaves a
half-written output.
"""

from __future__ import annotations

import importlib
import textwrap
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


def _voice(transcript: Transcript, seg: Segment, name: str, start: float = float("-inf"),
           end: float = float("inf")) -> str:
    """`name`, with whoever talks over the segment between `start` and `end`: "SPEAKER_00 (with SPEAKER_02)"."""
    others = sorted({transcript.speaker_label(o.speaker) for o in seg.overlap if o.start < end and o.end > start})
    return f"{name} (with {', '.join(others)})" if others else name


@dataclass
class SubtitleWriter(ResultWriter):
    """SRT and VTT share this cue iterator and differ only in class attributes."""

    decimal_marker: ClassVar[str] = "."
    always_hours: ClassVar[bool] = True
    label_in_text: ClassVar[bool] = True  # the speaker label is part of the text (not markup) and takes room
    max_cue_s: float = 7.0  # a longer segment's original text is cut into cues at word boundaries
    max_line_chars: int = 42  # a readable subtitle line (broadcasters' guidelines: 37-42)
    max_lines: int = 2  # per text in a cue; "both" shows up to two lines of each

    def cues(self, transcript: Transcript) -> Iterator[tuple[str, str, str]]:
        """(start, end, text) per cue, the speaker named when the file has several, with whoever
        talks over them ("SPEAKER_00 (with SPEAKER_02)"; a label in the text names all of the
        segment's crosstalk on its first cue, a voice span each cue's own)."""
        named = _show_speakers(transcript)
        mode = self.mode(transcript)
        for seg in transcript.segments:
            name = transcript.speaker_label(seg.speaker)
            # A label shown as text counts in the line it starts; it opens the segment's first cue only.
            label = self.speaker_label(_voice(transcript, seg, name), "") if named and self.label_in_text else ""
            for start, end, text in self._segment_cues(seg, mode, label):
                if named and not self.label_in_text:
                    text = self.speaker_label(_voice(transcript, seg, name, start, end), text)
                yield (format_timestamp(start, self.decimal_marker, self.always_hours),
                       format_timestamp(end, self.decimal_marker, self.always_hours), text)

    def lines(self, text: str) -> list[str]:
        """`text` wrapped at word boundaries into lines of at most `max_line_chars` (a longer word stays whole)."""
        return textwrap.wrap(text, self.max_line_chars, break_long_words=False, break_on_hyphens=False) or [text]

    def _segment_cues(self, seg: Segment, mode: str, label: str = "") -> Iterator[tuple[float, float, str]]:
        text = self.segment_text(seg, mode)
        if not text:
            return
        long = seg.duration > self.max_cue_s or len(self.lines(label + text.split("\n")[0])) > self.max_lines
        if seg.words and long and text == seg.text.strip():  # the original alone: its words have times
            yield from self._word_cues(seg, label)
        else:  # a translation has no word times: its lines share the segment's time by length
            parts = text.split("\n")
            yield from self._text_cues(seg.start, seg.end, [self.lines(label + parts[0])]
                                       + [self.lines(part) for part in parts[1:]])

    def _word_cues(self, seg: Segment, label: str) -> Iterator[tuple[float, float, str]]:
        cue: list = []
        for word in seg.words:
            if cue:
                text = (label + "".join(w.word for w in cue).strip() + word.word).strip()
                sentence_end = cue[-1].word.rstrip()[-1:] in ".!?;:" and word.end - cue[0].start > 2.0
                if word.end - cue[0].start > self.max_cue_s or len(self.lines(text)) > self.max_lines or sentence_end:
                    yield cue[0].start, cue[-1].end, "\n".join(self.lines(label + "".join(w.word for w in cue).strip()))
                    cue, label = [], ""
            cue.append(word)
        if cue:
            yield cue[0].start, cue[-1].end, "\n".join(self.lines(label + "".join(w.word for w in cue).strip()))

    def _text_cues(self, start: float, end: float, parts: list[list[str]]) -> Iterator[tuple[float, float, str]]:
        """Each part (original, translation) cut into as many cues as the longest needs, at most `max_lines`
        lines of each per cue, in pieces of about equal length; times shared by the longest part's lengths."""
        n = max(-(-len(lines) // self.max_lines) for lines in parts)
        pieces = [self._balanced(" ".join(lines), n) for lines in parts]
        longest = max(range(len(parts)), key=lambda p: sum(map(len, parts[p])))
        weights = [len(piece) or 1 for piece in pieces[longest]]
        at, total = start, sum(weights)
        for i in range(n):
            until = end if i == n - 1 else at + (end - start) * weights[i] / total
            text = "\n".join(line for part in pieces if part[i] for line in self.lines(part[i]))
            if text:
                yield at, until, text
            at = until

    def _balanced(self, text: str, n: int) -> list[str]:
        """`text` in `n` pieces cut at the word boundaries nearest to equal lengths (fewer words: empty pieces);
        where a piece would need more than `max_lines`, whole lines are dealt out instead."""
        words = text.split()
        if n == 1 or len(words) <= 1:
            return [text] + [""] * (n - 1)
        ends = [sum(len(w) + 1 for w in words[:i + 1]) for i in range(len(words))]
        cuts = [0]
        for k in range(1, n):
            goal = k * ends[-1] / n
            cut = min(range(cuts[-1], len(words) + 1), key=lambda i: abs((ends[i - 1] if i else 0) - goal))
            cuts.append(cut)
        cuts.append(len(words))
        pieces = [" ".join(words[a:b]) for a, b in zip(cuts, cuts[1:], strict=False)]
        if all(len(self.lines(p)) <= self.max_lines for p in pieces if p):
            return pieces
        lines = self.lines(text)
        bounds = [-(-i * len(lines) // n) for i in range(n + 1)]  # ceil: earlier cues fuller
        return [" ".join(lines[bounds[i]:bounds[i + 1]]) for i in range(n)]

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
    label_in_text = False  # a <v> span: players show it apart from the line, or not at all

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
    """NIST RTTM: one SPEAKER line per speaker turn (a speaker's segments joined where they touch),
    crosstalk included: where two people talk, both have a line, so lines of two speakers overlap."""

    extension = "rttm"

    def write_result(self, transcript: Transcript, file: IO[str], path: Path) -> None:
        uri = "_".join(Path(transcript.media.path or path.stem).stem.split()) or "media"
        spans = sorted([(seg.start, seg.end, seg.speaker) for seg in transcript.segments]
                       + [(o.start, o.end, o.speaker) for seg in transcript.segments for o in seg.overlap])
        last: dict[str, list] = {}
        turns: list[list] = []
        for start, end, speaker in spans:
            turn = last.get(speaker)
            if turn and start - turn[1] < 1e-6:
                turn[1] = max(turn[1], end)
            else:
                last[speaker] = [start, end, speaker]
                turns.append(last[speaker])
        for start, end, speaker in turns:
            speaker = "_".join(transcript.speaker_label(speaker).split())  # RTTM fields are space-separated
            file.write(f"SPEAKER {uri} 1 {start:.3f} {end - start:.3f} <NA> <NA> {speaker} <NA> <NA>\n")


# Format name -> "module:Class", imported on first use: the report's Jinja2, the ELAN and
# Matroska writers load only when asked for, and this module imports none of them.
_REGISTRY: dict[str, str] = {
    "json": ".writers:JsonWriter", "srt": ".writers:SrtWriter", "vtt": ".writers:VttWriter",
    "txt": ".writers:TxtWriter", "tsv": ".writers:TsvWriter", "rttm": ".writers:RttmWriter",
    "html": ".report:HtmlWriter", "eaf": ".elan:EafWriter", "mkv": ".mux:SubtitledVideoWriter",
}
_EXTENSIONS = {"mkv": "subtitled.mkv"}  # where a format's file extension is not its name
# html: the report is where flags come with their evidence, beside the media; it costs milliseconds
DEFAULT_FORMATS = ("json", "srt", "vtt", "txt", "tsv", "html")
NOT_IN_ALL = frozenset({"mkv"})  # a copy of the media, asked for by name only


def register_writer(fmt: str, target: str) -> None:
    """Add a format defined elsewhere: `register_writer("docx", "mypackage.docx:DocxWriter")`."""
    _REGISTRY[fmt.lower()] = target


def available_formats() -> list[str]:
    return sorted(_REGISTRY)


def extension_of(fmt: str) -> str:
    """The file extension a format writes, without importing its writer."""
    return _EXTENSIONS.get(fmt, fmt)


def writer_class(fmt: str) -> type[ResultWriter]:
    fmt = fmt.lower().lstrip(".")
    if fmt not in _REGISTRY:
        raise ValueError(f"unknown output format {fmt!r}; choose from {', '.join(available_formats())}")
    module, _, name = _REGISTRY[fmt].partition(":")
    return getattr(importlib.import_module(module, __package__), name)


def get_writer(fmt: str, **options) -> ResultWriter:
    return writer_class(fmt)(**options)


def parse_formats(spec: str) -> list[str]:
    """'json,srt' -> ['json', 'srt']; 'all' -> every format but mkv; unknown names raise ValueError."""
    names = [f.strip().lower().lstrip(".") for f in spec.split(",") if f.strip()]
    if names == ["all"]:
        return [f for f in available_formats() if f not in NOT_IN_ALL]
    for name in names:
        if name not in _REGISTRY:
            raise ValueError(f"unknown output format {name!r}; choose from {', '.join(available_formats())}")
    return names


def write_outputs(transcript: Transcript, outdir: str | Path, stem: str, formats: list[str] | tuple[str, ...],
                  **options) -> list[Path]:
    """Write every format in `formats` as OUTDIR/STEM.EXT; returns the paths written."""
    outdir = Path(outdir)
    written = []
    for fmt in formats:
        writer = get_writer(fmt, **options)
        written.append(writer.write(transcript, outdir / f"{stem}.{writer.extension}"))
    return written
