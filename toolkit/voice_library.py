"""The voice library: named voice prints in one SQLite file the user names.

SQLite in WAL mode: readers (every `transcribe --voices` worker) never block and never see
half of a write; each change is one transaction, so a writer killed at any moment leaves
the library as it was before that change. Several samples per name are kept as added and
pooled when read (weighted by the seconds each rests on), so a sample can be audited or
removed later and pooling never loses information.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .transcript import VoicePrint
from .voices import pool

SCHEMA_VERSION = 1
_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS samples (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        encoder TEXT NOT NULL,
        embedding BLOB NOT NULL,  -- float32, little-endian, unit norm
        seconds REAL NOT NULL,    -- speech the print rests on
        source TEXT NOT NULL,     -- where it came from: clip.json#SPEAKER_01 or video.mp4@12.5-31.0
        added TEXT NOT NULL       -- ISO 8601
    )""",
    "CREATE INDEX IF NOT EXISTS samples_name ON samples (name)",
)
# Local ids and collection ids are not names: a name that looks like one would be ambiguous in every output.
_RESERVED = re.compile(r"^(SPEAKER|PERSON)_\d+$")
_BUSY_MS = 10_000  # how long a writer waits for another writer before giving up


class LibraryError(ValueError):
    """A voice library that cannot be used as asked: one line for the user."""


@dataclass(frozen=True)
class Sample:
    id: int
    name: str
    print: VoicePrint
    source: str
    added: str


@dataclass(frozen=True)
class Entry:
    """One name in the library: its samples pooled."""

    name: str
    samples: int
    seconds: float
    encoders: tuple[str, ...]


class VoiceLibrary:
    """A voice library file. Open it with `create=True` to make it; reading never creates one."""

    def __init__(self, path: str | Path, create: bool = False) -> None:
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise LibraryError(f"{self.path}: no such voice library (add a voice first: toolkit voices add)")
        if self.path.is_dir():
            raise LibraryError(f"{self.path}: is a folder, not a voice library file")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path, timeout=_BUSY_MS / 1000, isolation_level=None)
            self._db.execute(f"PRAGMA busy_timeout = {_BUSY_MS}")
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise LibraryError(f"{self.path}: made by a newer toolkit (schema {version}); upgrade to read it")
            if self._db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                self._db.execute("PRAGMA journal_mode = WAL")  # persistent: set once, by the first writer
            self._db.execute("PRAGMA synchronous = FULL")  # a committed sample survives a power cut too
            if version < SCHEMA_VERSION:
                with self._transaction() as db:  # statement by statement: executescript would commit early
                    for statement in _SCHEMA:
                        db.execute(statement)
                    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except sqlite3.DatabaseError as e:
            raise LibraryError(f"{self.path}: not a voice library ({e})") from e

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> VoiceLibrary:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        # BEGIN IMMEDIATE takes the write lock up front, so two writers queue instead of one failing halfway
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def add(self, name: str, voice: VoicePrint, source: str) -> int:
        """Store one sample of `name`; returns its id."""
        name = check_name(name)
        if voice.seconds <= 0 or not np.all(np.isfinite(voice.embedding)):
            raise LibraryError(f"{source}: no usable speech for a voice print")
        blob = np.asarray(voice.embedding, dtype="<f4").tobytes()
        with self._transaction() as db:
            cursor = db.execute("INSERT INTO samples (name, encoder, embedding, seconds, source, added) "
                                "VALUES (?, ?, ?, ?, ?, ?)",
                                (name, voice.encoder, blob, float(voice.seconds), source,
                                 datetime.now(timezone.utc).isoformat(timespec="seconds")))
            return int(cursor.lastrowid)

    def remove(self, name: str) -> int:
        """Forget `name` (every sample of it); returns how many samples went."""
        with self._transaction() as db:
            count = db.execute("DELETE FROM samples WHERE name = ?", (name,)).rowcount
        if not count:
            raise LibraryError(f"no voice named {name!r} in {self.path}")
        return count

    def rename(self, old: str, new: str) -> int:
        """Rename a voice; refuses to merge into an existing name (remove or re-add instead)."""
        new = check_name(new)
        with self._transaction() as db:
            if db.execute("SELECT 1 FROM samples WHERE name = ? LIMIT 1", (new,)).fetchone() and new != old:
                raise LibraryError(f"{new!r} is already a voice in {self.path}: pick another name")
            count = db.execute("UPDATE samples SET name = ? WHERE name = ?", (new, old)).rowcount
        if not count:
            raise LibraryError(f"no voice named {old!r} in {self.path}")
        return count

    def entries(self) -> list[Entry]:
        rows = self._db.execute("SELECT name, COUNT(*), SUM(seconds), GROUP_CONCAT(DISTINCT encoder) "
                                "FROM samples GROUP BY name ORDER BY name").fetchall()
        return [Entry(n, int(k), float(s), tuple(sorted(e.split(",")))) for n, k, s, e in rows]

    def samples(self, name: str | None = None) -> list[Sample]:
        query = "SELECT id, name, encoder, embedding, seconds, source, added FROM samples"
        rows = self._db.execute(query + (" WHERE name = ? ORDER BY id" if name else " ORDER BY id"),
                                (name,) if name else ()).fetchall()
        return [Sample(i, n, VoicePrint(np.frombuffer(b, dtype="<f4").astype(np.float32), float(s), enc), src, t)
                for i, n, enc, b, s, src, t in rows]

    def voices(self, encoder: str) -> dict[str, VoicePrint]:
        """Each name's samples made with `encoder`, pooled into one print: what speakers are matched against."""
        # one read transaction: a concurrent rename or remove is seen entirely or not at all
        self._db.execute("BEGIN")
        try:
            by_name: dict[str, list[VoicePrint]] = {}
            for sample in self.samples():
                if sample.print.encoder == encoder:
                    by_name.setdefault(sample.name, []).append(sample.print)
        finally:
            self._db.execute("COMMIT")
        return {name: pool(prints) for name, prints in sorted(by_name.items())}


def check_name(name: str) -> str:
    name = " ".join(str(name).split())
    if not name:
        raise LibraryError("a voice needs a name")
    if _RESERVED.match(name):
        raise LibraryError(f"{name!r} looks like a speaker or person id; give the voice a real name")
    return name
