#!/usr/bin/env python3
"""Calibrate voice matching and linking on files with known voices.

For every media file with a `<stem>.truth.json` and an entry in a `voices.json` beside it
(default: the public samples and the dev scenes), this runs the pipeline's own speaker stages
(VAD, `speaker_turns`, `voice_prints`; Whisper is not needed for voices), maps each hypothesis
speaker to its truth label by overlap and the label to a voice with `voices.json`, then prints:

- the same voice's cosines by recording condition (for scenes whose truth records it);
- the pairwise precision/recall of `linking.cluster` over the threshold, over cross-file
  (file, speaker) pairs inside one dataset (a voices.json): a pair is positive when both speakers
  are the same voice (a pitch-shifted variant of a voice is a different person); for the default
  method (average linkage inside a floor 0.02 below), complete and plain average linkage;
- naming: each voice enrolled from each file it is in, matched in every other file;
- with --short, how far prints of 2-16 s of speech scatter (for `WEAK_SECONDS`).

    python scripts/make_voice_scenes.py /tmp/voice-scenes --scenes 24 --seed 15   # optional, more data
    python scripts/calibrate_voices.py [--extra /tmp/voice-scenes] [--short]

Prints are cached (--cache, recomputed with --recompute), so the curves are cheap to redo.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
from itertools import combinations
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from toolkit.linking import LinkOptions, cluster  # noqa: E402
from toolkit.transcript import VoicePrint  # noqa: E402
from toolkit.voices import MATCH_THRESHOLD, WEAK_SECONDS, match_speakers, unit  # noqa: E402

DEFAULT_DIRS = [ROOT / "samples", ROOT.parent / "shared" / "samples" / "dev"]
VOICES_JSON = ROOT.parent / "shared" / "samples" / "dev" / "voices.json"
THRESHOLDS = [round(t, 2) for t in np.arange(0.70, 0.96, 0.01)]


def media_files(dirs: list[Path]) -> list[Path]:
    seen, out = set(), []
    for d in dirs:
        for path in sorted(d.glob("*.mp4")) + sorted(d.glob("*.wav")):
            if path.stem not in seen and path.with_suffix(".truth.json").is_file():
                seen.add(path.stem)
                out.append(path)
    return out


def dataset_of(path: Path) -> str:
    # the samples and the dev scenes share one voices.json, so one naming of voices
    return "samples" if path.parent in DEFAULT_DIRS else str(path.parent)


def load_voice_map(dirs: list[Path]) -> dict[str, dict[str, str]]:
    mapping: dict[str, dict[str, str]] = {}
    for path in [VOICES_JSON, *(d / "voices.json" for d in dirs)]:
        if path.is_file():
            mapping.update(json.loads(path.read_text(encoding="utf-8")))
    return mapping


def speaker_records(path: Path, voice_map: dict[str, str]) -> tuple[list[dict], float, float]:
    """(file, speaker, voice, seconds, purity, embedding, turns) per hypothesis speaker; voices time; speech."""
    from toolkit.media import load_media
    from toolkit.pipeline import PipelineOptions, speaker_turns
    from toolkit.vad import speech_regions
    from toolkit.voices import voice_prints

    _, audio = load_media(path)
    diarization, _ = speaker_turns(audio, speech_regions(audio), PipelineOptions(), lambda *a: None)
    turns = diarization.exclusive  # one speaker at a time, as the pipeline's prints use
    started = time.perf_counter()
    prints = voice_prints(audio, turns)
    spent = time.perf_counter() - started
    truth = json.loads(path.with_suffix(".truth.json").read_text(encoding="utf-8"))
    out = []
    for speaker, voice in prints.items():
        overlap: dict[str, float] = {}
        own = [t for t in turns if t.speaker == speaker]
        for t in own:
            for u in truth["turns"]:
                o = min(t.end, u["end"]) - max(t.start, u["start"])
                if o > 0:
                    overlap[u["speaker"]] = overlap.get(u["speaker"], 0.0) + o
        label = max(overlap, key=overlap.get) if overlap else None
        out.append({"file": path.stem, "speaker": speaker, "label": label,
                    "voice": voice_map.get(label, f"{path.stem}:{label}"),
                    "seconds": voice.seconds, "purity": overlap.get(label, 0.0) / max(voice.seconds, 1e-9),
                    "embedding": [float(x) for x in voice.embedding],
                    "turns": [[t.start, t.end] for t in own]})
    return out, spent, sum(t.end - t.start for t in turns)


def comparable(a: dict, b: dict) -> bool:
    """Cross-file pairs inside one dataset: voice names are only defined within one voices.json."""
    return a["file"] != b["file"] and a["dataset"] == b["dataset"]


def link_labels(records: list[dict], options: LinkOptions) -> np.ndarray:
    """A person index per record, each dataset linked on its own."""
    labels = np.zeros(len(records), dtype=int)
    for dataset in sorted({r["dataset"] for r in records}):
        rows_in = [i for i, r in enumerate(records) if r["dataset"] == dataset]
        sub = [records[i] for i in rows_in]
        files = sorted({r["file"] for r in sub})
        found = cluster(np.array([r["embedding"] for r in sub], dtype=np.float32),
                        np.array([files.index(r["file"]) for r in sub]), np.array([r["seconds"] for r in sub]), options)
        labels[rows_in] = found + labels.max() + 1
    return labels


def pair_curve(records: list[dict], thresholds: list[float], options: LinkOptions, floor_gap: float) -> list[tuple]:
    """Each dataset linked on its own (as one OUTDIR would be); pairs counted over all of them."""
    truth_pairs = {(i, j) for i, j in combinations(range(len(records)), 2)
                   if comparable(records[i], records[j]) and records[i]["voice"] == records[j]["voice"]}
    rows = []
    for t in thresholds:
        labels = link_labels(records, replace(options, threshold=t, floor=max(t - floor_gap, 1e-3)))
        hyp = {(i, j) for i, j in combinations(range(len(records)), 2)
               if comparable(records[i], records[j]) and labels[i] == labels[j]}
        tp = len(hyp & truth_pairs)
        precision = tp / len(hyp) if hyp else 1.0
        recall = tp / len(truth_pairs) if truth_pairs else 1.0
        wrong = sorted({tuple(sorted((records[i]["voice"], records[j]["voice"]))) for i, j in hyp - truth_pairs})
        rows.append((t, precision, recall, len(hyp), tp, len(truth_pairs), wrong))
    return rows


def naming_curve(records: list[dict], thresholds: list[float]) -> list[tuple]:
    """Enroll each (voice, file) print alone; name the speakers of every other file with it."""
    by_file: dict[str, list[dict]] = {}
    for r in records:
        by_file.setdefault(r["file"], []).append(r)
    rows = []
    for t in thresholds:
        tp = fp = fn = 0
        for enrolled in records:
            known = {"X": VoicePrint(np.array(enrolled["embedding"], dtype=np.float32), enrolled["seconds"], "ge2e")}
            for speakers in by_file.values():
                if not comparable(enrolled, speakers[0]):
                    continue
                voices = {r["speaker"]: VoicePrint(np.array(r["embedding"], dtype=np.float32), r["seconds"], "ge2e")
                          for r in speakers}
                named = set(match_speakers(voices, known, t))
                should = {r["speaker"] for r in speakers if r["voice"] == enrolled["voice"]}
                tp += len(named & should)
                fp += len(named - should)
                fn += len(should - named) if not (named & should) else 0  # one name per file
        rows.append((t, tp / max(tp + fp, 1), tp / max(tp + fn, 1), tp, fp, fn))
    return rows


def print_conditions(records: list[dict], same: list[tuple], paths: dict[str, Path]) -> None:
    """Same-voice cosines by the two files' recording conditions (scenes record them in their truth)."""
    conditions = {}
    for stem, path in paths.items():
        c = json.loads(path.with_suffix(".truth.json").read_text(encoding="utf-8")).get("conditions")
        if c:
            conditions[stem] = "telephone+reverb" if c.get("telephone_reverb") else f"bed:{c.get('bed')}"
    labels = link_labels(records, LinkOptions())
    by_pair: dict[tuple, list[tuple[float, bool]]] = {}
    for s, i, j in same:
        a, b = conditions.get(records[i]["file"]), conditions.get(records[j]["file"])
        if a and b:
            by_pair.setdefault(tuple(sorted((a, b))), []).append((s, bool(labels[i] == labels[j])))
    if by_pair:
        print("\nsame-voice cosine by the two files' conditions: pairs, lowest, median, highest, linked by default")
        for key, values in sorted(by_pair.items()):
            cosines = [c for c, _ in values]
            print(f"  {' / '.join(key):36s} {len(values):4d}  {min(cosines):.3f}  {np.median(cosines):.3f}  "
                  f"{max(cosines):.3f}  {sum(linked for _, linked in values):4d}")


