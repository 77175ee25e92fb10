"""Past one machine: the batch's per-file work on a Ray cluster.

Two kinds of work, kept apart so an accelerator never waits on ffmpeg:
- extraction tasks (CPU, one per file, a few files ahead): probe + decode to 16 kHz audio,
  which lands in the object store as 16-bit samples (half the size of float32; a worker's
  temporary file would not be readable from another node);
- long-lived transcriber actors (one per GPU, `num_gpus=1`; else one per node using its cores):
  each loads the models once and turns (media info, audio) into a `Transcript`.
The driver writes every output and the manifest, so OUTDIR needs to exist only where the
driver runs; input paths must be readable by the workers (a shared filesystem). A local
instance started here is watched (`lifetime.Watchdog`): if the driver dies, even by kill -9,
none of its processes stay behind.

Ray is optional (`pip install 'toolkit[ray]'`); nothing imports it unless this engine is used.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .job import BatchProgress, FileResult, Job, failure_message, finish
from .lifetime import Watchdog, descendants
from .models import cpu_cores

if TYPE_CHECKING:
    import numpy as np

    from .pipeline import PipelineOptions
    from .transcript import MediaInfo, Transcript

INSTALL_HINT = "pip install 'toolkit[ray]'"
POLL_S = 0.5  # how often the driver asks busy actors how far they are


class RayNotInstalledError(ImportError):
    """The ray engine was asked for, but Ray is not importable."""


def import_ray():
    """The `ray` module, or an error that says how to get it."""
    try:
        import ray
    except ImportError as e:
        raise RayNotInstalledError(f"the ray engine needs Ray, which is not installed: {INSTALL_HINT}") from e
    return ray


def _extract(path: str, audio_stream: int | None) -> tuple[tuple[str | None, MediaInfo | None, float],
                                                           np.ndarray | None]:
    """(error, media info, seconds) and the audio's 16-bit samples, as two objects: the driver reads
    only the small one."""
    from .media import open_media

    started = time.perf_counter()
    try:
        info, audio = open_media(path, audio_stream)
        with audio:
            samples = audio.pcm(0, audio.size)
    except Exception as e:  # returned, not raised: the driver turns it into this file's failure line
        return (failure_message(path, e), None, 0.0), None
    return (None, info, time.perf_counter() - started), samples


class _Transcriber:
    """One model instance per actor, reused for every file the actor is given."""

    def __init__(self, cpu_threads: int):
        self.cpu_threads = cpu_threads
        self.current: dict[str, tuple[str, float, float]] = {}

    def run(self, path: str, options: PipelineOptions, info: MediaInfo, audio: np.ndarray,
            extract_s: float) -> tuple[str | None, Transcript | None]:
        from .audio import PcmAudio
        from .pipeline import transcribe

        started = time.perf_counter()
        if not options.cpu_threads:
            options = replace(options, cpu_threads=self.cpu_threads)

        def hook(stage: str, completed: float, total: float) -> None:
            self.current[path] = (stage, completed, total)

        try:
            transcript = transcribe(path, options, progress=hook, media=(info, PcmAudio(audio)))
            transcript.timings["extract"] = extract_s
        except Exception as e:  # one file's failure; the actor and its model stay up for the next
            return failure_message(path, e), None
        finally:
            self.current.pop(path, None)
        transcript.timings["total"] = extract_s + time.perf_counter() - started
        return None, transcript

    def progress(self) -> dict[str, tuple[str, float, float]]:
        return dict(self.current)


def _init_ray(ray, address: str | None) -> tuple[bool, Watchdog | None]:
    """Connect (or start a local instance): whether this call started it and must shut it down,
    and the watchdog that ends a local instance's processes with this one."""
    if ray.is_initialized():
        return False, None
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no prompt, no phoning home from a batch tool
    common: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False}
    if address:
        ray.init(address=address, **common)
        return True, None  # a cluster's processes are the cluster's; it ends this driver's actors itself
    before = descendants({os.getpid()})
    # At least two CPUs, so one file's extraction can overlap another's transcription.
    ray.init(num_cpus=max(2, cpu_cores()), include_dashboard=False, **common)
    return True, Watchdog(descendants({os.getpid()}) - before)


