"""Many inputs: walk folders, process each file once, never let one bad file stop the rest.

The record of a batch is `OUTDIR/manifest.jsonl`: one JSON line per input (path, sha256,
status, error, outputs, timings, fingerprint). A file whose content hash and output-shaping
options match a `done` line, and whose outputs are all present, is skipped on the next run.

Crash safety rests on three orderings: every output is written to a temp file and renamed;
the JSON is the last output of a file; the manifest line is appended (and fsynced) only after
all of a file's outputs exist. A `kill -9` at any moment therefore leaves complete outputs and,
at worst, a file without a manifest line, which the next run simply processes again.

This module imports nothing heavy at the top: a re-run where everything is up to date never
imports the pipeline's models nor loads one.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .utils import atomic_open
from .writers import DEFAULT_FORMATS

if TYPE_CHECKING:
    from .pipeline import PipelineOptions, ProgressHook
    from .transcript import Transcript

MANIFEST_NAME = "manifest.jsonl"
# Bump when the meaning of a fingerprint changes, so older outputs are redone once.
FINGERPRINT_VERSION = 2  # 2: the resolved translator is part of it
# PipelineOptions fields that change speed, not the transcript.
_NON_SHAPING_FIELDS = frozenset({"cpu_threads"})
ENGINES = ("local", "ray")

# Extensions that are always attempted (and reported when broken); other files in a
# folder are taken only when ffmpeg can read them as media.
MEDIA_EXTENSIONS = frozenset(
    "mp4 mkv webm avi mov ts m2ts mts flv wmv mpg mpeg 3gp m4v ogv "
    "wav mp3 m4a aac flac ogg oga opus wma amr aiff aif".split())
SKIPPED_EXTENSIONS = frozenset("json jsonl srt vtt txt tsv rttm html md py csv log tmp".split())

# (input path, stage, completed, total): a file's progress inside a batch; stage "transcribe"
# counts seconds of audio, as the pipeline's own hook does. Once, before any file: ("", "batch", 0, n_files).
BatchProgress = Callable[[str, str, float, float], None]


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

    def to_record(self, output_dir: str | Path) -> dict[str, Any]:
        """The manifest line; outputs relative to OUTDIR, so the folder can be moved as a whole."""
        outputs = [os.path.relpath(o, output_dir) for o in self.outputs]
        return {"path": self.path, "sha256": self.sha256, "status": self.status, "error": self.error,
                "outputs": outputs, "timings": {k: round(v, 3) for k, v in self.timings.items()},
                "fingerprint": self.fingerprint, "stem": self.stem}


@dataclass
class _Job:
    """One input that needs work: where its outputs go and what identifies it."""

    path: Path
    stem: str
    sha256: str | None
    size: int | None
    mtime_ns: int | None


# ---------------------------------------------------------------------------- inputs

def _is_media_by_content(path: Path) -> bool:
    from .media import MediaError, probe

    try:
        info = probe(path)
    except MediaError:
        return False
    return any(s.codec_type == "audio" for s in info.streams)  # not thumbnails, whose one stream is "video"


def iter_inputs(inputs: Iterable[str | Path]) -> Iterator[Path]:
    """Files named explicitly, and the media files found under named folders, in a stable order."""
    seen: set[str] = set()
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            children = []
            for child in sorted(p for p in path.rglob("*") if p.is_file()):
                if any(part.startswith(".") for part in child.relative_to(path).parts):
                    continue
                ext = child.suffix.lower().lstrip(".")
                if ext in MEDIA_EXTENSIONS or (ext not in SKIPPED_EXTENSIONS and _is_media_by_content(child)):
                    children.append(child)
        else:
            children = [path]  # a missing or bad file is reported by the pipeline, with its name
        for child in children:
            key = os.path.abspath(child)
            if key not in seen:  # the same file named twice is done once
                seen.add(key)
                yield child


# ---------------------------------------------------------------------------- fingerprint

def writer_options_for(options: PipelineOptions, subtitles: str = "original", **extra: Any) -> dict[str, Any]:
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


# ---------------------------------------------------------------------------- manifest

class Manifest:
    """`OUTDIR/manifest.jsonl`: appended line by line during a run, compacted to one line per input after."""

    def __init__(self, output_dir: str | Path):
        self.path = Path(output_dir) / MANIFEST_NAME
        self.records: dict[str, dict[str, Any]] = {}
        self._load()

    def _load(self) -> None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return
        for line in text.splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a line cut short by a kill: its file is simply done again
            if isinstance(record, dict) and isinstance(record.get("path"), str):
                self.records[record["path"]] = record

    def append(self, record: dict[str, Any]) -> None:
        """Add one whole line and make it durable before anyone relies on it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a+b") as f:
            f.seek(0, os.SEEK_END)
            if f.tell():
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":  # a previous run died mid-line; keep that fragment on its own line
                    f.write(b"\n")
            f.write(json.dumps(record, ensure_ascii=False).encode("utf-8") + b"\n")
            f.flush()
            os.fsync(f.fileno())
        self.records[record["path"]] = record

    def compact(self) -> None:
        """Rewrite as one line per input (the latest), through a temp file and a rename."""
        if not self.records:
            return
        with atomic_open(self.path, fsync=True) as f:
            for record in self.records.values():
                f.write(json.dumps(record, ensure_ascii=False) + "\n")


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed child that nobody has waited for yet is a zombie: dead for our purpose
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def remove_stale_temp_files(output_dir: str | Path) -> list[Path]:
    """Delete `.NAME.PID.tmp` files left by a killed run; those of a live process (a concurrent run) stay."""
    removed = []
    for tmp in Path(output_dir).glob(".*.tmp"):
        pid = tmp.name.rsplit(".", 2)[-2] if tmp.name.count(".") >= 3 else ""
        if pid.isdigit() and _pid_alive(int(pid)):
            continue
        try:
            tmp.unlink()
            removed.append(tmp)
        except FileNotFoundError:
            pass
    return removed


