"""Many inputs: walk folders, process each file, never let one bad file stop the rest."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .media import MediaError, probe
from .pipeline import PipelineOptions, ProgressHook, transcribe
from .writers import write_outputs

# Extensions that are always attempted (and reported when broken); other files in a
# folder are taken only when ffmpeg can read them as media.
MEDIA_EXTENSIONS = frozenset(
    "mp4 mkv webm avi mov ts m2ts mts flv wmv mpg mpeg 3gp m4v ogv "
    "wav mp3 m4a aac flac ogg oga opus wma amr aiff aif".split())
SKIPPED_EXTENSIONS = frozenset("json jsonl srt vtt txt tsv rttm html md py csv log".split())


@dataclass
class FileResult:
    path: str
    status: str  # "done" | "failed"
    error: str | None = None
    outputs: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


def _is_media_by_content(path: Path) -> bool:
    try:
        info = probe(path)
    except MediaError:
        return False
    return any(s.codec_type in ("audio", "video") for s in info.streams)


def iter_inputs(inputs: Iterable[str | Path]) -> Iterator[Path]:
    """Files named explicitly, and the media files found under named folders, in a stable order."""
    for item in inputs:
        path = Path(item)
        if not path.is_dir():
            yield path  # a missing or bad file is reported by the pipeline, with its name
            continue
        for child in sorted(p for p in path.rglob("*") if p.is_file()):
            if any(part.startswith(".") for part in child.relative_to(path).parts):
                continue
            ext = child.suffix.lower().lstrip(".")
            if ext in MEDIA_EXTENSIONS or (ext not in SKIPPED_EXTENSIONS and _is_media_by_content(child)):
                yield child


def process_file(path: str | Path, output_dir: str | Path, options: PipelineOptions, formats: Iterable[str],
                 progress: ProgressHook | None = None, **writer_options) -> FileResult:
    """Transcribe one file and write its outputs; failures come back as a result, not an exception."""
    started = time.perf_counter()
    try:
        transcript = transcribe(path, options, progress=progress)
    except MediaError as e:
        return FileResult(str(path), "failed", str(e))
    except Exception as e:  # a model or decoding failure on one file must not stop a batch
        return FileResult(str(path), "failed", f"{path}: {type(e).__name__}: {e}")
    stem = Path(path).stem
    written = write_outputs(transcript, output_dir, stem, list(formats), **writer_options)
    transcript.timings["total"] = time.perf_counter() - started
    return FileResult(str(path), "done", None, [str(p) for p in written], dict(transcript.timings))


def run_cli_batch(inputs: list[str], output_dir: str, options: PipelineOptions, formats: list[str],
                  subtitles: str = "original", show_progress: bool = True,
                  echo: Callable[[str], None] | None = None) -> int:
    """The CLI's batch: a progress bar over audio time, one line per failure, a summary, an exit code."""
    echo = echo or (lambda line: print(line, file=sys.stderr))
    files = list(iter_inputs(inputs))
    results: list[FileResult] = []
    for n, path in enumerate(files, start=1):
        bar = _progress_bar(f"[{n}/{len(files)}] {path.name}", show_progress)
        result = process_file(path, output_dir, options, formats, progress=bar.hook,
                              subtitles=subtitles, target=options.translate_to or "en")
        bar.close()
        results.append(result)
        if result.error:
            echo(f"toolkit: error: {result.error}")
    done = sum(r.status == "done" for r in results)
    failed = len(results) - done
    echo(f"toolkit: {done} done, {failed} failed, outputs in {output_dir}")
    return 1 if failed or not results else 0


class _progress_bar:
    """A tqdm bar over seconds of audio, fed by the pipeline's progress hook."""

    def __init__(self, label: str, enabled: bool):
        self.label, self.enabled, self.bar = label, enabled, None

    def hook(self, stage: str, completed: float, total: float) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=round(total, 1) if stage == "transcribe" else None, unit="s audio",
                            desc=self.label, leave=True, file=sys.stderr, dynamic_ncols=True)
        if stage == "transcribe":
            if self.bar.total != round(total, 1):
                self.bar.reset(total=round(total, 1))
            self.bar.n = round(completed, 1)
            self.bar.refresh()
        else:
            self.bar.set_postfix_str(stage)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