def scatter_of_short_prints(records: list[dict], paths: dict[str, Path]) -> None:
    """Prints of the first 2, 4, 8, 16 s of each speaker against whole prints from other files."""
    from toolkit.media import load_media
    from toolkit.pipeline import Turn
    from toolkit.voices import voice_prints

    whole = unit(np.array([r["embedding"] for r in records]))
    print("\nshort prints: seconds, lowest same-voice cosine, highest other-voice cosine (other files)")
    stats: dict[float, tuple[list[float], list[float]]] = {d: ([], []) for d in (2.0, 4.0, 8.0, 16.0)}
    for file in sorted({r["file"] for r in records}):
        _, audio = load_media(paths[file])
        for r in (r for r in records if r["file"] == file):
            for d in stats:
                if r["seconds"] < d * 1.5:
                    continue
                turns, left = [], d
                for s, e in r["turns"]:
                    if left <= 0:
                        break
                    turns.append(Turn(s, min(e, s + left), "x"))
                    left -= min(e, s + left) - s
                short = voice_prints(audio, turns)["x"].embedding
                sims = whole @ short
                for k, o in enumerate(records):
                    if o["file"] != file:
                        stats[d][0 if o["voice"] == r["voice"] else 1].append(float(sims[k]))
    for d, (same, other) in stats.items():
        if same and other:
            print(f"  {d:4.0f} s  same >= {min(same):.3f} (5th pct {np.percentile(same, 5):.3f})  "
                  f"other <= {max(other):.3f} (99th pct {np.percentile(other, 99):.3f})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--extra", type=Path, action="append", default=[], help="more folders of scenes with truth")
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "toolkit-voice-calibration.json")
    ap.add_argument("--recompute", action="store_true")
    ap.add_argument("--short", action="store_true", help="also measure the scatter of short prints")
    args = ap.parse_args()

    dirs = DEFAULT_DIRS + args.extra
    paths = {p.stem: p for p in media_files(dirs)}
    voice_map = load_voice_map(dirs)
    cached = json.loads(args.cache.read_text()) if args.cache.is_file() and not args.recompute else {}
    records: list[dict] = []
    spent = speech = 0.0
    for stem, path in paths.items():
        if stem not in cached:
            found, s, sp = speaker_records(path, voice_map.get(stem, {}))
            cached[stem] = {"records": found, "voices_s": s, "speech_s": sp}
            args.cache.write_text(json.dumps(cached))
        records.extend({**r, "dataset": dataset_of(path)} for r in cached[stem]["records"])
        spent += cached[stem]["voices_s"]
        speech += cached[stem]["speech_s"]
    print(f"{len(paths)} files, {len(records)} speakers, {speech:.0f} s of speech; "
          f"voice prints took {spent:.1f} s ({60 * spent / max(speech, 1e-9):.2f} s per minute of speech)")
    for r in records:
        print(f"  {r['file']:28s} {r['speaker']} -> {r['label']!s:4s} {r['voice']:16s} {r['seconds']:5.1f} s  "
              f"purity {r['purity']:.2f}")

    emb = unit(np.array([r["embedding"] for r in records]))
    sims = emb @ emb.T
    same, other = [], []
    for i, j in combinations(range(len(records)), 2):
        if comparable(records[i], records[j]):
            (same if records[i]["voice"] == records[j]["voice"] else other).append((float(sims[i, j]), i, j))
    print(f"\ncross-file pairs: {len(same)} same-voice (lowest {min(same)[0]:.3f}), "
          f"{len(other)} other-voice (highest {max(other)[0]:.3f})")
    for s, i, j in sorted(other, reverse=True)[:8]:
        a, b = records[i], records[j]
        print(f"  other {s:.3f}  {a['file']}:{a['voice']} ~ {b['file']}:{b['voice']}")
    print_conditions(records, same, paths)

    options = LinkOptions()
    gap = round(options.threshold - options.floor, 3)
    variants = {f"default (floor t-{gap:g})": gap, "complete (floor = t)": 0.0, "average (no floor)": 1.0}
    curves = {name: pair_curve(records, THRESHOLDS, options, g) for name, g in variants.items()}
    for dataset in sorted({r["dataset"] for r in records}):
        curves[f"default, {Path(dataset).name} only"] = pair_curve(
            [r for r in records if r["dataset"] == dataset], THRESHOLDS, options, gap)
    print(f"\nlinking: pairwise precision/recall over cross-file (file, speaker) pairs of one dataset; two speakers "
          f"of one file never linked; a print on < {options.weak_seconds:g} s needs +{options.weak_margin}")
    print("  t     " + "".join(f"{name:>28s}" for name in curves))
    for k, t in enumerate(THRESHOLDS):
        mark = "  <- default" if abs(t - options.threshold) < 1e-9 else ""
        print(f"  {t:.2f}  " + "".join(f"P {c[k][1]:.3f} R {c[k][2]:.3f}".rjust(28) for c in curves.values()) + mark)
    print("\nthe default's wrong merges (voices made one):")
    for t, _p, _r, n, tp, total, wrong in next(iter(curves.values())):
        print(f"  {t:.2f}  linked {n:4d} pairs, {tp:4d} right of {total:4d}  {' '.join('~'.join(w) for w in wrong)}")
    print("\nnaming from one enrolled file: threshold, precision, recall, named right, named wrong, missed")
    for t, p, r, tp, fp, fn in naming_curve(records, THRESHOLDS):
        mark = "  <- default" if abs(t - MATCH_THRESHOLD) < 1e-9 else ""
        print(f"  {t:.2f}  P {p:.3f}  R {r:.3f}  {tp:4d} {fp:4d} {fn:4d}{mark}")
    if args.short:
        scatter_of_short_prints(records, paths)
    print(f"\n(defaults: threshold {options.threshold}, floor {options.floor}, naming {MATCH_THRESHOLD}, "
          f"weak under {WEAK_SECONDS:g} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
