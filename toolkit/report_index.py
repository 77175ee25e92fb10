"""The index over a folder of transcripts: one row per file, search across them, the people.

Built by `build_reports`, which (re)writes each transcript's report (`report.py`) and then
`index.html`; the batch and `toolkit link` rebuild the index alone.
"""

from __future__ import annotations

import json
import os
import secrets
import warnings
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .report import LANGUAGE_NAMES, HtmlWriter, _environment, _translation_state
from .report_people import people_view
from .report_search import search_data
from .transcript import Transcript, is_transcript_dict
from .utils import ToolkitWarning, atomic_open

__all__ = ["INDEX_NAME", "build_reports"]

INDEX_NAME = "index.html"


@dataclass
class _IndexRow:
    name: str
    report: str | None  # URL of the report, relative to the index; None when it failed
    media: str
    duration: float
    speakers: list[str]
    languages: list[tuple[str, float]]  # (code, share of speech)
    segments: int
    status: str
    problem: bool


def _status(transcript: Transcript, target: str, shared_notes: frozenset[str] = frozenset()) -> tuple[str, bool]:
    if not transcript.segments:
        return "no speech found", True
    parts = []
    translated = [s for s in transcript.segments if target in s.translation and s.language != target]
    flagged = sum(_translation_state(s, target)[2] for s in translated)
    failed = sum("translation_failed" in s.flags for s in translated)
    if failed:
        parts.append(f"translation failed for {failed} of {len(translated)} segments")
    if flagged - failed:
        parts.append(f"{flagged - failed} of {len(translated)} translations flagged [?]")
    notes = [n for n in transcript.notes if n not in shared_notes]  # those of every file are said once, above
    if notes:
        parts.append(f"{len(notes)} note{'s' if len(notes) > 1 else ''}")
    return ("ok", False) if not parts else (", ".join(parts), True)


def _shared_notes(transcripts: list[Transcript]) -> frozenset[str]:
    """Notes every transcript of a folder has (e.g. which translator ran): said once, not per file."""
    notes = [set(t.notes) for t in transcripts]
    return frozenset(set.intersection(*notes)) if notes else frozenset()


def _index_row(transcript: Transcript, report: Path, index_dir: Path, target: str,
               shared_notes: frozenset[str] = frozenset()) -> _IndexRow:
    langs = transcript.detected_languages
    speech = sum(langs.values()) or 1.0
    status, problem = _status(transcript, target, shared_notes)
    end = max((s.end for s in transcript.segments), default=0.0)
    return _IndexRow(name=report.stem, report=_href(report, index_dir),
                     media=Path(transcript.media.path).name or report.stem,
                     duration=max(float(transcript.media.duration or 0.0), end),
                     speakers=[transcript.speaker_label(s.id) for s in transcript.speakers],
                     languages=[(code, sec / speech) for code, sec in langs.items()],
                     segments=len(transcript.segments), status=status, problem=problem)


def _href(report: Path, index_dir: Path) -> str:
    return quote(os.path.relpath(report, index_dir).replace(os.sep, "/"))


def _render_index(rows: list[_IndexRow], title: str, notes: list[str], search: dict[str, Any],
                  people: dict[str, Any] | None = None) -> str:
    return _environment().get_template("index.html.j2").render(
        rows=rows, title=title, total=sum(r.duration for r in rows), notes=notes, search=search, people=people,
        nonce=secrets.token_urlsafe(16), generated=datetime.now().astimezone().isoformat(timespec="seconds"))


def build_reports(outdir: str | Path, target: str = "en", reports: bool = True) -> list[Path]:
    """(Re)build `<stem>.html` for every transcript `<stem>.json` in `outdir`, then `index.html`.

    JSON files that are not transcripts (manifests, truth files, configs) are skipped; a
    transcript that cannot be read gets an index row saying so instead of a report, and a
    `ToolkitWarning` naming it. Returns the reports written, in name order, followed by the
    index; nothing (and no index) when the folder holds no transcript. `reports=False` rebuilds the
    index alone, linking the reports that exist (after a batch that wrote them, or `toolkit link`).
    """
    outdir = Path(outdir)
    entries: list[_IndexRow | tuple[_IndexRow, Transcript]] = []
    written: list[Path] = []
    writer = HtmlWriter(target=target)
    for json_path in sorted(outdir.glob("*.json")):
        try:
            data = json.loads(json_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue  # not ours to judge: only transcripts are reported on
        if not is_transcript_dict(data):
            continue
        report = json_path.with_suffix(".html")
        try:
            transcript = Transcript.from_dict(data)
            row = _index_row(transcript, report, outdir, target)
            if reports:
                written.append(writer.write(transcript, report))
        except Exception as e:  # a mistyped field (a segment as a string, text as a number) fails this file only
            reason = f"unreadable transcript ({type(e).__name__}: {(str(e).splitlines() or [''])[0]})"
            warnings.warn(f"{json_path}: {reason}; no report written for it", ToolkitWarning, stacklevel=2)
            entries.append(_IndexRow(json_path.stem, None, str(data["media"].get("path", "")), 0.0, [], [], 0,
                                     reason, True))
            continue
        for seg in transcript.segments:
            seg.words = []  # the index needs none: a folder of long videos stays small in memory
        entries.append((row, transcript))
    if not entries:
        return []
    loaded = [e for e in entries if isinstance(e, tuple)]
    shared = _shared_notes([t for _, t in loaded])
    for row, transcript in loaded:  # notes every file has are said once, above the table
        row.status, row.problem = _status(transcript, target, shared)
    rows = [e if isinstance(e, _IndexRow) else e[0] for e in entries]
    search = search_data([(row.report, t) for row, t in loaded], target, LANGUAGE_NAMES)
    notes = [n for n in loaded[0][1].notes if n in shared] if loaded else []
    index = outdir / INDEX_NAME
    existing = {p.stem: p for p in written} if reports else {p.stem: p for p in outdir.glob("*.html")}
    with atomic_open(index) as f:
        f.write(_render_index(rows, outdir.resolve().name or str(outdir), notes, search,
                              people_view(outdir, existing)))
    return [*written, index]
