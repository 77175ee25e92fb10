#!/usr/bin/env python3
"""Benchmark the toolkit against plain faster-whisper (the peers) and the oracle, on the samples.

Every system runs as its own process on the same model, so wall time includes model loading
for both, and peak memory (max RSS) is that process's own. Runs are paired (toolkit, peer,
toolkit, peer, ...) so that load on the machine hits both alike; the speed figure is the
median of the per-pair ratios toolkit/peer (<= 1.0 means the toolkit is no slower). The peers
are ../shared/bench/peer_faster_whisper.py (faster-whisper's transcribe, as a user runs it) and
peer_batched.py (its BatchedInferencePipeline, the speed yardstick); the oracle is oracle.py.
From a clone without ../shared/bench the toolkit alone is run and scored, and the table says so.

Usage:
  scripts/benchmark.py [SAMPLE ...] [--repeats N] [--oracle] [--no-peer] [--profile]
                       [--no-batched | --batched-only]
                       [--long-minutes M [--long-spread M] [--long-only] [--peer-limit X]]
                       [--device cpu|cuda]
                       [--json OUT.json] [-- extra toolkit options]
The long input is a video (MKV: a still picture and the samples' audio laid end to end, as
16-bit PCM so that its clock stays exact); toolkit and peer run once each on it. With
--long-spread M the samples come once every M minutes, with low noise between (hours of media,
little speech: memory against length).
Scores come from `toolkit.evaluate` (the `eval` extra; it agrees with ../shared/bench/score.py to
3 decimals): CER per language, language accuracy per turn, DER, speaker count, chrF of the
English translation per source language, words outside turns, boundary error.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
BENCH = ROOT.parent / "shared" / "bench"


class GpuMemoryPeak:
    """Peak GPU memory in use while a child runs, over what was in use before (nvidia-smi, 5 Hz)."""

    def __init__(self, enabled: bool):
        self.enabled = enabled and shutil.which("nvidia-smi") is not None
        self.peak_mib = 0.0

    @staticmethod
    def used_mib() -> float:
        out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True).stdout.split()
        return sum(float(x) for x in out) if out else 0.0

    def __enter__(self) -> GpuMemoryPeak:
        if self.enabled:
            self._base, self._stop = self.used_mib(), threading.Event()
            self._thread = threading.Thread(target=self._poll, daemon=True)
            self._thread.start()
        return self

    def _poll(self) -> None:
        while not self._stop.wait(0.2):
            self.peak_mib = max(self.peak_mib, self.used_mib() - self._base)

    def __exit__(self, *exc) -> None:
        if self.enabled:
            self._stop.set()
            self._thread.join()


GPU = {"on": False}  # set by --device cuda


def run_measured(cmd: list[str], timeout: float | None = None) -> tuple[float, float, subprocess.CompletedProcess]:
    """(wall seconds, peak RSS in MiB, result) of one child process, its own rusage via wait4;
    on a GPU run the child's peak GPU memory is added to the result as `gpu_mib`. A child still
    running after `timeout` seconds is killed; `result.timed_out` says so."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err, \
            GpuMemoryPeak(GPU["on"]) as gpu:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, text=True)
        killer = threading.Timer(timeout, proc.kill) if timeout else None
        if killer:
            killer.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        if killer:
            killer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        result = subprocess.CompletedProcess(cmd, proc.returncode, out.read(), err.read())
    result.gpu_mib = gpu.peak_mib if gpu.enabled else None
    result.timed_out = bool(timeout) and wall >= timeout
    return wall, usage.ru_maxrss / 1024, result  # Linux reports KiB


def score(truth: Path, hyp: Path) -> dict:
    from toolkit.evaluate import evaluate

    return evaluate(truth, hyp).to_dict()


def model_dir() -> str:
    from toolkit.models import whisper_model_path

    return str(whisper_model_path("base"))


def toolkit_cmd(media: Path, outdir: Path, extra: list[str]) -> list[str]:
    device = ["--device", "cuda"] if GPU["on"] else []
    return [sys.executable, "-m", "toolkit", "transcribe", str(media), "-o", str(outdir), "--formats", "json",
            "--no-progress", *device, *extra]


PEERS = {"peer": "peer_faster_whisper.py", "batched": "peer_batched.py"}  # name -> script in BENCH


def peer_cmd(media: Path, mdir: str, out_json: Path, peer: str = "peer") -> list[str]:
    device = ["--device", "cuda", "--compute-type", "float16"] if GPU["on"] else []
    return [sys.executable, str(BENCH / PEERS[peer]), str(media), mdir, str(out_json), *device]


