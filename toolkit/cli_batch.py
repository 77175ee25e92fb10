"""The `transcribe` command's view of a batch: a progress bar, one stderr line per problem, a summary.

Every line goes through `utils.printable`: a file name with a newline or an escape sequence
reaches the terminal escaped, and cannot forge a line of its own.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from .batch import transcribe_many
from .job import FileResult
from .manifest import OutputDirBusyError, OutputDirError
from .utils import ToolkitWarning, printable

if TYPE_CHECKING:
    from .pipeline import PipelineOptions


def run_cli_batch(inputs: list[str], output_dir: str, options: PipelineOptions, formats: list[str],
                  subtitles: str = "auto", show_progress: bool = True,
                  echo: Callable[[str], None] | None = None, *, jobs: int | None = None, overwrite: bool = False,
                  engine: str = "local", ray_address: str | None = None) -> int:
    """The CLI's batch: files done/total with the current file's progress, one line per failure or
    warning, a summary, an exit code (1 if anything failed or nothing was found, 2 if OUTDIR cannot
    be used at all, 130 on Ctrl-C)."""
    bar = BatchBar(show_progress)
    write = echo or bar.write

    def say(line: str) -> None:
        write(printable(line))

    shown_elsewhere = warnings.showwarning

    def show_warning(message, category, filename, lineno, file=None, line=None) -> None:
        if issubclass(category, ToolkitWarning):
            say(f"toolkit: warning: {message}")
        else:  # another library's warning keeps Python's own form
            shown_elsewhere(message, category, filename, lineno, file, line)

    counts = {"done": 0, "skipped": 0, "failed": 0}
    finished: list[str] = []
    results = transcribe_many(inputs, output_dir, options, formats, jobs=jobs, overwrite=overwrite, engine=engine,
                              ray_address=ray_address, progress=bar.file_progress, subtitles=subtitles)
    with warnings.catch_warnings():
        warnings.simplefilter("always", ToolkitWarning)
        warnings.showwarning = show_warning
        try:
            for result in results:
                counts[result.status] += 1
                if result.status == "done":
                    finished.append(Path(result.path).name)
                bar.file_finished(result)
                if result.error:
                    say(f"toolkit: error: {result.error}")
                for warning in result.warnings:
                    say(f"toolkit: warning: {warning}")
        except KeyboardInterrupt:
            results.close()
            bar.close()
            say(f"toolkit: interrupted: {counts['done']} done, {counts['failed']} failed, {counts['skipped']} "
                "skipped before the interrupt; run the same command again to resume")
            if finished:
                say("toolkit: finished: " + ", ".join(finished))
            return 130
        except OutputDirError as e:
            bar.close()
            say(f"toolkit: error: {e}")
            if isinstance(e, OutputDirBusyError) or not sum(counts.values()):
                return 2  # nothing was tried: OUTDIR was unusable from the start
            say(f"toolkit: {counts['done']} done, {counts['failed']} failed, {counts['skipped']} skipped "
                f"(up to date) before the batch stopped, outputs in {output_dir}")
            return 1
    bar.close()
    if not sum(counts.values()):
        say("toolkit: error: no media files to transcribe in " + ", ".join(inputs))
        return 1
    say(f"toolkit: {counts['done']} done, {counts['failed']} failed, {counts['skipped']} skipped "
        f"(up to date), outputs in {output_dir}")
    return 1 if counts["failed"] else 0


class BatchBar:
    """One tqdm line: files finished out of all, with the file(s) in progress and how far each is."""

    def __init__(self, enabled: bool):
        self.enabled, self.bar = enabled, None
        self.current: dict[str, str] = {}
        self.total = 0

    def _ensure(self, total: int | None = None) -> bool:
        if self.enabled and self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="file", desc="toolkit", file=sys.stderr, dynamic_ncols=True,
                            leave=True)
        return self.bar is not None

    def file_progress(self, path: str, stage: str, completed: float, total: float) -> None:
        if stage == "batch":
            self._ensure(int(total))
            return
        if not self._ensure():
            return
        name = printable(Path(path).name)
        self.current[path] = (f"{name} {completed:.0f}/{total:.0f}s" if stage == "transcribe" else f"{name} {stage}")
        self.bar.set_postfix_str(" | ".join(self.current.values()), refresh=True)

    def file_finished(self, result: FileResult) -> None:
        if not self._ensure():
            return
        self.current.pop(result.path, None)
        self.bar.update(1)
        self.bar.set_postfix_str(" | ".join(self.current.values()), refresh=True)

    def write(self, line: str) -> None:
        if self.bar is not None:
            self.bar.write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
