"""The index's people view: who is heard in which videos, from OUTDIR/speakers.json (`linking.py`).

Separate from `report.py` (the per-video page and the index rows): this view reads only the
collection's identities and links each appearance to its report at the speaker's first words.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .linking import SPEAKERS_NAME, read_speakers_file


@dataclass
class Appearance:
    media: str
    speaker: str
    first: float  # seconds: the speaker's first words
    seconds: float
    similarity: float | None  # mean cosine to the person's other appearances
    href: str | None  # the report at the speaker's first words


@dataclass
class Person:
    label: str  # the library's name, else PERSON_nnn
    files: int
    seconds: float
    weak: bool
    appearances: list[Appearance]


def people_view(outdir: Path, reports: dict[str, Path]) -> dict[str, Any] | None:
    """What index.html.j2's people section needs; None without a usable speakers.json.

    `reports`: report path by transcript stem, for the links.
    """
    document = read_speakers_file(outdir / SPEAKERS_NAME)
    if document is None:
        return None
    people = []
    try:
        for ident in document["identities"]:
            appearances = []
            for a in ident["appearances"]:
                report = reports.get(Path(a["file"]).stem)
                href = None
                if report:
                    href = f"{quote(os.path.relpath(report, outdir).replace(os.sep, '/'))}#t={float(a['first']):g}"
                appearances.append(Appearance(Path(a.get("media") or a["file"]).name, a["speaker"],
                                              float(a["first"]), float(a["seconds"]), a.get("similarity"), href))
            people.append(Person(ident.get("name") or ident["id"], int(ident["files"]), float(ident["seconds"]),
                                 bool(ident.get("weak")), appearances))
    except (KeyError, TypeError, ValueError):
        return None  # a hand-edited or foreign file: no people view rather than a wrong one
    return {"recurring": [p for p in people if p.files > 1], "single": [p for p in people if p.files <= 1],
            "threshold": document.get("threshold"), "floor": document.get("floor", document.get("threshold")),
            "weak_seconds": document.get("weak_seconds"), "created": str(document.get("created", ""))}
