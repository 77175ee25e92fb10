"""Many inputs: plan which files need work, run them on an engine, record every result.

The rooms of a batch: `discovery.py` finds the inputs, `manifest.py` keeps OUTDIR's state
(the manifest, the lock, the checks that OUTDIR can take outputs), `job.py` is one file's
work, `engines.py` and `ray_engine.py` run jobs. This module joins them.

Crash safety rests on three orderings: every output is written to a temp file and renamed;
the JSON is the last output of a file; the manifest line is appended (and fsynced) only after
all of a file's outputs exist. A `kill -9` at any moment therefore leaves complete outputs and,
at worst, a file without a manifest line, which the next run simply processes again.

Nothing heavy is imported at the top: a re-run where everything is up to date never imports
the pipeline's models nor loads one.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .corpus import follow_batch
from .discovery import iter_inputs
from .job import BatchProgress, FileResult, Job
from .manifest import (
    Manifest,
    OutputDirError,
    OutputDirLock,
    file_stamp,
    fingerprint,
    prepare_output_dir,
    recorded_hash,
    remove_stale_temp_files,
    writer_options_for,
)
from .utils import NAME_MAX, ToolkitWarning, fit_name
from .writers import DEFAULT_FORMATS, NOT_IN_ALL, available_formats, extension_of

if TYPE_CHECKING:
    from .pipeline import PipelineOptions

ENGINES = ("local", "ray")
_STAMP_KEYS = ("size", "mtime_ns", "ctime_ns", "inode", "hashed_ns")


# ---------------------------------------------------------------------------- planning

def _assign_stems(files: list[Path], manifest: Manifest | None = None) -> list[str]:
    """OUTDIR/STEM.EXT for each input; a second `x.mp4` (another folder, or x.mkv) becomes `x-2`.

    An input keeps the stem an earlier run gave it, and stems that earlier runs gave to other
    inputs stay theirs, so one run can never overwrite (and a later run then skip) another
    input's outputs. A stem too long for a file name with its longest extension is shortened
    with a hash of the whole name.
    """
    # (the subtitled video fits its own longer name: see mux.py)
    limit = NAME_MAX - 1 - max(len(extension_of(f)) for f in available_formats() if f not in NOT_IN_ALL)
    records = manifest.records if manifest else {}
    keys = {os.path.abspath(p) for p in files}
    used: set[str] = {str(r.get("stem", "")).lower() for k, r in records.items() if k not in keys and r.get("stem")}
    stems = []
    for path in files:
        earlier = records.get(os.path.abspath(path), {}).get("stem")
        if earlier and earlier.lower() not in used:
            used.add(earlier.lower())
            stems.append(earlier)
            continue
        base = path.stem or path.name
        stem, n = fit_name(base, limit), 1
        while stem.lower() in used:
            n += 1
            stem = fit_name(f"{base}-{n}", limit)
        used.add(stem.lower())
        stems.append(stem)
    return stems


def _plan(files: list[Path], output_dir: Path, fp: str, manifest: Manifest,
          overwrite: bool) -> list[Job | FileResult]:
    """Which inputs are up to date (a skipped result), cannot be read (a failed one: nothing is
    decoded for them), and need work (a job)."""
    from .media import MediaError, check_input, file_sha256

    plan: list[Job | FileResult] = []
    for path, stem in zip(files, _assign_stems(files, manifest), strict=True):
        key = os.path.abspath(path)
        record = manifest.records.get(key, {})
        try:
            st = check_input(key)
            sha = recorded_hash(record, st)  # hashing a large video takes seconds: reused when unchanged
            stamp = {k: record[k] for k in _STAMP_KEYS} if sha else file_stamp(st)
            sha = sha or file_sha256(key)
        except MediaError as e:
            plan.append(FileResult(key, "failed", str(e), stem=stem))
            continue
        except OSError as e:
            plan.append(FileResult(key, "failed", f"{key}: cannot be read ({e.strerror})", stem=stem))
            continue
        outputs = [str(output_dir / o) for o in record.get("outputs") or []]
        if (not overwrite and record.get("status") in ("done", "skipped") and record.get("sha256") == sha
                and record.get("fingerprint") == fp and record.get("stem") == stem and outputs
                and all(os.path.isfile(o) for o in outputs)):
            plan.append(FileResult(key, "skipped", None, outputs, dict(record.get("timings") or {}), sha, fp, stem))
        else:
            plan.append(Job(Path(key), stem, sha, stamp))
    return plan


# ---------------------------------------------------------------------------- the batch

def transcribe_many(paths: Iterable[str | Path], output_dir: str | Path, options: PipelineOptions | None = None,
                    formats: Iterable[str] = DEFAULT_FORMATS, *, jobs: int | None = None, overwrite: bool = False,
                    engine: str = "local", ray_address: str | None = None, progress: BatchProgress | None = None,
                    subtitles: str = "auto", **writer_options: Any) -> Iterator[FileResult]:
    """Transcribe files and folders into `output_dir`, yielding each file's result as it finishes.

    Up-to-date files come first, as `skipped`, then inputs that cannot be read. `jobs`: files in
    flight at once (local: worker processes, default 1; ray: model actors, default one per GPU,
    else one per node). `engine="ray"` runs on a Ray cluster (`ray_address`, or a local
    instance). Every result is recorded in `output_dir/manifest.jsonl` before it is yielded.
    Closing the iterator early (or Ctrl-C) stops the work in flight; what was yielded is complete
    and recorded.

    Raises `OutputDirError` before any input is decoded when OUTDIR is a file, read-only, full or
    held by another run (`OutputDirBusyError`), and after the failed file's result when OUTDIR
    fills up (or turns read-only) mid-batch: the rest would fail the same way. Damaged state
    (skipped manifest lines, folders without media) is reported as `ToolkitWarning`s.
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    if jobs is not None and jobs < 1:
        raise ValueError(f"jobs must be at least 1, not {jobs}")
    formats = list(formats)
    if not formats:
        raise ValueError("no output format asked for: give at least one of " + ", ".join(available_formats()))
    if options is None:
        from .pipeline import PipelineOptions

        options = PipelineOptions()
    writer_options = writer_options_for(options, subtitles, **writer_options)
    output_dir = prepare_output_dir(output_dir)
    with OutputDirLock(output_dir):
        remove_stale_temp_files(output_dir)
        manifest = Manifest(output_dir)
        for problem in manifest.problems:
            warnings.warn(problem, ToolkitWarning, stacklevel=2)
        try:
            yield from _run_batch(paths, output_dir, options, formats, writer_options, manifest, jobs=jobs,
                                  overwrite=overwrite, engine=engine, ray_address=ray_address, progress=progress)
        finally:
            try:
                manifest.compact()
            except OSError as e:  # a full disk: the appended lines stand as they are
                warnings.warn(f"{manifest.path}: not compacted ({e.strerror}); its lines stay valid",
                              ToolkitWarning, stacklevel=2)
            if isinstance(indexed := follow_batch(output_dir), Exception):  # `toolkit search` sees the new files
                warnings.warn(f"{indexed} (`toolkit index {output_dir}` redoes it)", ToolkitWarning, stacklevel=2)


