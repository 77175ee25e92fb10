"""The HTML report: one self-contained page per transcript (the index over a folder: `report_index.py`).

A report is a view of one `Transcript` like the other writers, but made for reading: a
player on the source media, one timeline lane per speaker, and the transcript with its
translation side by side. It works from file:// with no network: CSS and JS are inline.

Transcripts of hostile videos are hostile input, so every string reaches the page through
Jinja2's autoescape only; the report's script reads its data back from escaped `data-*`
attributes, and the index's search data is a JSON block written by Jinja2's `tojson`, which
escapes <, >, & and ' so that no text can close the block.

A report opened as `NAME.html#t=12.5` starts at that moment (the links of `toolkit search`
and of the index's search).
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

from .transcript import Segment, Transcript, VoiceMatch
from .writers import ResultWriter, translation_flags

__all__ = ["HtmlWriter", "media_sources", "media_src", "render_report", "report_context"]

LOW_WORD_PROBABILITY = 0.5  # words below this are underlined as doubtful
UNRELIABLE_TRANSLATION = 0.5  # translation_confidence below this is marked, as is the flag
UNCERTAIN_LANGUAGE = 0.5  # language_confidence below this gets a "?" on its badge
AUDIO_SUFFIXES = frozenset({".wav", ".mp3", ".m4a", ".ogg", ".oga", ".flac", ".opus", ".aac", ".wma", ".aiff"})

LANGUAGE_NAMES = {"az": "Azerbaijani", "ru": "Russian", "en": "English", "tr": "Turkish", "uk": "Ukrainian",
                  "ka": "Georgian", "hy": "Armenian", "fa": "Persian", "ar": "Arabic", "de": "German",
                  "fr": "French", "kk": "Kazakh", "uz": "Uzbek"}
# Fixed colours for the languages this toolkit is about, so that az/ru look the same in every
# report; others take the rest of the palette in order of appearance.
_KNOWN_COLOURS = {"ru": "#3f7fbf", "az": "#e07b24", "en": "#4c9a4c"}
_PALETTE = ("#b85aa8", "#c9a227", "#3aa6a0", "#d2525a", "#7d6bd1", "#8c6d46", "#5f7f8f")


@dataclass
class _Word:
    lead: str  # whitespace kept outside the mark, so underlines don't run into the gap
    text: str
    probability: float

    @property
    def low(self) -> bool:
        return self.probability < LOW_WORD_PROBABILITY


@dataclass
class _SegmentView:
    index: int
    seg: Segment
    lang_class: str
    words: list[_Word] | None  # None: show seg.text as is (no doubtful words to mark)
    translation: str
    translation_confidence: float | None
    unreliable: bool  # flagged, empty or failed: marked ⚠, with `warning` saying why
    warning: str  # the flags and their evidence, one per line ("" when not flagged)
    left: float  # timeline position, percent of the duration
    width: float


@dataclass
class _Language:
    code: str
    name: str
    css_class: str
    colour: str
    seconds: float
    share: float  # of all speech, 0..1


@dataclass
class _Lane:
    speaker: str
    seconds: float
    share: float
    segments: list[_SegmentView] = field(default_factory=list)
    label: str = ""  # what the page calls the speaker: the voice library's name, else the id
    match: str = ""  # the evidence for that name: "SPEAKER_01, voice 0.93 >= 0.90"
    crosstalk: list[tuple[float, float]] = field(default_factory=list)  # (left, width) where they talk over another


def clock(seconds: float, decimals: int = 0) -> str:
    """0:07, 1:02:03; with `decimals`, 0:07.9."""
    seconds = max(0.0, float(seconds))
    scale = 10 ** decimals
    total = round(seconds * scale)
    whole, frac = divmod(total, scale)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
    return f"{text}.{frac:0{decimals}d}" if decimals else text


def when(iso: str) -> str:
    """'2025-11-25T06:40:00+00:00' -> '2025-11-25 06:40 UTC+00:00'; anything unparsable as given."""
    try:
        moment = datetime.fromisoformat(iso)
    except (TypeError, ValueError):
        return iso
    zone = moment.strftime(" UTC%z") if moment.tzinfo else ""
    return moment.strftime("%Y-%m-%d %H:%M") + (f"{zone[:-2]}:{zone[-2:]}" if zone else "")


@lru_cache(maxsize=1)
def _environment():
    from jinja2 import Environment, FileSystemLoader, StrictUndefined  # only when a page is made

    env = Environment(loader=FileSystemLoader(Path(__file__).with_name("templates")), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["clock"] = clock
    env.filters["when"] = when
    env.filters["language_name"] = lambda code: LANGUAGE_NAMES.get(code, code or "unknown")
    env.filters["pct"] = lambda share: f"{100 * share:.0f}%"
    return env


def media_src(media_path: str, report_path: str | Path) -> str:
    """URL of the media as seen from the report: relative and percent-encoded, so names with
    spaces, quotes, '#' or non-ASCII letters still load from file:// and over HTTP."""
    if not media_path:
        return ""
    report_dir = Path(os.path.abspath(Path(report_path).parent))
    path = Path(media_path)
    if not path.is_absolute():
        # A relative path was recorded against the run's working directory; when a report is
        # rebuilt from elsewhere, the report's own folder is the next best guess.
        candidates = [Path.cwd() / path, report_dir / path, report_dir / path.name]
        path = next((c for c in candidates if c.exists()), candidates[0])
    try:
        rel = os.path.relpath(os.path.abspath(path), report_dir)
    except ValueError:  # another drive on Windows: no relative path exists
        return Path(os.path.abspath(path)).as_uri()
    return quote(rel.replace(os.sep, "/"), safe="/")


