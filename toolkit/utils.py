"""Small helpers shared by several stages."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, TypeVar

T = TypeVar("T")

NAME_MAX = 255  # bytes in one path component on Linux, macOS and Windows filesystems alike
# Our temporary files are `.NAME.toolkit-PID.tmp`: the tag and the pid say whose they are, so a
# cleanup removes only what a dead run of this program left, never a user's `.notes.tmp`.
_TEMP_RE = re.compile(r"^\..+\.toolkit-(\d+)\.tmp$", re.DOTALL)


class ToolkitWarning(UserWarning):
    """Something a caller should see that is not a failure: a skipped manifest line, a folder
    without media, a transcript left out of the index. The CLI prints each as one line."""


def fit_name(name: str, limit: int = NAME_MAX) -> str:
    """`name` if its UTF-8 form fits in `limit` bytes, else its head plus `-` and a short hash of
    the whole name: distinct long names stay distinct, and nothing is cut inside a character."""
    if len(os.fsencode(name)) <= limit:
        return name
    digest = hashlib.sha256(os.fsencode(name)).hexdigest()[:8]
    head = name
    while head and len(os.fsencode(head)) > limit - len(digest) - 1:
        head = head[:-1]
    return f"{head}-{digest}"


def temp_path(path: Path) -> Path:
    """Where `atomic_open` writes before the rename: beside `path`, hidden, with our tag and pid,
    and short enough wherever `path` itself fits."""
    suffix = f".toolkit-{os.getpid()}.tmp"
    return path.with_name("." + fit_name(path.name, NAME_MAX - 1 - len(suffix)) + suffix)


def temp_file_owner(name: str) -> int | None:
    """The pid in one of our temporary file names, or None when `name` is not one of ours."""
    match = _TEMP_RE.match(name)
    return int(match.group(1)) if match else None


@contextmanager
def atomic_open(path: str | Path, mode: str = "w", fsync: bool = False) -> Iterator[IO[Any]]:
    """Write to a temporary file beside `path` (`temp_path`), then rename it over `path`.

    A reader, or a run killed halfway, sees the old file or the new one, never half of one; the
    batch removes the temporary files of dead processes at its next start.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    # A file name with bytes that are not UTF-8 reaches the outputs as lone surrogates: written as
    # \\udcXX escapes (JSON reads them back as the same name) rather than failing the file.
    text = {} if "b" in mode else {"encoding": "utf-8", "newline": "\n", "errors": "backslashreplace"}
    try:
        with open(tmp, mode, **text) as f:
            yield f
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


# C0 and C1 controls, DEL, line/paragraph separators, bidirectional overrides (which can make a
# name read backwards), and the lone surrogates that stand for undecodable bytes in a file name.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(char: str) -> str:
    code = ord(char)
    if char in _NAMED:
        return _NAMED[char]
    if 0xDC80 <= code <= 0xDCFF:  # surrogateescape: the original byte
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """`text` safe for one terminal line: control characters escaped as `\\n`, `\\x1b`, ...
    A file name with a newline cannot then forge a second line (a fake summary, say)."""
    return _UNPRINTABLE.sub(lambda m: _escape(m.group()), text)


def chunks(items: Sequence[T], size: int) -> list[Sequence[T]]:
    """`items` in consecutive runs of at most `size` (a batch)."""
    return [items[i:i + size] for i in range(0, len(items), size)]
