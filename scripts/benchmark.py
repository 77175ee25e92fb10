#!/usr/bin/env python3
"""Benchmark the toolkit against plain faster-whisper (the peer) and the oracle, on the samples.

Every system runs as its own process on the same model, so wall time includes model loading
for both, and peak memory (max RSS) is that process's own. Runs are paired (toolkit, peer,
toolkit, peer, ...) so that load on the machine hits both alike; the speed figure is the
median of the per-pair ratios toolkit/peer (<= 1.0 means the toolkit is no slower).

Usage:
  scripts/benchmark.py [SAMPLE ...] [--repeats N] [--oracle] [--no-peer] [--profile]
                       [--long-minutes M] [--json OUT.json] [-- extra toolkit options]
Scores come from the shared scorer (../shared/bench/score.py): CER per language, language
accuracy per turn, DER, speaker count, chrF of the English translation per source language,
words outside turns, boundary error.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
BENCH = ROOT.parent / "shared" / "bench"


def run_measured(cmd: list[str]) -> tuple[float, float, subprocess.CompletedProcess]:
    """(wall seconds, peak RSS in MiB, result) of one child process, its own rusage via wait4."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        result = subprocess.CompletedProcess(cmd, proc.returncode, out.read(), err.read())
    return wall, usage.ru_maxrss / 1024, result  # Linux reports KiB