# ---------------------------------------------------------------------------- one file

def write_transcript(transcript: Transcript, output_dir: str | Path, stem: str, formats: Iterable[str],
                     **writer_options: Any) -> list[Path]:
    """All of a file's outputs, the JSON last: its presence means the others are complete."""
    from .writers import write_outputs

    ordered = [f for f in formats if f != "json"] + (["json"] if "json" in formats else [])
    return write_outputs(transcript, output_dir, stem, ordered, **writer_options)


def failure_message(path: str | Path, error: BaseException) -> str:
    """One line naming the file: a MediaError already does; anything else gets the file and the type."""
    from .media import MediaError

    if isinstance(error, MediaError):
        return str(error)
    first = (str(error).strip().splitlines() or [""])[0]
    return f"{path}: {type(error).__name__}: {first}"


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
    try:
        written = write_transcript(transcript, output_dir, stem, list(formats), **writer_options)
    except OSError as e:  # a full disk or a read-only folder fails this file; the next may still fit
        return FileResult(str(path), "failed", failure_message(path, e), stem=stem)
    return FileResult(str(path), "done", None, [str(p) for p in written], dict(transcript.timings), stem=stem)


# ---------------------------------------------------------------------------- planning

def _assign_stems(files: list[Path], manifest: Manifest | None = None) -> list[str]:
    """OUTDIR/STEM.EXT for each input; a second `x.mp4` (another folder, or x.mkv) becomes `x-2`.

    An input keeps the stem an earlier run gave it, and stems that earlier runs gave to other
    inputs stay theirs, so one run can never overwrite (and a later run then skip) another
    input's outputs.
    """
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
        stem, n = path.stem or path.name, 1
        while stem.lower() in used:
            n += 1
            stem = f"{path.stem}-{n}"
        used.add(stem.lower())
        stems.append(stem)
    return stems


