"""One input's work in a batch, whichever engine runs it: the `Job`, its `FileResult`, and
turning a transcript into outputs (the JSON last) and a result.

The engines (`engines.py` on this machine, `ray_engine.py` on a cluster) share these; the
batch (`batch.py`) plans jobs and records results. Nothing heavy is imported at the top.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .pipeline import PipelineOptions
    from .progress import ProgressHook
    from .transcript import Transcript

# (input path, stage, done, total): a file's progress inside a batch, as the pipeline's own hook
# says it (progress.py: seconds of media). Once, before any file: ("", "batch", 0, n_files).
BatchProgress = Callable[[str, str, float, float], None]

# Write errors that are OUTDIR's, not the file's: the next file would fail the same way.
OUTDIR_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM})


@dataclass
class Job:
    """One input that needs work: where its outputs go and what identifies its content."""

    path: Path
    stem: str  # outputs are OUTDIR/STEM.EXT
    sha256: str | None = None
    stamp: dict[str, int] = field(default_factory=dict)  # size, mtime, ctime, inode when hashed (manifest.py)


@dataclass
class FileResult:
    path: str
    status: str  # "done" | "skipped" | "failed"
    error: str | None = None
    outputs: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    sha256: str | None = None
    fingerprint: str | None = None
    stem: str | None = None  # outputs are OUTDIR/STEM.EXT
    warnings: list[str] = field(default_factory=list)  # one line each, naming the file (damaged audio)
    outdir_failed: bool = False  # the failure was OUTDIR's (full, read-only): the batch stops after it

    def to_record(self, output_dir: str | Path) -> dict[str, Any]:
        """The manifest line; outputs relative to OUTDIR, so the folder can be moved as a whole."""
        outputs = [os.path.relpath(o, output_dir) for o in self.outputs]
        record = {"path": self.path, "sha256": self.sha256, "status": self.status, "error": self.error,
                  "outputs": outputs, "timings": {k: round(v, 3) for k, v in self.timings.items()},
                  "fingerprint": self.fingerprint, "stem": self.stem}
        if self.warnings:
            record["warnings"] = list(self.warnings)
        return record


def failure_message(path: str | Path, error: BaseException) -> str:
    """One line naming the file: a MediaError already does; anything else gets the file and the type."""
    from .media import MediaError

    if isinstance(error, MediaError):
        return str(error)
    if isinstance(error, OSError) and error.strerror:  # writing: the file name would be a temporary one
        return f"{path}: cannot write outputs: {error.strerror}"
    first = (str(error).strip().splitlines() or [""])[0]
    return f"{path}: {type(error).__name__}: {first}"


def write_transcript(transcript: Transcript, output_dir: str | Path, stem: str, formats: Iterable[str],
                     **writer_options: Any) -> list[Path]:
    """All of a file's outputs, the JSON last: its presence means the others are complete.

    If one cannot be written (a full disk), those already written in this call are removed, so a
    failed file leaves no outputs, only its manifest line.
    """
    from .writers import write_outputs

    ordered = [f for f in formats if f != "json"] + (["json"] if "json" in formats else [])
    written: list[Path] = []
    try:
        for fmt in ordered:
            written += write_outputs(transcript, output_dir, stem, [fmt], **writer_options)
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    return written


def finish(path: str | Path, stem: str, transcript: Transcript, output_dir: str | Path, formats: list[str],
           writer_options: dict[str, Any]) -> FileResult:
    """Write a transcribed file's outputs; the result says done, or why not. A file whose translator
    failed keeps its outputs (the segments say `[translation failed]`) but counts as failed, so the
    next run translates it again."""
    from .media import describe_damage
    from .pipeline import translation_failure

    warnings = [f"{path}: {describe_damage(transcript.media.damage)}"] if transcript.media.damage else []
    try:
        written = write_transcript(transcript, output_dir, stem, formats, **writer_options)
    except OSError as e:  # a full disk or a read-only folder fails this file (and stops the batch)
        return FileResult(str(path), "failed", failure_message(path, e), stem=stem, warnings=warnings,
                          outdir_failed=e.errno in OUTDIR_ERRNOS)
    failure = translation_failure(transcript)
    return FileResult(str(path), "failed" if failure else "done", f"{path}: {failure}" if failure else None,
                      [str(p) for p in written], dict(transcript.timings), stem=stem, warnings=warnings)


def process_file(path: str | Path, output_dir: str | Path, options: PipelineOptions, formats: Iterable[str],
                 progress: ProgressHook | None = None, stem: str | None = None, **writer_options: Any) -> FileResult:
    """Transcribe one file and write its outputs; failures come back as a result, not an exception."""
    from .pipeline import transcribe

    started = time.perf_counter()
    stem = stem or Path(path).stem
    try:
        transcript = transcribe(path, options, progress=progress)
    except Exception as e:  # a model or decoding failure on one file must not stop a batch
        return FileResult(str(path), "failed", failure_message(path, e), stem=stem)
    transcript.timings["total"] = time.perf_counter() - started
    return finish(path, stem, transcript, output_dir, list(formats), writer_options)