def score(truth: Path, hyp: Path) -> dict:
    out = subprocess.run([sys.executable, str(BENCH / "score.py"), str(truth), str(hyp), "--json"],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def model_dir() -> str:
    from toolkit.models import whisper_model_path

    return str(whisper_model_path("base"))


def toolkit_cmd(media: Path, outdir: Path, extra: list[str]) -> list[str]:
    return [sys.executable, "-m", "toolkit", "transcribe", str(media), "-o", str(outdir), "--formats", "json",
            "--no-progress", *extra]


def build_long_input(minutes: float, folder: Path) -> tuple[Path, Path]:
    """The samples' audio laid end to end until `minutes` long, and the matching truth file.

    Each sample is decoded once with ffmpeg and the copies are joined at exact sample offsets
    (a 16 kHz WAV), so the concatenated truth's turn times stay exact over hours.
    """
    import wave

    import numpy as np

    from toolkit.media import SAMPLE_RATE, extract_audio

    sources = sorted(SAMPLES.glob("*.mp4"))
    clips = {p: (np.clip(extract_audio(p) * 32768, -32768, 32767).astype("<i2").tobytes(),
                 json.loads(p.with_suffix(".truth.json").read_text(encoding="utf-8"))) for p in sources}
    out, truth_path = folder / f"long_{int(minutes)}min.wav", folder / f"long_{int(minutes)}min.truth.json"
    offset, turns, speakers = 0.0, [], set()
    with wave.open(str(out), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        while offset < minutes * 60:
            for data, truth in clips.values():
                w.writeframes(data)
                for t in truth["turns"]:
                    turns.append({**t, "start": t["start"] + offset, "end": t["end"] + offset})
                speakers.update(truth["speakers"])
                offset += len(data) / 2 / SAMPLE_RATE
    truth_path.write_text(json.dumps({"media": out.name, "duration": offset, "speakers": sorted(speakers),
                                      "languages": ["az", "ru"], "turns": turns}, ensure_ascii=False))
    return out, truth_path


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
    ap.add_argument("--no-peer", action="store_true", help="skip the peer (quality of the toolkit only)")
    ap.add_argument("--profile", action="store_true", help="print the toolkit's stage timings per sample")
    ap.add_argument("--long-minutes", type=float, default=0, help="also time a concatenated input this long")
    ap.add_argument("--json", type=Path, help="write all numbers here")
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)
    args, extra = ap.parse_args(argv[:split]), argv[split + 1:]  # after "--": options for the toolkit

    names = args.samples or sorted(p.name[: -len(".truth.json")] for p in SAMPLES.glob("*.truth.json"))
    work = Path(tempfile.mkdtemp(prefix="toolkit-bench-"))
    mdir = model_dir()
    rows, report = [], {"machine": f"{os.cpu_count()} cores", "samples": {}}
    for name in names:
        media, truth = SAMPLES / f"{name}.mp4", SAMPLES / f"{name}.truth.json"
        duration = json.loads(truth.read_text())["duration"]
        ratios, walls, peer_walls, rss = [], [], [], []
        for i in range(args.repeats):
            out = work / f"toolkit{i}"
            wall, peak, proc = run_measured(toolkit_cmd(media, out, extra))
            if proc.returncode != 0:
                sys.exit(f"toolkit failed on {name}:\n{proc.stderr[-2000:]}")
            walls.append(wall)
            rss.append(peak)
            if not args.no_peer:
                peer_json = work / f"peer_{name}_{i}.json"
                pwall, _, pproc = run_measured([sys.executable, str(BENCH / "peer_faster_whisper.py"), str(media),
                                                mdir, str(peer_json)])
                if pproc.returncode != 0:
                    sys.exit(f"peer failed on {name}:\n{pproc.stderr[-2000:]}")
                peer_walls.append(pwall)
                ratios.append(wall / pwall)
        hyp = work / "toolkit0" / f"{name}.json"
        doc = json.loads(hyp.read_text())
        entry = {"duration": duration, "toolkit": {"score": score(truth, hyp), "wall_s": statistics.median(walls),
                                                   "peak_rss_mib": max(rss), "timings": doc.get("timings", {})}}
        rows.append((name, "toolkit", entry["toolkit"]["score"], entry["toolkit"]["wall_s"], duration))
        if not args.no_peer:
            entry["peer"] = {"score": score(truth, work / f"peer_{name}_0.json"),
                             "wall_s": statistics.median(peer_walls)}
            entry["paired_ratio"] = statistics.median(ratios)
            rows.append((name, "peer", entry["peer"]["score"], entry["peer"]["wall_s"], duration))
        if args.oracle:
            ojson = work / f"oracle_{name}.json"
            owall, _, oproc = run_measured([sys.executable, str(BENCH / "oracle.py"), str(truth), mdir, str(ojson)])
            if oproc.returncode == 0:
                entry["oracle"] = {"score": score(truth, ojson), "wall_s": owall}
                rows.append((name, "oracle", entry["oracle"]["score"], owall, duration))
        report["samples"][name] = entry

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
    if not args.no_peer:
        print("\n| sample | paired ratio toolkit/peer (median) | toolkit peak RSS MiB | translate s | diarize s |")
        print("|---|---|---|---|---|")
        for name, e in report["samples"].items():
            t = e["toolkit"]["timings"]
            print(f"| {name} | {e['paired_ratio']:.2f} | {e['toolkit']['peak_rss_mib']:.0f} | "
                  f"{fmt(t.get('translate'), 1)} | {fmt(t.get('diarize'), 2)} |")
    if args.profile:
        print("\nStage timings (s) per sample, and each stage's share of the toolkit's wall time:")
        for name, e in report["samples"].items():
            t, wall = e["toolkit"]["timings"], e["toolkit"]["wall_s"]
            parts = ", ".join(f"{k} {v:.2f} ({100 * v / wall:.0f}%)" for k, v in t.items() if k != "total")
            print(f"  {name} (wall {wall:.1f} s): {parts}")
    if args.long_minutes:
        long_media, long_truth = build_long_input(args.long_minutes, work)
        wall, peak, proc = run_measured(toolkit_cmd(long_media, work / "long", extra))
        ok = proc.returncode == 0
        report["long"] = {"minutes": args.long_minutes, "wall_s": wall, "peak_rss_mib": peak, "ok": ok}
        print(f"\nLong input: {args.long_minutes:.0f} min of audio, wall {wall:.0f} s "
              f"(RTF {args.long_minutes * 60 / wall:.2f}), peak RSS {peak:.0f} MiB, {'ok' if ok else 'FAILED'}")
        if ok:
            hyp = work / "long" / f"{long_media.stem}.json"
            s = report["long"]["score"] = score(long_truth, hyp)
            report["long"]["timings"] = json.loads(hyp.read_text())["timings"]
            print(f"  CER {s['cer']}, language accuracy {s['lid_accuracy']}, DER {s['der']}, speakers "
                  f"{s['speakers']['hypothesis']}/{s['speakers']['truth']}, chrF {s['chrf_en_by_language']}, "
                  f"words outside turns {s['words_outside_turns']}")
            print(f"  stage timings: {report['long']['timings']}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