def run_ray(jobs: list[Job], output_dir: Path, options: PipelineOptions, formats: list[str],
            writer_options: dict[str, Any], *, address: str | None = None, actors: int | None = None,
            progress: BatchProgress | None = None) -> Iterator[FileResult]:
    """Process `jobs` on Ray, writing outputs from the driver; yields each file's result as it finishes."""
    ray = import_ray()
    started_here, watchdog = _init_ray(ray, address)
    handles: list[Any] = []
    extracting: dict[Any, tuple[Job, Any]] = {}
    try:
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0)) if options.device in ("auto", "cuda") else 0
        nodes = max(1, sum(1 for n in ray.nodes() if n.get("Alive")))
        n_actors = min(actors or gpus or nodes, len(jobs))
        # Cores per actor for CTranslate2: Ray pins OMP_NUM_THREADS to the reservation (1), which
        # would leave a CPU actor on one thread; an actor's share of its node's cores is what it needs.
        threads = max(1, int(resources.get("CPU", 1)) // max(1, nodes) // max(1, -(-n_actors // nodes)))
        # OMP_NUM_THREADS also sizes the BLAS under numpy's feature extraction, whose rounding changes
        # the decoded text: the actor gets what a local run has (every core of its share), not Ray's 1.
        env = {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", str(threads))}
        actor_opts: dict[str, Any] = {"num_cpus": 1, "max_concurrency": 2, "max_restarts": 1,
                                      "scheduling_strategy": "SPREAD", "runtime_env": {"env_vars": env}}
        if gpus:
            actor_opts["num_gpus"] = 1
        actor_cls = ray.remote(_Transcriber).options(**actor_opts)
        handles = [actor_cls.remote(threads) for _ in range(n_actors)]
        extract = ray.remote(_extract).options(num_cpus=1, num_returns=2, max_retries=0)

        to_extract = deque(jobs)
        ready: deque[tuple[Job, Any, Any, float]] = deque()
        idle = list(handles)
        running: dict[Any, tuple[Job, Any]] = {}
        ahead = n_actors + 1  # decoded files waiting in the object store: enough to keep actors fed, no more
        last_poll = 0.0
        while to_extract or extracting or ready or running:
            while to_extract and len(extracting) + len(ready) < ahead:
                job = to_extract.popleft()
                status_ref, audio_ref = extract.remote(str(job.path), options.audio_stream)
                extracting[status_ref] = (job, audio_ref)
            while idle and ready:
                job, info, audio_ref, extract_s = ready.popleft()
                actor = idle.pop()
                running[actor.run.remote(str(job.path), options, info, audio_ref, extract_s)] = (job, actor)
            done, _ = ray.wait(list(extracting) + list(running), num_returns=1, timeout=POLL_S)
            if progress and running and time.monotonic() - last_poll >= POLL_S:
                last_poll = time.monotonic()
                _report_progress(ray, [actor for _, actor in running.values()], progress)
            for ref in done:
                if ref in extracting:
                    job, audio_ref = extracting.pop(ref)
                    error, info, extract_s = ray.get(ref)
                    if error:
                        yield FileResult(str(job.path), "failed", error, stem=job.stem)
                    else:
                        ready.append((job, info, audio_ref, extract_s))
                    continue
                job, actor = running.pop(ref)
                idle.append(actor)
                yield _finish(ray, ref, job, output_dir, formats, writer_options)
    finally:
        for ref in extracting:
            ray.cancel(ref, force=True)
        for actor in handles:
            ray.kill(actor)
        try:
            if started_here:
                ray.shutdown()
        finally:
            if watchdog:
                watchdog.stop()


def _finish(ray, ref: Any, job: Job, output_dir: Path, formats: list[str],
            writer_options: dict[str, Any]) -> FileResult:
    try:
        error, transcript = ray.get(ref)
    except ray.exceptions.RayError as e:  # the actor died (e.g. out of memory); Ray restarts it once
        error, transcript = failure_message(job.path, e), None
    if error or transcript is None:
        return FileResult(str(job.path), "failed", error, stem=job.stem)
    return finish(job.path, job.stem, transcript, output_dir, formats, writer_options)


def _report_progress(ray, busy: list[Any], progress: BatchProgress) -> None:
    try:
        states = ray.get([actor.progress.remote() for actor in busy], timeout=POLL_S)
    except Exception:  # progress is best effort; a slow answer must not stall the batch
        return
    for state in states:
        for path, (stage, completed, total) in state.items():
            progress(path, stage, completed, total)