def build_long_input(minutes: float, folder: Path, spread: float = 0) -> tuple[Path, Path]:
    """The samples' audio laid end to end until `minutes` long, and the matching truth file.

    With `spread` (minutes), each `spread`-minute block holds the samples once, then low noise
    (-60 dBFS) to its end: hours of media for extraction, VAD and every per-file structure, with
    a fixed share of speech to decode. Each sample is decoded once and the copies are joined at
    exact sample offsets (a 16 kHz WAV written as it goes), so the joined truth's times stay exact.
    """
    import wave

    import numpy as np

    from toolkit.media import SAMPLE_RATE, extract_audio

    sources = sorted(SAMPLES.glob("*.mp4"))
    clips = {p: (np.clip(extract_audio(p) * 32768, -32768, 32767).astype("<i2").tobytes(),
                 json.loads(p.with_suffix(".truth.json").read_text(encoding="utf-8"))) for p in sources}
    stem = f"long_{int(minutes)}min" + (f"_every{int(spread)}min" if spread else "")
    wav, truth_path = folder / f"{stem}.wav", folder / f"{stem}.truth.json"
    offset, turns, speakers = 0.0, [], set()
    noise = np.random.default_rng(0)
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        while offset < minutes * 60:
            block_end = min(minutes * 60, offset + spread * 60)
            for data, truth in clips.values():
                w.writeframes(data)
                for t in truth["turns"]:
                    turns.append({**t, "start": t["start"] + offset, "end": t["end"] + offset})
                speakers.update(truth["speakers"])
                offset += len(data) / 2 / SAMPLE_RATE
            while spread and (n := int(min(60.0, block_end - offset) * SAMPLE_RATE)) > 0:
                w.writeframes(np.round(noise.standard_normal(n) * 33).astype("<i2").tobytes())
                offset += n / SAMPLE_RATE
    out = wav.with_suffix(".mkv")
    # -t as well as -shortest: x264's lookahead let the 1 fps picture run ~50 s past the audio, which
    # the toolkit rightly flagged as audio cut short
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i", "color=c=gray:s=320x240:r=1",
                    "-i", str(wav), "-map", "0:v", "-map", "1:a", "-shortest", "-t", f"{offset:.3f}", "-c:v", "libx264",
                    "-tune", "stillimage", "-c:a", "pcm_s16le", str(out)], check=True)
    wav.unlink()
    truth_path.write_text(json.dumps({"media": out.name, "duration": offset, "speakers": sorted(speakers),
                                      "languages": ["az", "ru"], "turns": turns}, ensure_ascii=False))
    return out, truth_path


