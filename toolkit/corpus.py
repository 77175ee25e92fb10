"""The collection index: every segment of every transcript in a folder, for `search.py` to query.

`OUTDIR/corpus.sqlite` is derived from the transcripts (`OUTDIR/*.json`) and can always be
rebuilt from them (`toolkit index OUTDIR`). SQLite's FTS5 holds each segment's search keys
(`search_keys.py`: one spelling whatever the script), so "Baghdadi" finds "Багдади" and
"Bağdadi"; hits are ranked by bm25. A batch keeps the index current (`update_index`):
only transcripts whose JSON changed are read again, compared by size, mtime and SHA-256.

The database runs in WAL mode, so a search (or a report build) reading it while a batch
writes sees the last committed state, never half of an update.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .search_keys import KEY_VERSION, indexed_text, text_keys
from .transcript import Transcript, is_transcript_dict

__all__ = ["CORPUS_NAME", "CorpusError", "IndexUpdate", "corpus_path", "follow_batch", "update_index"]

CORPUS_NAME = "corpus.sqlite"
SCHEMA_VERSION = 1
INDEX_VERSION = SCHEMA_VERSION * 1000 + KEY_VERSION  # PRAGMA user_version: another value rebuilds the index
_FILES_PER_COMMIT = 100  # an interrupted first build of a large folder keeps what it committed
SPEAKERS_FILE = "speakers.json"  # linking.SPEAKERS_NAME, named here so that a search need not import linking
BUSY_TIMEOUT_S = 60.0  # another process writing (a second batch on the same folder) is waited for


_SCHEMA = """
CREATE TABLE files (
    id INTEGER PRIMARY KEY,
    stem TEXT NOT NULL UNIQUE,          -- OUTDIR/STEM.json; the report is OUTDIR/STEM.html
    json_size INTEGER NOT NULL,
    json_mtime_ns INTEGER NOT NULL,
    json_sha256 TEXT NOT NULL,
    media_path TEXT NOT NULL,
    duration REAL NOT NULL,
    target TEXT,                        -- the translation language indexed
    indexed TEXT NOT NULL
);
CREATE TABLE segments (
    id INTEGER PRIMARY KEY,             -- also the rowid of its keys in segment_keys
    file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,          -- index in the transcript's segments
    start REAL NOT NULL,
    end REAL NOT NULL,
    speaker TEXT NOT NULL,
    identity TEXT,                      -- the person across files, where speaker linking exists
    language TEXT NOT NULL,
    original TEXT NOT NULL,
    translation TEXT NOT NULL,
    flags TEXT NOT NULL                 -- comma-separated, e.g. translation_unreliable
);
CREATE INDEX segments_file ON segments(file_id, speaker);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);  -- speakers_sha256: the speakers.json the identities are from
-- detail=full: bm25 over thousands of hits ranks 2.5x faster than with detail=column (measured)
CREATE VIRTUAL TABLE segment_keys USING fts5(original, translation, tokenize='ascii');
CREATE VIRTUAL TABLE segment_vocabulary USING fts5vocab(segment_keys, 'row');  -- the keys present
"""


class CorpusError(Exception):
    """The index cannot be read or written; the message says what to do."""


@dataclass
class IndexUpdate:
    path: Path
    added: list[str] = field(default_factory=list)  # stems
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    skipped: list[str] = field(default_factory=list)  # JSON files that are not readable transcripts
    rebuilt: bool = False  # the whole index was (re)created
    segments: int = 0  # in the index after the update
    seconds: float = 0.0


def corpus_path(outdir: str | Path) -> Path:
    return Path(outdir) / CORPUS_NAME


# ---------------------------------------------------------------------------- writing


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")  # WAL: a crash may lose the last commit, never corrupt
    db.execute("PRAGMA foreign_keys=ON")
    return db


def _open_for_update(path: Path) -> tuple[sqlite3.Connection, bool]:
    """The index, created (or recreated) when missing, unreadable or of another version."""
    try:
        db = _connect(path)
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version == INDEX_VERSION:
            return db, False
        db.close()
    except sqlite3.DatabaseError:  # not a database (a crash on a non-journalled disk, a stray file)
        pass
    for stale in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        stale.unlink(missing_ok=True)  # derived data: rebuilt from the JSON below
    db = _connect(path)
    db.executescript(_SCHEMA + f"PRAGMA user_version={INDEX_VERSION};")
    return db, True


def _segment_rows(transcript: Transcript, target: str | None) -> list[tuple]:
    rows = []
    for i, seg in enumerate(transcript.segments):
        match = transcript.matches.get(seg.speaker)  # named from a voice library, until speakers.json says more
        identity = match.name if match else None
        rows.append((i, seg.start, seg.end, seg.speaker, identity, seg.language, seg.text.strip(),
                     seg.translation.get(target, "").strip() if target else "", ",".join(seg.flags)))
    return rows


def _target(transcript: Transcript, preferred: str) -> str | None:
    """The translation language to index: `preferred` where present, else the most common one."""
    counts: dict[str, int] = {}
    for seg in transcript.segments:
        for code, text in seg.translation.items():
            if text:
                counts[code] = counts.get(code, 0) + 1
    if not counts:
        return None
    return preferred if preferred in counts else max(counts, key=counts.get)


def _delete_file(db: sqlite3.Connection, file_id: int) -> None:
    db.execute("DELETE FROM segment_keys WHERE rowid IN (SELECT id FROM segments WHERE file_id = ?)", (file_id,))
    db.execute("DELETE FROM files WHERE id = ?", (file_id,))  # segments go with it (ON DELETE CASCADE)


def _index_file(db: sqlite3.Connection, stem: str, st: os.stat_result, sha: str, transcript: Transcript,
                target: str) -> None:
    target_used = _target(transcript, target)
    cur = db.execute(
        "INSERT INTO files (stem, json_size, json_mtime_ns, json_sha256, media_path, duration, target, indexed) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (stem, st.st_size, st.st_mtime_ns, sha, transcript.media.path, float(transcript.media.duration or 0.0),
         target_used, time.strftime("%Y-%m-%dT%H:%M:%S%z")))
    file_id = cur.lastrowid
    rows = _segment_rows(transcript, target_used)
    first = db.execute("SELECT coalesce(max(id), 0) + 1 FROM segments").fetchone()[0]  # ids given: one batch insert
    db.executemany("INSERT INTO segments (id, file_id, position, start, end, speaker, identity, language, original, "
                   "translation, flags) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   [(first + i, file_id, *row) for i, row in enumerate(rows)])
    db.executemany("INSERT INTO segment_keys (rowid, original, translation) VALUES (?, ?, ?)",
                   [(first + i, indexed_text(text_keys(row[6], row[5])), indexed_text(text_keys(row[7], target_used)))
                    for i, row in enumerate(rows)])


def _apply_identities(db: sqlite3.Connection, outdir: Path, changed: bool) -> None:
    """The person each speaker is across the collection, from OUTDIR/speakers.json (`toolkit link`,
    run by every batch): its name, else its PERSON_nnn. Redone when that file or the index changed."""
    path = outdir / SPEAKERS_FILE
    try:
        sha = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        sha = ""
    row = db.execute("SELECT value FROM meta WHERE key = 'speakers_sha256'").fetchone()
    if not changed and row and row[0] == sha:
        return
    from .linking import read_speakers_file  # numpy and the clustering: only when there is something to read

    document = read_speakers_file(path) if sha else None
    by_file = {stem: fid for fid, stem in db.execute("SELECT id, stem FROM files")}
    updates = []
    for person in (document or {}).get("identities", []):
        label = person.get("name") or person.get("id")
        for appearance in person.get("appearances") or []:
            file_id = by_file.get(Path(str(appearance.get("file", ""))).stem)
            if label and file_id is not None:
                updates.append((str(label), file_id, str(appearance.get("speaker", ""))))
    db.executemany("UPDATE segments SET identity = ? WHERE file_id = ? AND speaker = ?", updates)
    db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('speakers_sha256', ?)", (sha,))


def follow_batch(outdir: str | Path) -> IndexUpdate | CorpusError:
    """The update a batch makes after writing its outputs. The index is derived data: a failure
    (a read-only or full disk) is returned, never raised, so that it cannot fail the batch;
    `toolkit index OUTDIR` redoes it later."""
    try:
        return update_index(outdir)
    except CorpusError as e:
        return e


def update_index(outdir: str | Path, stems: Iterable[str] | None = None, *, rebuild: bool = False,
                 target: str = "en") -> IndexUpdate:
    """Bring `OUTDIR/corpus.sqlite` up to date with the transcripts in OUTDIR.

    Only new or changed transcripts are read; those whose JSON is gone are dropped. `stems`
    limits the work to those files (a batch that wrote them); `rebuild` starts from nothing.
    Raises CorpusError when the folder or the database cannot be written.
    """
    started = time.perf_counter()
    outdir = Path(outdir)
    path = corpus_path(outdir)
    if not outdir.is_dir():
        raise CorpusError(f"{outdir}: no such folder")
    if rebuild:
        for stale in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            stale.unlink(missing_ok=True)
    try:
        db, created = _open_for_update(path)
    except (sqlite3.Error, OSError) as e:
        raise CorpusError(f"{path}: cannot write the search index: {e}") from e
    result = IndexUpdate(path, rebuilt=created)
    try:
        known = {stem: (fid, size, mtime, sha) for fid, stem, size, mtime, sha in
                 db.execute("SELECT id, stem, json_size, json_mtime_ns, json_sha256 FROM files")}
        wanted = None if stems is None else set(stems)
        present = sorted(p for p in outdir.glob("*.json") if p.is_file() and (wanted is None or p.stem in wanted))
        pending = 0
        db.execute("BEGIN IMMEDIATE")
        for json_path in present:
            stem = json_path.stem
            try:
                st = json_path.stat()
                record = known.get(stem)
                if record and (record[1], record[2]) == (st.st_size, st.st_mtime_ns):
                    result.unchanged += 1
                    continue
                raw = json_path.read_bytes()
            except OSError:
                continue  # vanished or unreadable now: the next update sees it again
            sha = hashlib.sha256(raw).hexdigest()
            if record and record[3] == sha:  # touched, not changed
                db.execute("UPDATE files SET json_size = ?, json_mtime_ns = ? WHERE id = ?",
                           (st.st_size, st.st_mtime_ns, record[0]))
                result.unchanged += 1
                continue
            try:
                data = json.loads(raw)
                transcript = Transcript.from_dict(data) if is_transcript_dict(data) else None
            except (UnicodeDecodeError, ValueError, KeyError, TypeError):
                transcript = None
            if record:
                _delete_file(db, record[0])
            if transcript is None:  # manifests, truth files, configs, a broken transcript
                if record:
                    result.removed.append(stem)
                result.skipped.append(json_path.name)
                continue
            _index_file(db, stem, st, sha, transcript, target)
            (result.updated if record else result.added).append(stem)
            pending += 1
            if pending >= _FILES_PER_COMMIT:
                db.execute("COMMIT")
                db.execute("BEGIN IMMEDIATE")
                pending = 0
        if wanted is None:
            on_disk = {p.stem for p in present}
            for stem, (fid, *_rest) in known.items():
                if stem not in on_disk:
                    _delete_file(db, fid)
                    result.removed.append(stem)
        _apply_identities(db, outdir, changed=bool(result.added or result.updated or result.removed))
        db.execute("COMMIT")
        result.segments = db.execute("SELECT count(*) FROM segments").fetchone()[0]
    except sqlite3.Error as e:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise CorpusError(f"{path}: cannot update the search index: {e}") from e
    finally:
        db.close()
    result.seconds = time.perf_counter() - started
    return result
