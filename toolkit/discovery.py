"""Which files a batch works on: files named explicitly, and the media found under named folders.

A named file is always attempted, whatever it is, so that a missing file, a FIFO or a
symlink loop is reported by name (`media.check_input` says which). Inside folders, regular
files with a media extension are taken, and other files when ffmpeg reads them as media;
hidden files and folders are skipped, and a folder reached twice (a symlink loop) is walked once.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path

from .utils import ToolkitWarning

# Extensions that are always attempted (and reported when broken); other files in a
# folder are taken only when ffmpeg can read them as media.
MEDIA_EXTENSIONS = frozenset(
    "mp4 mkv webm avi mov ts m2ts mts flv wmv mpg mpeg 3gp m4v ogv "
    "wav mp3 m4a aac flac ogg oga opus wma amr aiff aif".split())
SKIPPED_EXTENSIONS = frozenset("json jsonl srt vtt txt tsv rttm html md py csv log tmp lock".split())


def _is_media_by_content(path: Path) -> bool:
    from .media import MediaError, probe

    try:
        info = probe(path)
    except MediaError:
        return False
    return any(s.codec_type == "audio" for s in info.streams)  # not thumbnails, whose one stream is "video"


def _extension(path: Path) -> str:
    return path.suffix.lower().lstrip(".")


def _walk(folder: Path) -> tuple[list[Path], int]:
    """The media under `folder`, sorted, and how many other files were passed over."""
    found: list[Path] = []
    passed_over = 0
    walked: set[tuple[int, int]] = set()
    for root, dirs, files in os.walk(folder, followlinks=True):
        try:
            st = os.stat(root)
        except OSError:
            dirs[:] = []
            continue
        if (st.st_dev, st.st_ino) in walked:  # a symlink back up the tree
            dirs[:] = []
            continue
        walked.add((st.st_dev, st.st_ino))
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            if name.startswith("."):
                continue
            child = Path(root) / name
            ext = _extension(child)
            if ext in MEDIA_EXTENSIONS:
                found.append(child)  # even a broken link or a FIFO: it is reported, not passed over
            elif child.is_file() and ext not in SKIPPED_EXTENSIONS and _is_media_by_content(child):
                found.append(child)
            else:
                passed_over += 1
    return sorted(found), passed_over


def iter_inputs(inputs: Iterable[str | Path]) -> Iterator[Path]:
    """Files named explicitly, and the media files found under named folders, in a stable order.

    A named folder without any media gets a `ToolkitWarning` that says so.
    """
    seen: set[str] = set()
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            children, passed_over = _walk(path)
            if not children:
                others = f" ({passed_over} other file{'s' if passed_over != 1 else ''})" if passed_over else ""
                warnings.warn(f"{path}: no media files in this folder{others}", ToolkitWarning, stacklevel=2)
        else:
            children = [path]  # a missing or bad file is reported by the batch, with its name
        for child in children:
            key = os.path.abspath(child)
            if key not in seen:  # the same file named twice is done once
                seen.add(key)
                yield child