def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def fmt(x, digits=3):
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("samples", nargs="*", help="sample names (default: every samples/*.truth.json)")
    ap.add_argument("--repeats", type=int, default=1, help="paired runs per sample (median ratio)")
    ap.add_argument("--oracle", action="store_true", help="also run ../shared/bench/oracle.py")
    ap.add_argument("--no-peer", action="store_true", help="skip the peers (quality of the toolkit only)")
    ap.add_argument("--no-batched", action="store_true", help="skip the batched peer (peer_batched.py)")
    ap.add_argument("--batched-only", action="store_true",
                    help="only the batched peer, the speed yardstick (plain faster-whisper takes minutes)")
    ap.add_argument("--profile", action="store_true", help="print the toolkit's stage timings per sample")
    ap.add_argument("--long-minutes", type=float, default=0, help="also time a concatenated input this long")
    ap.add_argument("--long-only", action="store_true", help="only the long input, not the samples")
    ap.add_argument("--long-input", type=Path, metavar="MKV",
                    help="a long input built before (its .truth.json beside it) instead of a new one: one input "
                         "for several runs or machines (a GPU machine may have no ffmpeg to build it)")
    ap.add_argument("--long-spread", type=float, default=0, metavar="M",
                    help="the long input holds the samples once every M minutes, low noise between")
    ap.add_argument("--peer-limit", type=float, default=0, metavar="X",
                    help="stop the peer on the long input once it has run X times the toolkit's time "
                         "(the ratio is then reported as below 1/X); 0: let it finish")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                    help="cuda: toolkit and peer on the GPU in float16, and their peak GPU memory")
    ap.add_argument("--json", type=Path, help="write all numbers here")
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)
    args, extra = ap.parse_args(argv[:split]), argv[split + 1:]  # after "--": options for the toolkit

    GPU["on"] = args.device == "cuda"
    skipped = {"batched"} if args.no_batched else {"peer"} if args.batched_only else set()
    peers = [] if args.no_peer else [p for p in PEERS if (BENCH / PEERS[p]).is_file() and p not in skipped]
    if not args.no_peer and not peers:
        print(f"note: no peers at {BENCH} (a plain clone): the toolkit alone is run and scored\n")
    if args.oracle and not (BENCH / "oracle.py").is_file():
        print(f"note: no oracle at {BENCH}: --oracle ignored\n")
        args.oracle = False
    args.peers = peers
    names = args.samples or sorted(p.name[: -len(".truth.json")] for p in SAMPLES.glob("*.truth.json"))
    work = Path(tempfile.mkdtemp(prefix="toolkit-bench-"))
    mdir = model_dir()
    rows, report = [], {"machine": f"{os.cpu_count()} cores", "samples": {}}
    for name in [] if args.long_only else names:
        media, truth = SAMPLES / f"{name}.mp4", SAMPLES / f"{name}.truth.json"
        duration = json.loads(truth.read_text())["duration"]
        walls, rss, gpu = [], [], []
        ratios: dict[str, list[float]] = {p: [] for p in peers}
        peer_walls: dict[str, list[float]] = {p: [] for p in peers}
        for i in range(args.repeats):
            out = work / f"toolkit{i}"
            wall, peak, proc = run_measured(toolkit_cmd(media, out, extra))
            if proc.returncode != 0:
                sys.exit(f"toolkit failed on {name}:\n{proc.stderr[-2000:]}")
            walls.append(wall)
            rss.append(peak)
            gpu.append(proc.gpu_mib or 0.0)
            for peer in peers:
                peer_json = work / f"{peer}_{name}_{i}.json"
                pwall, _, pproc = run_measured(peer_cmd(media, mdir, peer_json, peer))
                if pproc.returncode != 0:
                    sys.exit(f"{peer} failed on {name}:\n{pproc.stderr[-2000:]}")
                peer_walls[peer].append(pwall)
                ratios[peer].append(wall / pwall)
        hyp = work / "toolkit0" / f"{name}.json"
        doc = json.loads(hyp.read_text())
        entry = {"duration": duration, "toolkit": {"score": score(truth, hyp), "wall_s": statistics.median(walls),
                                                   "peak_rss_mib": max(rss), "timings": doc.get("timings", {})}}
        if GPU["on"]:
            entry["toolkit"]["peak_gpu_mib"] = max(gpu)
        rows.append((name, "toolkit", entry["toolkit"]["score"], entry["toolkit"]["wall_s"], duration))
        for peer in peers:
            entry[peer] = {"score": score(truth, work / f"{peer}_{name}_0.json"),
                           "wall_s": statistics.median(peer_walls[peer])}
            entry["paired_ratio" if peer == "peer" else f"paired_ratio_{peer}"] = statistics.median(ratios[peer])
            rows.append((name, peer, entry[peer]["score"], entry[peer]["wall_s"], duration))
        if args.oracle:
            ojson = work / f"oracle_{name}.json"
            owall, _, oproc = run_measured([sys.executable, str(BENCH / "oracle.py"), str(truth), mdir, str(ojson)])
            if oproc.returncode == 0:
                entry["oracle"] = {"score": score(truth, ojson), "wall_s": owall}
                rows.append((name, "oracle", entry["oracle"]["score"], owall, duration))
        report["samples"][name] = entry

    if rows:
        print_samples(rows, report, args)
    if args.long_minutes or args.long_input:
        report["long"] = run_long(args, work, mdir, extra)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


