"""The local engines: files one after another in this process, or N at once in worker processes.

(`ray_engine.py` is the third, for a cluster.) Each yields a `FileResult` per job as it
finishes; closing the iterator stops the work in flight.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .job import BatchProgress, FileResult, Job, failure_message, process_file
from .lifetime import die_with_parent
from .models import cpu_cores

if TYPE_CHECKING:
    from .pipeline import PipelineOptions


def default_jobs() -> int:
    """One file at a time: CTranslate2 already uses every core (or the one GPU) for a single file.

    Measured on 2 cores, two 18 s files: --jobs 1 took 20.8 s, --jobs 2 (two processes, one thread
    and one model each) 20.9 s, each file taking twice as long. More jobs pay only where one file
    cannot fill the machine (many cores with a small model, or stages that wait on I/O).
    """
    return 1


def run_local(jobs: list[Job], n_workers: int, output_dir: Path, options: PipelineOptions, formats: list[str],
              writer_options: dict[str, Any], progress: BatchProgress | None) -> Iterator[FileResult]:
    """`jobs` in this process (`n_workers` 1), or in a pool of worker processes."""
    if n_workers > 1 and len(jobs) > 1:
        return _run_pool(jobs, min(n_workers, len(jobs)), output_dir, options, formats, writer_options, progress)
    return _run_serial(jobs, output_dir, options, formats, writer_options, progress)


def _run_serial(jobs: list[Job], output_dir: Path, options: PipelineOptions, formats: list[str],
                writer_options: dict[str, Any], progress: BatchProgress | None) -> Iterator[FileResult]:
    for job in jobs:
        hook = None
        if progress:
            def hook(stage: str, completed: float, total: float, _p: str = str(job.path)) -> None:
                progress(_p, stage, completed, total)
        yield process_file(job.path, output_dir, options, formats, progress=hook, stem=job.stem, **writer_options)


_WORKER_QUEUE = None


def _worker_init(queue, parent_pid: int) -> None:
    global _WORKER_QUEUE
    # A worker outlives a parent killed with -9 unless told otherwise; it would go on writing
    # outputs that no manifest records.
    die_with_parent(parent_pid)
    _WORKER_QUEUE = queue
    # Ctrl-C goes to the whole process group; the parent decides what stops, not each worker.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _worker_run(path: str, output_dir: str, options: PipelineOptions, formats: list[str], stem: str,
                writer_options: dict[str, Any]) -> FileResult:
    queue = _WORKER_QUEUE
    last = [0.0]

    def hook(stage: str, completed: float, total: float) -> None:
        now = time.monotonic()
        if queue is not None and (now - last[0] > 0.2 or completed >= total):  # throttled: a pipe per call is slow
            last[0] = now
            queue.put((path, stage, completed, total))

    return process_file(path, output_dir, options, formats, progress=hook, stem=stem, **writer_options)


def _run_pool(jobs: list[Job], n_workers: int, output_dir: Path, options: PipelineOptions, formats: list[str],
              writer_options: dict[str, Any], progress: BatchProgress | None) -> Iterator[FileResult]:
    """N processes, each with its own model (CTranslate2 holds one model per process) and cores/N threads."""
    import multiprocessing as mp
    import queue as queue_mod
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    if not options.cpu_threads:
        options = replace(options, cpu_threads=max(1, cpu_cores() // n_workers))
    ctx = mp.get_context("spawn")  # fork after CTranslate2/OpenMP threads exist can deadlock
    events = ctx.Queue()
    pool = ProcessPoolExecutor(max_workers=n_workers, mp_context=ctx, initializer=_worker_init,
                               initargs=(events, os.getpid()))
    completed = False
    try:
        submitted = {pool.submit(_worker_run, str(j.path), str(output_dir), options, formats, j.stem,
                                 writer_options): j for j in jobs}
        pending = set(submitted)
        while pending:
            finished, pending = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
            while True:
                try:
                    event = events.get_nowait()
                except queue_mod.Empty:
                    break
                if progress:
                    progress(*event)
            for future in finished:
                try:
                    yield future.result()
                except Exception as e:  # a worker that died (out of memory, a crash) fails its file only
                    job = submitted[future]
                    yield FileResult(str(job.path), "failed", failure_message(job.path, e), stem=job.stem)
        completed = True
    finally:
        # On an interrupt nothing in flight is worth waiting for: its outputs are atomic and unrecorded,
        # so the next run redoes it.
        processes = [] if completed else list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=completed, cancel_futures=True)
        for proc in processes:
            if proc.is_alive():
                proc.terminate()
        for proc in processes:
            proc.join(timeout=5)
        events.close()
        events.join_thread()