def _plan(files: list[Path], output_dir: Path, fp: str, manifest: Manifest,
          overwrite: bool) -> list[_Job | FileResult]:
    """Which inputs are up to date (a skipped result) and which need work (a job)."""
    from .media import file_sha256

    plan: list[_Job | FileResult] = []
    for path, stem in zip(files, _assign_stems(files, manifest), strict=True):
        key = os.path.abspath(path)
        record = manifest.records.get(key, {})
        try:
            st = path.stat()
        except OSError:
            st = None
        if st is None or not path.is_file():
            plan.append(_Job(Path(key), stem, None, None, None))
            continue
        # Hashing a large video takes seconds; an unchanged size and mtime reuse the recorded hash.
        if record.get("sha256") and record.get("size") == st.st_size and record.get("mtime_ns") == st.st_mtime_ns:
            sha = record["sha256"]
        else:
            try:
                sha = file_sha256(path)
            except OSError:
                sha = None
        job = _Job(Path(key), stem, sha, st.st_size, st.st_mtime_ns)
        outputs = [str(output_dir / o) for o in record.get("outputs") or []]
        if (not overwrite and sha and record.get("status") in ("done", "skipped") and record.get("sha256") == sha
                and record.get("fingerprint") == fp and record.get("stem") == stem and outputs
                and all(os.path.isfile(o) for o in outputs)):
            plan.append(FileResult(key, "skipped", None, list(outputs), dict(record.get("timings") or {}),
                                   sha, fp, stem))
        else:
            plan.append(job)
    return plan


# ---------------------------------------------------------------------------- engines

def default_jobs() -> int:
    """One file at a time: CTranslate2 already uses every core (or the one GPU) for a single file.

    Measured on 2 cores, two 18 s files: --jobs 1 took 20.8 s, --jobs 2 (two processes, one thread
    and one model each) 20.9 s, each file taking twice as long. More jobs pay only where one file
    cannot fill the machine (many cores with a small model, or stages that wait on I/O).
    """
    return 1


def _run_serial(jobs: list[_Job], output_dir: Path, options: PipelineOptions, formats: list[str],
                writer_options: dict[str, Any], progress: BatchProgress | None) -> Iterator[FileResult]:
    for job in jobs:
        hook = None
        if progress:
            def hook(stage: str, completed: float, total: float, _p: str = str(job.path)) -> None:
                progress(_p, stage, completed, total)
        yield process_file(job.path, output_dir, options, formats, progress=hook, stem=job.stem, **writer_options)


_WORKER_QUEUE = None


def _worker_init(queue) -> None:
    global _WORKER_QUEUE
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


