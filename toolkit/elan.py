"""ELAN annotation files (.eaf, EAF 3.0): the transcript as tiers, for researchers who annotate speech.

The layout follows ELAN's own conventions for transcription with a translation:
- one time-aligned tier per speaker (its PARTICIPANT is the speaker) with the original text;
- under each, a dependent tier with the translation, of a linguistic type with the
  Symbolic_Association constraint (one annotation per parent, sharing its times), which is
  ELAN's stereotype for a free translation;
- languages as EAF 3.0 has them: LANGUAGE elements with ISO 639-3 ids, referenced by LANG_REF
  on each tier (its speaker's main language) and on each annotation (the segment's own). A
  speaker who switches from Azerbaijani to Russian stays on one tier in time order; tiers per
  language would scatter one person's turns;
- the media in a MEDIA_DESCRIPTOR: MEDIA_URL (absolute file URL) and RELATIVE_MEDIA_URL (from
  the .eaf), so ELAN finds it whether the folder moved with its media or not.

Written with the standard library's ElementTree rather than pympi-ling, which writes EAF 2.8
and keeps no language on annotations; the tests read the files back with pympi-ling.
"""

from __future__ import annotations

import mimetypes
import os
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from pathlib import Path
from typing import IO
from urllib.parse import quote

from .language_codes import iso639_3, language_name
from .transcript import Transcript
from .writers import ResultWriter

EAF_VERSION = "3.0"
EAF_SCHEMA = "http://www.mpi.nl/tools/elan/EAFv3.0.xsd"
TRANSCRIPTION_TYPE = "transcription"
TRANSLATION_TYPE = "translation"
# The four constraints ELAN declares in every file it writes, with its own descriptions.
_CONSTRAINTS = (
    ("Time_Subdivision", "Time subdivision of parent annotation's time interval, no time gaps allowed within "
                         "this interval"),
    ("Symbolic_Subdivision", "Symbolic subdivision of a parent annotation. Annotations refering to the same parent "
                             "are ordered"),
    ("Symbolic_Association", "1-1 association with a parent annotation"),
    ("Included_In", "Time alignable annotations within the parent annotation's time interval, gaps are allowed"),
)
# ELAN's names for the media types it plays; others as the platform knows them.
_MIME_TYPES = {".wav": "audio/x-wav", ".mpg": "video/mpeg", ".mpeg": "video/mpeg", ".mp4": "video/mp4",
               ".mov": "video/quicktime"}


def _media_descriptor(media_path: str, eaf_path: Path) -> dict[str, str] | None:
    if not media_path:
        return None
    media = Path(os.path.abspath(media_path))
    mime = _MIME_TYPES.get(media.suffix.lower()) or mimetypes.guess_type(media.name)[0] or "unknown"
    attrs = {"MEDIA_URL": media.as_uri(), "MIME_TYPE": mime}
    try:
        rel = os.path.relpath(media, Path(os.path.abspath(eaf_path)).parent).replace(os.sep, "/")
        attrs["RELATIVE_MEDIA_URL"] = quote(rel if rel.startswith("../") else f"./{rel}", safe="/.")
    except ValueError:  # another drive on Windows
        pass
    return attrs


def _tier_language(seconds: dict[str, float]) -> str:
    return max(seconds, key=seconds.get)