def print_samples(rows: list, report: dict, args: argparse.Namespace) -> None:
    header = ("| sample | system | CER ru | CER az | lang acc | DER | speakers | chrF ru | chrF az | "
              "words outside | boundary ms | wall s | RTF |")
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for name, system, s, wall, duration in rows:
        chrf = s.get("chrf_en_by_language") or {}
        spk = s.get("speakers") or {}
        print(f"| {name} | {system} | {fmt(s['cer'].get('ru'))} | {fmt(s['cer'].get('az'))} | "
              f"{fmt(s['lid_accuracy'], 2)} | {fmt(s.get('der'))} | {spk.get('hypothesis')}/{spk.get('truth')} | "
              f"{fmt(chrf.get('ru'), 1)} | {fmt(chrf.get('az'), 1)} | {s['words_outside_turns']} | "
              f"{fmt(s.get('boundary_ms'))} | {wall:.1f} | {duration / wall:.2f} |")
    if args.peers:
        gpu_head, gpu_rule = (" toolkit peak GPU MiB |", "---|") if GPU["on"] else ("", "")
        batched = "batched" in args.peers
        b_head, b_rule = (" paired ratio toolkit/batched |", "---|") if batched else ("", "")
        print(f"\n| sample | paired ratio toolkit/peer (median) |{b_head} toolkit peak RSS MiB |{gpu_head} "
              "translate s | diarize s |")
        print(f"|---|---|{b_rule}---|{gpu_rule}---|---|")
        for name, e in report["samples"].items():
            t = e["toolkit"]["timings"]
            gpu = f" {e['toolkit']['peak_gpu_mib']:.0f} |" if GPU["on"] else ""
            ratio_b = f" {e['paired_ratio_batched']:.2f} |" if batched else ""
            print(f"| {name} | {fmt(e.get('paired_ratio'), 2)} |{ratio_b} {e['toolkit']['peak_rss_mib']:.0f} |{gpu} "
                  f"{fmt(t.get('translate'), 1)} | {fmt(t.get('diarize'), 2)} |")
    if args.profile:
        print("\nStage timings (s) per sample, and each stage's share of the toolkit's wall time:")
        for name, e in report["samples"].items():
            t, wall = e["toolkit"]["timings"], e["toolkit"]["wall_s"]
            parts = ", ".join(f"{k} {v:.2f} ({100 * v / wall:.0f}%)" for k, v in t.items() if k != "total")
            print(f"  {name} (wall {wall:.1f} s): {parts}")


def run_long(args: argparse.Namespace, work: Path, mdir: str, extra: list[str]) -> dict:
    """Toolkit, then peer, once each on the long input; each is scored and printed as it ends."""
    if args.long_input:
        media, truth = args.long_input, args.long_input.with_suffix(".truth.json")
        if not (media.is_file() and truth.is_file()):
            sys.exit(f"--long-input needs {media} and its truth file {truth}")
    else:
        media, truth = build_long_input(args.long_minutes, work, args.long_spread)
    audio_s = json.loads(truth.read_text())["duration"]
    print(f"\nLong input: {media.name}, {audio_s / 60:.1f} min of audio", flush=True)
    result: dict = {"minutes": audio_s / 60}
    systems = [("toolkit", toolkit_cmd(media, work / "long", extra), work / "long" / f"{media.stem}.json")]
    for peer in args.peers:
        peer_json = work / f"{peer}_long.json"
        systems.append((peer, peer_cmd(media, mdir, peer_json, peer), peer_json))
    for system, cmd, hyp in systems:
        # the peer need only run until it is clearly slower: its time so far then bounds the ratio
        limit = args.peer_limit * result["toolkit"]["wall_s"] if system != "toolkit" and args.peer_limit else None
        wall, peak, proc = run_measured(cmd, limit)
        if proc.timed_out:
            result[system] = {"wall_s_at_least": wall, "peak_rss_mib": peak, "ok": False}
            result[f"ratio_{system}_at_most"] = result["toolkit"]["wall_s"] / wall
            print(f"  {system}: stopped after {wall:.0f} s ({args.peer_limit:g}x the toolkit's time), unfinished, "
                  f"peak RSS {peak:.0f} MiB so far; ratio toolkit/{system} < {result[f'ratio_{system}_at_most']:.2f}",
                  flush=True)
            continue
        entry = result[system] = {"wall_s": wall, "peak_rss_mib": peak, "ok": proc.returncode == 0,
                                  "peak_gpu_mib": proc.gpu_mib}
        gpu = f"peak GPU memory {proc.gpu_mib:.0f} MiB, " if proc.gpu_mib is not None else ""
        print(f"  {system}: wall {wall:.0f} s (RTF {audio_s / wall:.2f}), peak RSS {peak:.0f} MiB, {gpu}"
              f"{'ok' if entry['ok'] else 'FAILED: ' + proc.stderr[-500:]}", flush=True)
        if not entry["ok"]:
            continue
        s = entry["score"] = score(truth, hyp)
        print(f"    CER {s['cer']}, language accuracy {s['lid_accuracy']}, DER {s['der']}, speakers "
              f"{s['speakers']['hypothesis']}/{s['speakers']['truth']}, chrF {s['chrf_en_by_language']}, "
              f"words outside turns {s['words_outside_turns']}", flush=True)
        if system == "toolkit":
            entry["timings"] = json.loads(hyp.read_text())["timings"]
            print(f"    stage timings: {entry['timings']}", flush=True)
    for peer in args.peers:
        if result.get(peer, {}).get("ok") and result["toolkit"]["ok"]:
            result[f"ratio_{peer}"] = result["toolkit"]["wall_s"] / result[peer]["wall_s"]
            print(f"  ratio toolkit/{peer}: {result[f'ratio_{peer}']:.2f}", flush=True)
    return result


if __name__ == "__main__":
    main()