def _run_batch(paths: Iterable[str | Path], output_dir: Path, options: PipelineOptions, formats: list[str],
               writer_options: dict[str, Any], manifest: Manifest, *, jobs: int | None, overwrite: bool,
               engine: str, ray_address: str | None, progress: BatchProgress | None) -> Iterator[FileResult]:
    fp = fingerprint(options, formats, writer_options)
    files = list(iter_inputs(paths))
    if progress:
        progress("", "batch", 0.0, float(len(files)))
    plan = _plan(files, output_dir, fp, manifest, overwrite)
    todo = {str(item.path): item for item in plan if isinstance(item, Job)}

    def record(result: FileResult) -> None:
        job = todo.get(result.path)
        old = manifest.records.get(result.path, {})
        result.fingerprint = fp if job is not None or result.status == "skipped" else None
        if job is not None:
            result.sha256, result.stem = job.sha256, result.stem or job.stem
        entry = result.to_record(output_dir)
        if job is not None:
            entry.update(job.stamp)
        elif result.status == "skipped":
            entry.update({k: old.get(k) for k in (*_STAMP_KEYS, "warnings") if old.get(k) is not None})
        entry["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        manifest.append(entry)

    def results() -> Iterator[FileResult]:
        yield from (item for item in plan if isinstance(item, FileResult))
        if todo:
            yield from _engine_results(list(todo.values()), output_dir, options, formats, writer_options,
                                       jobs=jobs, engine=engine, ray_address=ray_address, progress=progress)

    given = 0
    stream = results()
    try:
        for result in stream:
            stop = result.outdir_failed
            try:
                record(result)
            except OSError as e:
                stop = True
                result.warnings.append(f"{manifest.path}: this result could not be recorded ({e.strerror})")
            given += 1
            yield result
            if stop:
                left = len(plan) - given
                raise OutputDirError(f"{output_dir}: cannot take more outputs; the batch stopped with {left} "
                                     f"input{'s' if left != 1 else ''} not tried (run the same command again "
                                     "once there is room)")
        if todo:
            link_speakers(output_dir, options, formats)
    finally:
        stream.close()


def link_speakers(output_dir: Path, options: PipelineOptions, formats: list[str]) -> None:
    """After a batch: who is who across OUTDIR (speakers.json) and, where reports are kept, the index's people."""
    from .linking import link_collection

    link_collection(output_dir, options.voices)
    if "html" in formats:
        from .report_index import build_reports

        build_reports(output_dir, target=options.translate_to or "en", reports=False)


def _engine_results(work: list[Job], output_dir: Path, options: PipelineOptions, formats: list[str],
                    writer_options: dict[str, Any], *, jobs: int | None, engine: str, ray_address: str | None,
                    progress: BatchProgress | None) -> Iterator[FileResult]:
    if engine == "ray":
        from .ray_engine import run_ray

        results = run_ray(work, output_dir, options, formats, writer_options, address=ray_address, actors=jobs,
                          progress=progress)
    else:
        from .engines import default_jobs, run_local

        results = run_local(work, jobs or default_jobs(), output_dir, options, formats, writer_options, progress)
    try:
        yield from results
    finally:
        results.close()