def media_sources(media_path: str, report_path: str | Path) -> list[str]:
    """Where the player looks for the media, in order: relative to the report (the folder moved
    with its media), then the absolute path it had (the report moved or was copied alone)."""
    relative = media_src(media_path, report_path)
    if not relative:
        return []
    path = Path(media_path)
    absolute = (path if path.is_absolute() else Path(os.path.abspath(path))).as_uri()
    return [relative] if absolute == relative else [relative, absolute]


def _is_audio_only(transcript: Transcript) -> bool:
    if Path(transcript.media.path).suffix.lower() in AUDIO_SUFFIXES:
        return True
    kinds = {s.codec_type for s in transcript.media.streams}
    # Cover art comes as a one-frame "video" stream in mp3/m4a; those are caught by suffix above.
    return bool(kinds) and "video" not in kinds


def _words(seg: Segment) -> list[_Word] | None:
    if not seg.words or all(w.probability >= LOW_WORD_PROBABILITY for w in seg.words):
        return None
    # Whisper's words carry their leading space; aligners' words don't and need one put back.
    spaced = any(w.word[:1].isspace() for w in seg.words[1:])
    out = []
    for i, w in enumerate(seg.words):
        core = w.word.lstrip()
        lead = w.word[: len(w.word) - len(core)] if spaced else (" " if i else "")
        out.append(_Word(lead, core, w.probability))
    return out


def _translation_state(seg: Segment, target: str) -> tuple[str, float | None, bool, str]:
    """(text, confidence, flagged, warning): an empty or failed translation of a non-empty source is
    flagged too, so that a blank cell never passes for a translation."""
    text = seg.translation.get(target, "")
    confidence = seg.translation_confidence.get(target)
    flags = translation_flags(seg)
    attempted = target in seg.translation and seg.language != target
    unreliable = attempted and (bool(flags) or not text.strip()
                                or (confidence is not None and confidence < UNRELIABLE_TRANSLATION))
    lines = [f"{flag}: {seg.evidence[f'translation_{flag}']}" if f"translation_{flag}" in seg.evidence else flag
             for flag in flags]
    if unreliable and not lines:
        lines = ["no translation" if not text.strip() else "low confidence"]
    if unreliable and confidence is not None:
        lines.insert(0, f"confidence {confidence:.2f}")
    return text, confidence, unreliable, "\n".join(lines)


def _languages(transcript: Transcript) -> list[_Language]:
    seconds = transcript.detected_languages
    total = sum(seconds.values()) or 1.0
    codes = list(seconds) + [c for c in transcript.languages if c not in seconds]
    spare = iter(c for c in _PALETTE)
    out = []
    for i, code in enumerate(codes):
        colour = _KNOWN_COLOURS.get(code) or next(spare, "#888888")
        out.append(_Language(code, LANGUAGE_NAMES.get(code, code or "unknown"), f"lang-{i}", colour,
                             seconds.get(code, 0.0), seconds.get(code, 0.0) / total))
    return out


