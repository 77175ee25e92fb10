"""The batch's state in OUTDIR: `manifest.jsonl`, the lock that keeps one run per OUTDIR, the
checks that OUTDIR can take outputs at all, and the cleanup of temporary files of dead runs.

`manifest.jsonl` has one JSON line per input (path, sha256, status, error, outputs, timings,
fingerprint, stem, and the file's size/mtime/ctime/inode when it was hashed). Lines are
appended (and fsynced) as files finish and compacted to one line per input at the end. A line
that is not a valid record (cut short by a kill, garbage, wrong types) is skipped with a
warning, and the file is rewritten without it at the run's first write.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .lifetime import pid_alive
from .utils import atomic_open, temp_file_owner, temp_path

if TYPE_CHECKING:
    from .pipeline import PipelineOptions

MANIFEST_NAME = "manifest.jsonl"
LOCK_NAME = ".toolkit.lock"
# Bump when the meaning of a fingerprint changes, so older outputs are redone once.
FINGERPRINT_VERSION = 2  # 2: the resolved translator is part of it
# PipelineOptions fields that change speed, not the transcript.
_NON_SHAPING_FIELDS = frozenset({"cpu_threads"})
MIN_FREE_BYTES = 1 << 20  # one file's outputs are 10 KB-1 MB; below this OUTDIR counts as full
# A file whose ctime lies this close before its hash was taken may have changed within the
# timestamp granularity of a coarse filesystem (FAT: 2 s) after hashing: it is hashed again.
RACY_WINDOW_NS = 2_000_000_000
STATUSES = ("done", "skipped", "failed")


class OutputDirError(Exception):
    """OUTDIR cannot take outputs (a file, read-only, full) or is in use; the message is one line."""


class OutputDirBusyError(OutputDirError):
    """Another run holds OUTDIR's lock."""


# ---------------------------------------------------------------------------- OUTDIR

def _reason(e: OSError) -> str:
    return {errno.EROFS: "is on a read-only filesystem", errno.ENOSPC: "is full (no space left on device)",
            errno.EDQUOT: "is full (disk quota exceeded)", errno.EACCES: "is not writable (permission denied)",
            errno.ENOTDIR: "is inside a file, not a folder"}.get(e.errno, f"cannot be written ({e.strerror})")


def prepare_output_dir(output_dir: str | Path) -> Path:
    """Create OUTDIR if needed and prove it takes a file and has room, before any input is decoded."""
    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise OutputDirError(f"{output_dir}: is a file, not a folder (-o needs a folder)")
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        probe = temp_path(output_dir / "write-probe")
        try:
            with open(probe, "wb") as f:
                f.write(b"ok")
                f.flush()
                os.fsync(f.fileno())
        finally:
            probe.unlink(missing_ok=True)
    except OSError as e:
        raise OutputDirError(f"{output_dir}: {_reason(e)}") from e
    free = shutil.disk_usage(output_dir).free
    if free < MIN_FREE_BYTES:
        raise OutputDirError(f"{output_dir}: is full ({free // 1024} KiB free; outputs need at least "
                             f"{MIN_FREE_BYTES // 1024} KiB)")
    return output_dir


class OutputDirLock:
    """`OUTDIR/.toolkit.lock`, held (flock) for a whole run: a second run on the same OUTDIR stops
    at once with the holder's pid, instead of redoing work and overwriting outputs. The kernel
    drops the lock when its holder dies, even by kill -9; the file is removed on release."""

    def __init__(self, output_dir: str | Path):
        self.path = Path(output_dir) / LOCK_NAME
        self.fd: int | None = None

    def acquire(self) -> None:
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 32).decode("ascii", "replace").strip() or "unknown"
                os.close(fd)
                raise OutputDirBusyError(f"another run holds {self.path.parent} (pid {holder}); wait for it to "
                                         "finish, or write to another folder") from None
            try:  # a run that just finished may have removed the file we locked: lock the new one
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)  # while still held, so no one can lock the removed file
        except OSError:
            pass
        os.close(self.fd)
        self.fd = None

    def __enter__(self) -> OutputDirLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def remove_stale_temp_files(output_dir: str | Path) -> list[Path]:
    """Delete our own `.NAME.toolkit-PID.tmp` files whose process is dead. Files of a live process,
    and anything not named by this program (a user's `.notes.tmp`), stay."""
    removed = []
    for tmp in Path(output_dir).glob(".*.tmp"):
        pid = temp_file_owner(tmp.name)
        if pid is None or pid_alive(pid):
            continue
        try:
            tmp.unlink()
            removed.append(tmp)
        except FileNotFoundError:
            pass
    return removed


# ---------------------------------------------------------------------------- the record

def writer_options_for(options: PipelineOptions, subtitles: str = "auto", **extra: Any) -> dict[str, Any]:
    """The writer options a batch uses: subtitle mode, and the translation target the writers show."""
    return {"subtitles": subtitles, "target": options.translate_to or "en", **extra}