def _run_pool(jobs: list[_Job], n_workers: int, output_dir: Path, options: PipelineOptions, formats: list[str],
              writer_options: dict[str, Any], progress: BatchProgress | None) -> Iterator[FileResult]:
    """N processes, each with its own model (CTranslate2 holds one model per process) and cores/N threads."""
    import multiprocessing as mp
    import queue as queue_mod
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    if not options.cpu_threads:
        options = replace(options, cpu_threads=max(1, (os.cpu_count() or 1) // n_workers))
    ctx = mp.get_context("spawn")  # fork after CTranslate2/OpenMP threads exist can deadlock
    events = ctx.Queue()
    pool = ProcessPoolExecutor(max_workers=n_workers, mp_context=ctx, initializer=_worker_init, initargs=(events,))
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


# ---------------------------------------------------------------------------- the batch

def transcribe_many(paths: Iterable[str | Path], output_dir: str | Path, options: PipelineOptions | None = None,
                    formats: Iterable[str] = DEFAULT_FORMATS, *, jobs: int | None = None, overwrite: bool = False,
                    engine: str = "local", ray_address: str | None = None, progress: BatchProgress | None = None,
                    subtitles: str = "original", **writer_options: Any) -> Iterator[FileResult]:
    """Transcribe files and folders into `output_dir`, yielding each file's result as it finishes.

    Up-to-date files come first, as `skipped`. `jobs`: files in flight at once (local: worker
    processes, default 1; ray: model actors, default one per GPU, else one per node).
    `engine="ray"` runs on a Ray cluster (`ray_address`, or a local instance). Every result is
    recorded in `output_dir/manifest.jsonl` before it is yielded. Closing the iterator early (or
    Ctrl-C) stops the work in flight; what was yielded is complete and recorded.
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    if jobs is not None and jobs < 1:
        raise ValueError(f"jobs must be at least 1, not {jobs}")
    if options is None:
        from .pipeline import PipelineOptions

        options = PipelineOptions()
    formats = list(formats)
    writer_options = writer_options_for(options, subtitles, **writer_options)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_files(output_dir)
    manifest = Manifest(output_dir)
    fp = fingerprint(options, formats, writer_options)

    files = list(iter_inputs(paths))
    if progress:
        progress("", "batch", 0.0, float(len(files)))
    plan = _plan(files, output_dir, fp, manifest, overwrite)
    todo = {str(item.path): item for item in plan if isinstance(item, _Job)}

    def record(result: FileResult) -> FileResult:
        job = todo.get(result.path)
        if job is not None:
            result.sha256, result.fingerprint, result.stem = job.sha256, fp, result.stem or job.stem
        entry = result.to_record(output_dir)
        if job is not None and job.size is not None:
            entry.update(size=job.size, mtime_ns=job.mtime_ns)
        elif result.status == "skipped":
            old = manifest.records.get(result.path, {})
            entry.update(size=old.get("size"), mtime_ns=old.get("mtime_ns"))
        entry["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        manifest.append(entry)
        return result

    try:
        for item in plan:
            if isinstance(item, FileResult):
                yield record(item)
        if not todo:
            return
        work = list(todo.values())
        if engine == "ray":
            from .ray_engine import run_ray

            results = run_ray(work, output_dir, options, formats, writer_options, address=ray_address,
                              actors=jobs, progress=progress)
        elif (jobs or default_jobs()) > 1 and len(work) > 1:
            results = _run_pool(work, min(jobs or 1, len(work)), output_dir, options, formats, writer_options,
                                progress)
        else:
            results = _run_serial(work, output_dir, options, formats, writer_options, progress)
        try:
            for result in results:
                yield record(result)
        finally:
            results.close()
    finally:
        manifest.compact()


# ---------------------------------------------------------------------------- the CLI's view

def run_cli_batch(inputs: list[str], output_dir: str, options: PipelineOptions, formats: list[str],
                  subtitles: str = "original", show_progress: bool = True,
                  echo: Callable[[str], None] | None = None, *, jobs: int | None = None, overwrite: bool = False,
                  engine: str = "local", ray_address: str | None = None) -> int:
    """The CLI's batch: files done/total with the current file's progress, one line per failure,
    a summary, an exit code (1 if anything failed, 130 on Ctrl-C)."""
    bar = _BatchBar(show_progress)
    say = echo or (lambda line: bar.write(line))
    counts = {"done": 0, "skipped": 0, "failed": 0}
    finished: list[str] = []
    results = transcribe_many(inputs, output_dir, options, formats, jobs=jobs, overwrite=overwrite, engine=engine,
                              ray_address=ray_address, progress=bar.file_progress, subtitles=subtitles)
    try:
        for result in results:
            counts[result.status] += 1
            if result.status == "done":
                finished.append(Path(result.path).name)
            bar.file_finished(result)
            if result.error:
                say(f"toolkit: error: {result.error}")
    except KeyboardInterrupt:
        results.close()
        bar.close()
        say(f"toolkit: interrupted: {counts['done']} done, {counts['failed']} failed, {counts['skipped']} skipped "
            f"before the interrupt; run the same command again to resume")
        if finished:
            say("toolkit: finished: " + ", ".join(finished))
        return 130
    bar.close()
    say(f"toolkit: {counts['done']} done, {counts['failed']} failed, {counts['skipped']} skipped "
        f"(up to date), outputs in {output_dir}")
    return 1 if counts["failed"] or not sum(counts.values()) else 0


class _BatchBar:
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
        name = Path(path).name
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