def _ticks(duration: float) -> list[tuple[float, str]]:
    """Ruler marks at a round step giving at most ~12 labels."""
    step = next((s for s in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600) if duration / s <= 12), 7200)
    return [(100 * t / duration, clock(t)) for t in range(0, int(duration) + 1, step)]


def _match_evidence(speaker: str, match: VoiceMatch | None) -> str:
    if not match:
        return ""
    weak = ", weak: little speech" if match.weak else ""
    return f"{speaker}, voice {match.score:.2f} \u2265 {match.threshold:.2f}{weak}"


def _timings(transcript: Transcript) -> tuple[list[tuple[str, float]], float]:
    """Time per stage, and the whole run's (a batch records it as "total"; not a stage to add)."""
    stages = [(k, float(v)) for k, v in transcript.timings.items() if k != "total"]
    return stages, float(transcript.timings.get("total", sum(v for _, v in stages)))


def report_context(transcript: Transcript, path: str | Path, target: str = "en") -> dict[str, Any]:
    """Everything the report template needs; separate from rendering so tests can inspect it."""
    segments = sorted(transcript.segments, key=lambda s: s.start)
    end = max((s.end for s in segments), default=0.0)
    duration = max(float(transcript.media.duration or 0.0), end) or 1.0
    languages = _languages(transcript)
    lang_class = {lang.code: lang.css_class for lang in languages}
    speech = sum(s.duration for s in segments) or 1.0
    lanes = {sp.id: _Lane(sp.id, sp.total_speech, sp.total_speech / speech, label=transcript.speaker_label(sp.id),
                          match=_match_evidence(sp.id, sp.match)) for sp in transcript.speakers}

    views = []
    for i, seg in enumerate(segments):
        text, confidence, unreliable, warning = _translation_state(seg, target)
        left = 100 * max(0.0, seg.start) / duration
        width = max(0.25, 100 * seg.duration / duration)  # keep very short segments clickable
        view = _SegmentView(i, seg, lang_class.get(seg.language, ""), _words(seg), text, confidence, unreliable,
                            warning, round(left, 3), round(min(width, 100 - left), 3))
        views.append(view)
        lanes[seg.speaker].segments.append(view)
        for o in seg.overlap:  # lights the other speaker's lane too, even where they have no segment
            lane = lanes.setdefault(o.speaker, _Lane(o.speaker, 0.0, 0.0, label=transcript.speaker_label(o.speaker)))
            left = 100 * max(0.0, o.start) / duration
            lane.crosstalk.append((round(left, 3), round(min(max(0.25, 100 * (o.end - o.start) / duration),
                                                              100 - left), 3)))

    media_path = transcript.media.path
    stage_times, total_time = _timings(transcript)
    return {
        "t": transcript,
        "title": Path(media_path).name or "transcript",
        "media_path": media_path,
        "media_src": media_src(media_path, path),
        "media_sources": media_sources(media_path, path),
        "media_tag": "audio" if _is_audio_only(transcript) else "video",
        "duration": duration,
        "segments": views,
        "lanes": list(lanes.values()),
        "languages": languages,
        "heard": [lang for lang in languages if lang.seconds > 0],  # candidates never heard are not listed
        "has_translation": any(target in v.seg.translation for v in views),
        "target": target,
        "ticks": _ticks(duration),
        "timings": stage_times,
        "total_time": total_time,
        "flagged": sum(v.unreliable for v in views),
        "failed": sum("translation_failed" in v.seg.flags for v in views),
        "crosstalk": any(lane.crosstalk for lane in lanes.values()),
        "doubtful_words": sum(sum(w.low for w in v.words or ()) for v in views),
        "thresholds": {"word": LOW_WORD_PROBABILITY, "translation": UNRELIABLE_TRANSLATION,
                       "language": UNCERTAIN_LANGUAGE},
        # A fresh nonce per page lets only our own <script> run, even if escaping ever failed.
        "nonce": secrets.token_urlsafe(16),
        "generated": datetime.now().astimezone().isoformat(timespec="seconds"),
    }


def render_report(transcript: Transcript, path: str | Path, target: str = "en") -> str:
    """The report page for `transcript` as it will be written at `path` (media links are relative to it)."""
    return _environment().get_template("report.html.j2").render(report_context(transcript, path, target))


class HtmlWriter(ResultWriter):
    extension = "html"

    def write_result(self, transcript: Transcript, file: IO[str], path: Path) -> None:
        file.write(render_report(transcript, path, self.target))
