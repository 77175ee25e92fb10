"""The `transcribe` command's view of a batch: a progress bar, one stderr line per problem, a summary.

Every line goes through `utils.printable`: a file name with a newline or an escape sequence
reaches the terminal escaped, and cannot forge a line of its own.
"""

from __future__ import annotations

import math
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from .batch import transcribe_many
from .job import FileResult
from .manifest import OutputDirBusyError, OutputDirError
from .progress import LABELS, STAGES
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
    bar = BatchBar(show_progress, expected_stages(options))
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


# Relative cost of one second of each stage on a CPU (confession_mixed, Whisper base int8: extraction and
# VAD run over the whole file, the other stages over its speech). A file's share done is the cost done
# over the cost expected, so the bar and its ETA move at an even pace from one stage to the next.
STAGE_COST = {"extract": 1.0, "vad": 1.7, "diarize": 10.0, "transcribe": 60.0, "translate": 27.0, "voices": 7.0}
SPEECH_SHARE = 0.6  # speech per second of media, assumed until the file's speech is known
REFRESH_S = 0.1
FILE_BAR = "{desc} {percentage:3.0f}% |{bar}| [{elapsed}<{remaining}]"  # desc: "NAME: STAGE DONE/TOTAL s"


def expected_stages(options: PipelineOptions) -> tuple[str, ...]:
    """The stages a file goes through with these options."""
    off = {"diarize": not options.diarize, "translate": not options.translate_to}
    return tuple(s for s in STAGES if not off.get(s))


class FileProgress:
    """One file's progress hook turned into a share of its whole work, from the stages it will run."""

    def __init__(self, stages: tuple[str, ...]):
        self.stages = stages
        self.seen: dict[str, tuple[float, float]] = {}  # stage -> (done, total)
        self.stage = ""
        self.duration = 0.0
        self.speech: float | None = None

    def update(self, stage: str, done: float, total: float) -> None:
        if stage not in STAGE_COST:
            return
        self.stage = stage
        self.seen[stage] = (done, total)
        if stage in ("extract", "vad"):
            self.duration = max(self.duration, total)
        elif stage in ("diarize", "transcribe") and total > 0:
            self.speech = total

    def share(self) -> float:
        expected = done_cost = 0.0
        order = [s for s in STAGES if s in self.stages or s in self.seen]
        last = max((order.index(s) for s in self.seen), default=-1)
        for i, stage in enumerate(order):
            if stage in self.seen:
                done, total = self.seen[stage]
            elif i < last and not (stage == "translate" and order[last] == "transcribe"):
                continue  # a stage before the current one that never reported: not run for this file
            else:
                done, total = 0.0, self._guess(stage)
            cost = STAGE_COST[stage]
            expected += total * cost
            done_cost += min(done, total) * cost
        return done_cost / expected if expected > 0 else 0.0

    def _guess(self, stage: str) -> float:
        if stage in ("extract", "vad"):
            return self.duration
        return self.speech if self.speech is not None else SPEECH_SHARE * self.duration

    def describe(self) -> str:
        if not self.stage:
            return "starting"
        done, total = self.seen[self.stage]
        return f"{LABELS[self.stage]} {done:.0f}/{total:.0f} s"


class BatchBar:
    """The CLI's progress on stderr: a bar per file in flight, over its work by stage, with the stage
    and its seconds of media done, and an ETA; above them, when the batch has several files, the
    whole batch (files done, counting the share of those in flight)."""

    def __init__(self, enabled: bool, stages: tuple[str, ...] = STAGES):
        self.enabled = enabled
        self.stages = stages
        self.whole = None
        self.files: dict[str, tuple[object, FileProgress, str]] = {}  # path -> (bar, progress, name)
        self.total = 0
        self.finished = 0
        self.last_refresh = 0.0

    def _bar(self, **kwargs):
        from tqdm import tqdm

        # smoothing 0: the ETA from the average pace, which the stage costs keep even
        return tqdm(file=sys.stderr, dynamic_ncols=True, smoothing=0, **kwargs)

    def file_progress(self, path: str, stage: str, completed: float, total: float) -> None:
        if not self.enabled:
            return
        if stage == "batch":
            self.total = int(total)
            if self.total > 1:
                self.whole = self._bar(total=self.total, unit="file", desc="toolkit", position=0,
                                       bar_format="{desc}: {n:.1f}/{total} files |{bar}| [{elapsed}<{remaining}]")
            return
        if path not in self.files:
            name = printable(Path(path).name)
            bar = self._bar(total=100, position=len(self.files) + (self.whole is not None), leave=False,
                            desc=f"{name}: starting", bar_format=FILE_BAR)
            self.files[path] = (bar, FileProgress(self.stages), name)
        bar, state, name = self.files[path]
        before = state.stage
        state.update(stage, completed, total)
        bar.n = round(100 * state.share(), 1)
        bar.set_description_str(f"{name}: {state.describe()}", refresh=False)
        now = time.monotonic()
        if stage != before or now - self.last_refresh >= REFRESH_S:
            self.last_refresh = now
            bar.refresh()
            self._refresh_whole()

    def _refresh_whole(self) -> None:
        if self.whole is not None:
            # tenths, rounded down, and a file in flight short of whole: "1.0/2" means one file is written
            in_flight = sum(min(state.share(), 0.99) for _, state, _ in self.files.values())
            self.whole.n = math.floor(10 * (self.finished + in_flight)) / 10
            self.whole.refresh()

    def file_finished(self, result: FileResult) -> None:
        if not self.enabled:
            return
        entry = self.files.pop(result.path, None)
        if entry:
            entry[0].close()
        self.finished += 1
        self._refresh_whole()

    def write(self, line: str) -> None:
        bars = [self.whole] if self.whole is not None else []
        bars += [bar for bar, _, _ in self.files.values()]
        if bars:
            bars[0].write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr)

    def close(self) -> None:
        for bar, _, _ in self.files.values():
            bar.close()
        self.files.clear()
        if self.whole is not None:
            self.whole.close()
            self.whole = None
