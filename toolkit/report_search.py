"""The data behind the report index's search across videos: every segment with its search keys.

The page computes a query's keys with the same rules as `toolkit search` (`search_keys.py`,
passed along as data), so a Latin query finds Cyrillic text there too, and matches words
the same way: a word whose key starts with a term's stem.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .search_keys import browser_rules, text_keys
from .transcript import Transcript


def search_data(reports: list[tuple[str, Transcript]], target: str = "en",
                language_names: dict[str, str] | None = None) -> dict[str, Any]:
    """JSON-ready: files [report URL, media name], segments [file, start, end, speaker, language,
    original, translation, original keys, translation keys], the choices for the filters, the key rules.

    Keys are aligned with the words of their text, a word's keys joined by "|", words by " " (an
    empty entry for a word without letters), so the page can mark the words that matched.
    """
    files, segments, texts = [], [], []
    speakers: set[str] = set()
    languages: set[str] = set()
    for i, (href, transcript) in enumerate(reports):
        files.append([href, Path(transcript.media.path).name or href])
        for seg in transcript.segments:
            original, translation = seg.text.strip(), seg.translation.get(target, "").strip()
            speaker = transcript.speaker_label(seg.speaker)  # a voice library's name where it recognised one
            segments.append([i, round(seg.start, 3), round(seg.end, 3), speaker, seg.language, original,
                             translation, _joined(text_keys(original, seg.language)),
                             _joined(text_keys(translation, target))])
            texts += [original, translation]
            speakers.add(speaker)
            languages.add(seg.language)
    return {"files": files, "segments": segments, "target": target,
            "speakers": sorted(speakers),
            "languages": [[code, (language_names or {}).get(code, code or "unknown")] for code in sorted(languages)],
            "rules": browser_rules(texts)}


def _joined(keys: list[tuple[str, ...]]) -> str:
    return " ".join("|".join(k) for k in keys)
