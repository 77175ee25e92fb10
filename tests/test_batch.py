"""The batch layer end to end: real samples, real models, the CLI as a subprocess.

Stages that do not matter here are off (`--no-diarize --translate-to none`) to keep the file
under a few minutes; the shortest sample (azeri_music, 18 s) stands for "a sample" twice.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from toolkit.batch import _assign_stems, transcribe_many
from toolkit.discovery import iter_inputs
from toolkit.manifest import MANIFEST_NAME, Manifest, fingerprint, writer_options_for
from toolkit.pipeline import PipelineOptions

from .conftest import SAMPLES

FAST = ["--no-diarize", "--translate-to", "none", "--no-progress"]
FORMATS = ("html", "json", "srt", "tsv", "txt", "vtt")  # the default formats, sorted
ENV = {**os.environ, "TOOLKIT_OFFLINE": "1"}


def run_cli(*args: str, timeout: float = 300) -> tuple[subprocess.CompletedProcess, float]:
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "toolkit", "transcribe", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env=ENV)
    return proc, time.perf_counter() - started


def errors(proc: subprocess.CompletedProcess) -> list[str]:
    return [line for line in proc.stderr.splitlines() if line.startswith("toolkit: error:")]


def manifest(outdir: Path) -> dict[str, dict]:
    lines = (outdir / MANIFEST_NAME).read_text(encoding="utf-8").splitlines()
    return {Path(r["path"]).name: r for r in map(json.loads, lines)}


def comparable(path: Path) -> dict:
    data = json.loads(path.read_text(encoding="utf-8"))
    data.pop("timings")
    data.pop("created")
    return data


@pytest.fixture(scope="module")
def mixed_dir(tmp_path_factory, bad_inputs) -> Path:
    """Two samples, a text file named .mp4, a video without audio, a zero-byte file."""
    folder = tmp_path_factory.mktemp("mixed")
    shutil.copy(SAMPLES / "azeri_music.mp4", folder / "a.mp4")
    shutil.copy(SAMPLES / "azeri_music.mp4", folder / "b.mp4")
    for name in ("text", "silent", "empty"):
        shutil.copy(bad_inputs[name], folder / f"{name}.mp4")
    (folder / "notes.txt").write_text("not an input\n")
    return folder


@pytest.fixture(scope="module")
def first_run(mixed_dir, tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    out = tmp_path_factory.mktemp("out")
    proc, _ = run_cli(mixed_dir, "-o", out, *FAST)
    return proc, out


def test_batch_reports_every_bad_file_and_keeps_going(first_run):
    proc, out = first_run
    assert proc.returncode == 1, proc.stderr
    lines = errors(proc)
    assert len(lines) == 3, proc.stderr
    assert any("text.mp4: not a media file" in e for e in lines)
    assert any("silent.mp4: no audio stream" in e for e in lines)
    assert any("empty.mp4: empty file" in e for e in lines)
    assert "2 done, 3 failed, 0 skipped" in proc.stderr
    for stem in ("a", "b"):
        assert sorted(p.name for p in out.glob(f"{stem}.*")) == [f"{stem}.{x}" for x in FORMATS]
        data = json.loads((out / f"{stem}.json").read_text(encoding="utf-8"))
        assert data["segments"] and all(s["language"] == "az" for s in data["segments"])
    records = manifest(out)
    assert sorted(records) == ["a.mp4", "b.mp4", "empty.mp4", "silent.mp4", "text.mp4"]
    assert {n: r["status"] for n, r in records.items()} == {
        "a.mp4": "done", "b.mp4": "done", "empty.mp4": "failed", "silent.mp4": "failed", "text.mp4": "failed"}
    assert records["a.mp4"]["sha256"] == records["b.mp4"]["sha256"] and len(records["a.mp4"]["sha256"]) == 64
    assert records["a.mp4"]["fingerprint"] and records["a.mp4"]["timings"]["total"] > 0
    assert sorted(records["a.mp4"]["outputs"]) == [f"a.{x}" for x in FORMATS]
    assert "empty file" in records["empty.mp4"]["error"] and records["empty.mp4"]["outputs"] == []


def test_rerun_skips_finished_files_fast(first_run, mixed_dir):
    _, out = first_run
    proc, wall = run_cli(mixed_dir, "-o", out, *FAST)
    assert proc.returncode == 1  # the broken inputs are still broken, and still said so
    assert len(errors(proc)) == 3
    assert "0 done, 3 failed, 2 skipped" in proc.stderr, proc.stderr
    assert wall < 5.0, f"re-running a finished batch took {wall:.1f} s"
    records = manifest(out)
    assert records["a.mp4"]["status"] == records["b.mp4"]["status"] == "skipped"
    assert len((out / MANIFEST_NAME).read_text().splitlines()) == 5  # compacted: one line per input


def test_overwrite_and_shaping_options_reprocess(first_run, mixed_dir, tmp_path):
    _, out = first_run
    out2 = tmp_path / "moved"
    shutil.copytree(out, out2)  # outputs are recorded relative to OUTDIR, so a moved folder still resumes
    a = mixed_dir / "a.mp4"
    proc, _ = run_cli(a, "-o", out2, *FAST)
    assert proc.returncode == 0 and "0 done, 0 failed, 1 skipped" in proc.stderr, proc.stderr
    before = (out2 / "a.json").stat().st_mtime_ns
    proc, _ = run_cli(a, "-o", out2, "--overwrite", *FAST)
    assert proc.returncode == 0 and "1 done, 0 failed, 0 skipped" in proc.stderr, proc.stderr
    assert (out2 / "a.json").stat().st_mtime_ns > before
    # The candidate languages shape the transcript: a different set is a different result.
    proc, _ = run_cli(a, "-o", out2, "--languages", "az,ru", *FAST)
    assert proc.returncode == 0 and "1 done, 0 failed, 0 skipped" in proc.stderr, proc.stderr
    assert json.loads((out2 / "a.json").read_text())["languages"] == ["az", "ru"]
    # Speed knobs do not: other thread counts or jobs reuse the outputs.
    proc, wall = run_cli(a, "-o", out2, "--languages", "az,ru", "--cpu-threads", "1", "--jobs", "2", *FAST)
    assert proc.returncode == 0 and "0 done, 0 failed, 1 skipped" in proc.stderr, proc.stderr


def test_ray_engine_matches_local(first_run, mixed_dir, tmp_path):
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'toolkit[ray]'); CI installs it")
    _, local_out = first_run
    out = tmp_path / "ray"
    proc, wall = run_cli(mixed_dir, "-o", out, "--engine", "ray", *FAST, timeout=400)
    assert proc.returncode == 1, proc.stderr
    assert len(errors(proc)) == 3 and "2 done, 3 failed, 0 skipped" in proc.stderr, proc.stderr
    for stem in ("a", "b"):
        assert comparable(out / f"{stem}.json") == comparable(local_out / f"{stem}.json")
        for ext in ("srt", "tsv", "txt", "vtt"):
            assert (out / f"{stem}.{ext}").read_text() == (local_out / f"{stem}.{ext}").read_text()
    statuses = {n: r["status"] for n, r in manifest(out).items()}
    assert statuses == {"a.mp4": "done", "b.mp4": "done", "empty.mp4": "failed", "silent.mp4": "failed",
                        "text.mp4": "failed"}


def test_ray_missing_is_a_clear_error(monkeypatch):
    import toolkit.ray_engine as ray_engine

    monkeypatch.setitem(sys.modules, "ray", None)  # what an install without the extra looks like
    with pytest.raises(ray_engine.RayNotInstalledError, match=r"pip install 'toolkit\[ray\]'"):
        ray_engine.import_ray()


def test_library_without_models(tmp_path, bad_inputs):
    """Failures come back as results, recorded in the manifest, and no model is loaded for them."""
    results = list(transcribe_many([bad_inputs["text"], bad_inputs["empty"], tmp_path / "missing.mp4"],
                                   tmp_path / "out", PipelineOptions(diarize=False, translate_to=None)))
    assert [r.status for r in results] == ["failed"] * 3
    by_name = {Path(r.path).name: r for r in results}  # unreadable inputs come before decoded ones
    assert "missing.mp4: no such file" in by_name["missing.mp4"].error
    assert len(Manifest(tmp_path / "out").records) == 3


def test_fingerprint_covers_what_shapes_outputs():
    base = PipelineOptions()
    fp = fingerprint(base, ["json"], writer_options_for(base))
    assert fp == fingerprint(PipelineOptions(cpu_threads=3), ["json"], writer_options_for(base))
    assert fp != fingerprint(PipelineOptions(languages=("az", "ru")), ["json"], writer_options_for(base))
    assert fp != fingerprint(base, ["json", "srt"], writer_options_for(base))
    assert fp != fingerprint(base, ["json"], writer_options_for(base, subtitles="both"))


def test_iter_inputs_walks_folders_once(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "x.wav").write_bytes(b"")
    (tmp_path / "y.mp4").write_bytes(b"")
    (tmp_path / "y.json").write_text("{}")
    (tmp_path / ".hidden.mp4").write_bytes(b"")
    found = list(iter_inputs([tmp_path, tmp_path / "y.mp4"]))
    assert [p.name for p in found] == ["x.wav", "y.mp4"]


def test_stems_of_earlier_runs_stay_theirs(tmp_path):
    """Two inputs named clip.mp4 in different folders, given in separate runs, never share outputs."""
    day1, day2 = tmp_path / "day1" / "clip.mp4", tmp_path / "day2" / "clip.mp4"
    manifest = Manifest(tmp_path / "out")
    assert _assign_stems([day1], manifest) == ["clip"]
    manifest.records[os.path.abspath(day1)] = {"stem": "clip"}
    assert _assign_stems([day2], manifest) == ["clip-2"]  # run 2 alone must not take day1's name
    manifest.records[os.path.abspath(day2)] = {"stem": "clip-2"}
    assert _assign_stems([day1], manifest) == ["clip"]
    assert _assign_stems([day2, day1], manifest) == ["clip-2", "clip"]  # order of inputs does not matter
