"""Searching the collection index (`corpus.py`): hits ranked by bm25, in any script.

A query's words are read as search keys (`search_keys.py`); each word matches the indexed
words among its forms, and every word of the query must match in a segment. A hit carries the
spans of the matching words, for snippets, and a link that opens the report at its moment.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from .corpus import BUSY_TIMEOUT_S, INDEX_VERSION, CorpusError, corpus_path
from .search_keys import QueryTerm, query_terms, text_keys, words

__all__ = ["FIELDS", "Hit", "search"]

FIELDS = ("original", "translation", "both")


@dataclass
class Hit:
    stem: str
    media: str
    start: float
    end: float
    speaker: str
    identity: str | None
    language: str
    original: str
    translation: str
    target: str | None  # the translation's language
    flags: list[str]
    marks: dict[str, list[tuple[int, int]]]  # field -> character spans of the matching words
    score: float  # SQLite's bm25: lower is better
    report: str | None  # the report's path relative to OUTDIR, where one exists
    link: str  # opens the report (else the media) at `start`

    def snippet(self, field_name: str, before: str = "[", after: str = "]", width: int = 200) -> str:
        """The field's text with its matching words marked, cut to about `width` characters around them."""
        text = self.original if field_name == "original" else self.translation
        spans = self.marks.get(field_name, [])
        begin, end = 0, len(text)
        if len(text) > width:
            first = spans[0][0] if spans else 0
            begin = max(0, min(first - width // 3, len(text) - width))
            end = begin + width
        out, at = [], begin
        for s, e in spans:
            if s < begin or e > end:
                continue
            out += [text[at:s], before, text[s:e], after]
            at = e
        out.append(text[at:end])
        return ("…" if begin else "") + "".join(out) + ("…" if end < len(text) else "")

    def to_dict(self) -> dict:
        return {"file": self.stem, "media": self.media, "start": round(self.start, 3), "end": round(self.end, 3),
                "speaker": self.speaker, "identity": self.identity, "language": self.language,
                "original": self.original, "translation": self.translation, "target": self.target,
                "flags": self.flags,
                "snippet": {f: self.snippet(f) for f in self.marks},
                "marks": {f: [list(s) for s in spans] for f, spans in self.marks.items()},
                "score": round(self.score, 6), "report": self.report, "link": self.link}



def _fts_query(db: sqlite3.Connection, terms: list[QueryTerm], field_name: str) -> str | None:
    """All terms (AND), each as the OR of the word keys it matches that the index holds (a term's forms
    run to a hundred; ranking costs per form and row); its own keys twice, to rank them first.
    None when a term matches no word at all."""
    columns = "" if field_name == "both" else "{" + field_name + "}: "
    parts = []
    for term in terms:
        forms = sorted(term.forms)
        present = {row[0] for row in db.execute(
            f"SELECT term FROM segment_vocabulary WHERE term IN ({', '.join('?' * len(forms))})", forms)}
        if not present:
            return None
        tokens = sorted(present) + [k for k in term.keys if k in present]
        parts.append(f"{columns}(" + " OR ".join(f'"{t}"' for t in tokens) + ")")  # keys are [a-z0-9]: safe
    return " AND ".join(parts)


def _marks(text: str, language: str, terms: list[QueryTerm]) -> list[tuple[int, int]]:
    return [(s, e) for (s, e, _), keys in zip(words(text), text_keys(text, language), strict=True)
            if any(t.matches(keys) for t in terms)]


def _link(outdir: Path, stem: str, media: str, start: float) -> tuple[str | None, str]:
    report = outdir / f"{stem}.html"
    fragment = f"#t={start:.3f}"  # the segment's start to the millisecond, as the JSON has it
    if report.is_file():
        return report.name, report.resolve().as_uri() + fragment
    media_path = Path(media) if Path(media).is_absolute() else (outdir / media)
    return None, media_path.resolve().as_uri() + fragment  # browsers play a media fragment from there


def search(outdir: str | Path, query: str, *, speaker: str | None = None, language: str | None = None,
           field_name: str = "both", limit: int | None = 20) -> list[Hit]:
    """Segments of the collection in OUTDIR matching every word of `query`, best first.

    `speaker` matches a speaker label or a collection identity; `language` a segment's
    language code; `field_name` is original, translation or both. Reads the index as it is:
    `update_index` first to include transcripts written since.
    """
    if field_name not in FIELDS:
        raise ValueError(f"field must be one of {', '.join(FIELDS)}, not {field_name!r}")
    outdir = Path(outdir)
    path = corpus_path(outdir)
    if not path.is_file():
        raise CorpusError(f"no search index in {outdir}: run `toolkit index {outdir}`")
    terms = query_terms(query)
    if not terms:
        return []
    columns = ("f.stem, f.media_path, s.start, s.end, s.speaker, s.identity, s.language, s.original, "
               "s.translation, f.target, s.flags")
    params: list = []
    filters = ""
    if speaker:
        filters += " AND (s.speaker = ? OR s.identity = ? COLLATE NOCASE)"
        params += [speaker, speaker]
    if language:
        filters += " AND s.language = ?"
        params.append(language)
    limit_sql = " LIMIT ?" if limit else ""
    if filters:
        sql = (f"SELECT {columns}, k.rank FROM segment_keys k JOIN segments s ON s.id = k.rowid "
               f"JOIN files f ON f.id = s.file_id WHERE segment_keys MATCH ?{filters} ORDER BY k.rank{limit_sql}")
    else:  # rank the index alone, then join only the hits kept: a common word matches thousands of rows
        sql = (f"SELECT {columns}, k.score FROM (SELECT rowid AS id, rank AS score FROM segment_keys "
               f"WHERE segment_keys MATCH ? ORDER BY rank{limit_sql}) k JOIN segments s ON s.id = k.id "
               f"JOIN files f ON f.id = s.file_id ORDER BY k.score, f.stem, s.start")
    if limit:
        params.append(int(limit))
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S)
        try:
            if db.execute("PRAGMA user_version").fetchone()[0] != INDEX_VERSION:
                raise CorpusError(f"{path} was built by another version: run `toolkit index {outdir}`")
            match = _fts_query(db, terms, field_name)
            rows = db.execute(sql, [match, *params]).fetchall() if match else []
        finally:
            db.close()
    except sqlite3.Error as e:
        raise CorpusError(f"{path}: cannot search the index: {e}") from e
    hits = []
    fields = ("original", "translation") if field_name == "both" else (field_name,)
    for stem, media, start, end, spk, identity, lang, original, translation, target, flags, score in rows:
        marks = {f: m for f in fields
                 if (m := _marks(*((original, lang) if f == "original" else (translation, target or "")), terms))}
        report, link = _link(outdir, stem, media, start)
        hits.append(Hit(stem, media, start, end, spk, identity, lang, original, translation, target,
                        [f for f in flags.split(",") if f], marks, score, report, link))
    return hits