class EafWriter(ResultWriter):
    extension = "eaf"

    def write_result(self, transcript: Transcript, file: IO[str], path: Path) -> None:
        root = self.document(transcript, path)
        ET.indent(root)
        file.write('<?xml version="1.0" encoding="UTF-8"?>\n')
        file.write(ET.tostring(root, encoding="unicode"))
        file.write("\n")

    def document(self, transcript: Transcript, path: Path) -> ET.Element:
        created = transcript.created or datetime.now(timezone.utc).isoformat(timespec="seconds")
        root = ET.Element("ANNOTATION_DOCUMENT", {
            "AUTHOR": "", "DATE": created, "FORMAT": EAF_VERSION, "VERSION": EAF_VERSION,
            "xmlns:xsi": "http://www.w3.org/2001/XMLSchema-instance",
            "xsi:noNamespaceSchemaLocation": EAF_SCHEMA})
        header = ET.SubElement(root, "HEADER", {"MEDIA_FILE": "", "TIME_UNITS": "milliseconds"})
        descriptor = _media_descriptor(transcript.media.path, path)
        if descriptor:
            ET.SubElement(header, "MEDIA_DESCRIPTOR", descriptor)
        last_id = ET.SubElement(header, "PROPERTY", {"NAME": "lastUsedAnnotationId"})
        time_order = ET.SubElement(root, "TIME_ORDER")

        by_speaker: dict[str, list] = {}
        for seg in sorted(transcript.segments, key=lambda s: s.start):
            by_speaker.setdefault(seg.speaker, []).append(seg)
        languages: dict[str, None] = {}  # ISO 639-3, in order of use
        slot_times: list[int] = []  # ms per slot, numbered below in time order as ELAN writes them
        aligned: list[tuple[ET.Element, int, int]] = []
        annotations = 0
        translated = False
        for speaker, segments in by_speaker.items():
            seconds: dict[str, float] = {}
            for seg in segments:
                seconds[seg.language] = seconds.get(seg.language, 0.0) + seg.duration
            tier_lang = iso639_3(_tier_language(seconds))
            languages[tier_lang] = None
            tier = ET.SubElement(root, "TIER", {"LINGUISTIC_TYPE_REF": TRANSCRIPTION_TYPE, "PARTICIPANT": speaker,
                                                "TIER_ID": speaker, "LANG_REF": tier_lang})
            pairs = []
            previous_end = 0
            for seg in segments:
                # One tier cannot hold overlapping annotations: a speaker overlapping themself is cut.
                start = max(round(seg.start * 1000), previous_end)
                end = max(round(seg.end * 1000), start + 1)
                previous_end = end
                slot_times += [start, end]
                annotations += 1
                lang = iso639_3(seg.language)
                languages[lang] = None
                alignable = ET.SubElement(ET.SubElement(tier, "ANNOTATION"), "ALIGNABLE_ANNOTATION", {
                    "ANNOTATION_ID": f"a{annotations}", "TIME_SLOT_REF1": "", "TIME_SLOT_REF2": "", "LANG_REF": lang})
                aligned.append((alignable, len(slot_times) - 2, len(slot_times) - 1))
                ET.SubElement(alignable, "ANNOTATION_VALUE").text = seg.text.strip()
                pairs.append((f"a{annotations}", seg.translation.get(self.target, "").strip()))
            if any(text for _, text in pairs):
                translated = True
                target = iso639_3(self.target)
                languages[target] = None
                dependent = ET.SubElement(root, "TIER", {
                    "LINGUISTIC_TYPE_REF": TRANSLATION_TYPE, "PARENT_REF": speaker, "PARTICIPANT": speaker,
                    "TIER_ID": f"{speaker} ({self.target})", "LANG_REF": target})
                for parent, text in pairs:
                    if not text:
                        continue  # an association may be missing; an empty one would look translated
                    annotations += 1
                    ref = ET.SubElement(ET.SubElement(dependent, "ANNOTATION"), "REF_ANNOTATION", {
                        "ANNOTATION_ID": f"a{annotations}", "ANNOTATION_REF": parent, "LANG_REF": target})
                    ET.SubElement(ref, "ANNOTATION_VALUE").text = text
        last_id.text = str(annotations)
        rank = {slot: i + 1 for i, slot in enumerate(sorted(range(len(slot_times)), key=slot_times.__getitem__))}
        for slot in sorted(rank, key=rank.get):
            ET.SubElement(time_order, "TIME_SLOT", {"TIME_SLOT_ID": f"ts{rank[slot]}",
                                                    "TIME_VALUE": str(slot_times[slot])})
        for element, first, second in aligned:
            element.set("TIME_SLOT_REF1", f"ts{rank[first]}")
            element.set("TIME_SLOT_REF2", f"ts{rank[second]}")

        ET.SubElement(root, "LINGUISTIC_TYPE", {"GRAPHIC_REFERENCES": "false",
                                                "LINGUISTIC_TYPE_ID": TRANSCRIPTION_TYPE, "TIME_ALIGNABLE": "true"})
        if translated:
            ET.SubElement(root, "LINGUISTIC_TYPE", {
                "CONSTRAINTS": "Symbolic_Association", "GRAPHIC_REFERENCES": "false",
                "LINGUISTIC_TYPE_ID": TRANSLATION_TYPE, "TIME_ALIGNABLE": "false"})
        for code in languages:
            ET.SubElement(root, "LANGUAGE", {"LANG_ID": code, "LANG_LABEL": f"{language_name(code)} ({code})"})
        for stereotype, description in _CONSTRAINTS:
            ET.SubElement(root, "CONSTRAINT", {"DESCRIPTION": description, "STEREOTYPE": stereotype})
        return root