def fingerprint(options: PipelineOptions, formats: Iterable[str], writer_options: dict[str, Any]) -> str:
    """A short hash of everything that shapes a file's outputs (not speed knobs such as threads or jobs)."""
    shaping = {k: v for k, v in asdict(options).items() if k not in _NON_SHAPING_FIELDS}
    shaping["translator_resolved"] = _resolved_translator(options)
    payload = {"v": FINGERPRINT_VERSION, "options": shaping, "formats": sorted(set(formats)),
               "writer": writer_options}
    text = json.dumps(payload, sort_keys=True, default=str, ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _resolved_translator(options: PipelineOptions) -> str | None:
    """What `--translator auto` stands for on this machine now: installing NLLB later must redo
    the files that Whisper translated. Resolving looks at the local cache only; nothing loads."""
    from .pipeline import translator_for

    try:
        translator = translator_for(options)
        return translator.name if translator else None
    except Exception:  # an unusable translator fails the files themselves, with its own message
        return options.translator


def file_stamp(st: os.stat_result) -> dict[str, int]:
    """What the skip compares before trusting a recorded hash; `hashed_ns` is when it was taken."""
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns, "inode": st.st_ino,
            "hashed_ns": time.time_ns()}


def recorded_hash(record: dict[str, Any], st: os.stat_result) -> str | None:
    """The record's sha256 if the file cannot have changed since it was hashed, else None.

    Any write changes the ctime, even one that restores the size and the mtime (`touch -r`,
    `cp --preserve`); only a change of the system clock can forge it. A ctime within the racy
    window before the hash (a write in the same timestamp tick) is not trusted either.
    """
    now = file_stamp(st)
    same = all(record.get(k) == now[k] for k in ("size", "mtime_ns", "ctime_ns", "inode"))
    hashed = record.get("hashed_ns")
    if not (same and record.get("sha256") and isinstance(hashed, int)):
        return None
    return record["sha256"] if now["ctime_ns"] < hashed - RACY_WINDOW_NS else None


_OPTIONAL_TYPES: dict[str, tuple[type, ...]] = {
    "sha256": (str,), "error": (str,), "fingerprint": (str,), "stem": (str,), "finished": (str,),
    "size": (int,), "mtime_ns": (int,), "ctime_ns": (int,), "inode": (int,), "hashed_ns": (int,)}


def _invalid(record: Any) -> str | None:
    """Why `record` is not a manifest record we can trust, or None."""
    if not isinstance(record, dict):
        return f"a JSON {type(record).__name__}, not a record"
    if not isinstance(record.get("path"), str) or not record["path"]:
        return "no path"
    if record.get("status") not in STATUSES:
        return f"unknown status {record.get('status')!r}"
    for key, types in _OPTIONAL_TYPES.items():
        value = record.get(key)
        if value is not None and (not isinstance(value, types) or isinstance(value, bool)):
            return f"{key} is {type(value).__name__}"
    for key in ("outputs", "warnings"):
        if not isinstance(record.get(key, []), list) or not all(isinstance(x, str) for x in record.get(key, [])):
            return f"{key} is not a list of names"
    timings = record.get("timings", {})
    if not isinstance(timings, dict) or not all(isinstance(v, (int, float)) for v in timings.values()):
        return "timings is not a mapping of seconds"
    stem = record.get("stem")
    if stem is not None and (not stem or "/" in stem or os.sep in stem or stem in (".", "..")):
        return f"stem {stem!r} is not a plain name"  # outputs must stay inside OUTDIR
    return None


def _line(record: dict[str, Any]) -> bytes:
    # A path with bytes that are not UTF-8 holds lone surrogates; written as \\udcXX escapes the
    # line stays UTF-8 and JSON reads the same path back.
    return json.dumps(record, ensure_ascii=False).encode("utf-8", "backslashreplace") + b"\n"


class Manifest:
    """`OUTDIR/manifest.jsonl`: appended line by line during a run, compacted to one line per input after.

    `problems` lists the lines skipped on loading (one line of text each); the first write
    rewrites the file without them.
    """

    def __init__(self, output_dir: str | Path):
        self.path = Path(output_dir) / MANIFEST_NAME
        self.records: dict[str, dict[str, Any]] = {}
        self.problems: list[str] = []
        self._load()

    def _load(self) -> None:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return
        except OSError as e:
            raise OutputDirError(f"{self.path}: cannot be read ({e.strerror})") from e
        lines = data.split(b"\n")
        for number, raw in enumerate(lines, 1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw.decode("utf-8"))
                why = _invalid(record)
            except UnicodeDecodeError:
                why = "not UTF-8 text"
            except ValueError:
                why = "cut short (a run killed while writing it)" if number == len(lines) else "not JSON"
            if why:
                self.problems.append(f"{self.path}: line {number} skipped ({why})")
            else:
                self.records[record["path"]] = record

    def append(self, record: dict[str, Any]) -> None:
        """Add one whole line and make it durable before anyone relies on it."""
        if self.problems:
            self.compact()  # the repair: rewritten from the valid records, before anything is added
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a+b") as f:
            size = f.seek(0, os.SEEK_END)
            try:
                if size:
                    f.seek(-1, os.SEEK_END)
                    if f.read(1) != b"\n":  # a previous run died mid-line; keep that fragment on its own line
                        f.write(b"\n")
                f.write(_line(record))
                f.flush()
                os.fsync(f.fileno())
            except OSError:  # a full disk: no half line left behind
                with contextlib.suppress(OSError):
                    f.truncate(size)
                raise
        self.records[record["path"]] = record

    def compact(self) -> None:
        """Rewrite as one line per input (the latest), through a temp file and a rename."""
        if not self.records and not self.problems:
            return
        with atomic_open(self.path, "wb", fsync=True) as f:
            for record in self.records.values():
                f.write(_line(record))
        self.problems = []
