#!/usr/bin/env python3
"""Fit the translation confidence (toolkit/translate/confidence.py) and say how well it ranks.

Runs the pipeline on the public samples and the dev scenes (../shared/samples, default options),
records the confidence model's inputs for every translated segment, and takes each truth turn's
chrF (as ../shared/bench/score.py computes it: the translations of the segments over the turn
against the turn's `translation_en`) as the target. Prints:
  - the fitted coefficients (a logistic model of chrF / 100; paste them into confidence.py),
  - Spearman(confidence, per-turn chrF) over every non-English turn: of the confidence in use
    now, of the fitted model on its own training data, and leave-one-file-out (each file scored
    by a model fitted on the other eight), and, with --before DIR, of the transcripts in DIR
    (e.g. written by an older version) on the same turns;
  - how many of the labelled wrong translations (tests/data/translation_labels.json) sit above the
    "reliable" line (confidence >= 0.5 and no flag), and how many correct ones are flagged.

  PYTHONPATH=. python scripts/calibrate_translation.py [--before DIR] [--save DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from scipy.optimize import minimize
from scipy.stats import spearmanr

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
sys.path.insert(0, str(SHARED / "bench"))
from score import chrf, overlap  # noqa: E402

NAMES = ["decoder_logprob", "source_logprob", "source_az"]


def media_files() -> list[Path]:
    samples = SHARED / "samples"
    return sorted(samples.glob("*.mp4")) + sorted((samples / "dev").glob("*.mp4"))


def turns_of(truth: dict, hyp: dict) -> list[tuple[dict, list[dict]]]:
    """(truth turn, the hypothesis segments score.py counts for it), for non-English turns with a reference."""
    out = []
    for t in truth["turns"]:
        if t["language"] == "en" or not t.get("translation_en"):
            continue
        a, b = t["start"] - 0.3, t["end"] + 0.3
        here = [s for s in hyp["segments"]
                if a <= (s["start"] + s["end"]) / 2 <= b
                or overlap(s["start"], s["end"], t["start"], t["end"]) > 0.5 * max(1e-6, s["end"] - s["start"])]
        out.append((t, here))
    return out


def weighted(segments: list[dict], values: list[float]) -> float:
    weights = [max(1e-3, s["end"] - s["start"]) for s in segments]
    return float(np.average(values, weights=weights))


def fit(x: np.ndarray, y: np.ndarray, l2: float = 0.001) -> np.ndarray:
    """Logistic regression on a fractional target (chrF / 100), lightly L2-regularised."""
    xb = np.hstack([np.ones((len(x), 1)), x])

    def loss(w: np.ndarray) -> float:
        p = np.clip(1 / (1 + np.exp(-xb @ w)), 1e-6, 1 - 1e-6)
        return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)) + l2 * np.sum(w[1:] ** 2))

    return minimize(loss, np.zeros(xb.shape[1]), method="L-BFGS-B").x


def predict(w: np.ndarray, x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-(w[0] + x @ w[1:])))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", type=Path, help="transcripts (<stem>.json) of an older version to compare with")
    parser.add_argument("--save", type=Path, help="write this run's transcripts here")
    parser.add_argument("--rows", type=Path, help="cache of the per-turn rows: read when it exists, else written")
    args = parser.parse_args()
    if args.rows and args.rows.is_file():
        rows = [tuple(r) for r in json.loads(args.rows.read_text(encoding="utf-8"))]
    else:
        rows = collect(args)
        if args.rows:
            args.rows.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    report(rows)
    if args.save:
        labelled(args.save, "this version")
    if args.before:
        labelled(args.before, "--before")


def collect(args: argparse.Namespace) -> list[tuple]:
    """(file, turn, inputs, chrF, confidence now, flagged, confidence in --before) per turn."""

    import toolkit
    from toolkit.translate import confidence

    recorded: dict[tuple[str, str], dict[str, float]] = {}
    original = confidence.features

    def recording(request, decoder_logprob):
        values = original(request, decoder_logprob)
        recorded[(request.text, request.source)] = values
        return values

    confidence.features = recording
    rows = []  # (file, turn, features, chrF, confidence now, flagged, before)
    for media in media_files():
        transcript = toolkit.transcribe(media).to_dict()
        if args.save:
            args.save.mkdir(parents=True, exist_ok=True)
            (args.save / f"{media.stem}.json").write_text(json.dumps(transcript, ensure_ascii=False), encoding="utf-8")
        truth = json.loads(media.with_name(f"{media.stem}.truth.json").read_text(encoding="utf-8"))
        before = None
        if args.before and (args.before / f"{media.stem}.json").is_file():
            before = json.loads((args.before / f"{media.stem}.json").read_text(encoding="utf-8"))
            before_turns = {t["start"]: here for t, here in turns_of(truth, before)}
        for turn, here in turns_of(truth, transcript):
            score = chrf(" ".join(s["translation"].get("en", "") for s in here), turn["translation_en"])
            segs = [s for s in here if (s["text"], s["language"]) in recorded]
            if not segs:
                continue  # nothing translated over this turn: no confidence to rank
            x = [weighted(segs, [recorded[(s["text"], s["language"])][n] for s in segs]) for n in NAMES]
            now = weighted(segs, [s.get("translation_confidence", {}).get("en", 0.0) for s in segs])
            flagged = any(f.startswith("translation_") for s in segs for f in s.get("flags", []))
            old = None
            if before is not None and before_turns.get(turn["start"]):
                b = before_turns[turn["start"]]
                old = weighted(b, [s.get("translation_confidence", {}).get("en", 0.0) for s in b])
            rows.append((media.stem, turn, x, score, now, flagged, old))
    return rows


def report(rows: list[tuple]) -> None:
    x = np.array([r[2] for r in rows])
    y = np.array([r[3] for r in rows]) / 100
    files = np.array([r[0] for r in rows])
    w = fit(x, y)
    print("coefficients:", json.dumps({"intercept": round(float(w[0]), 3),
                                        **{n: round(float(v), 3) for n, v in zip(NAMES, w[1:], strict=True)}}))
    lofo = np.zeros(len(rows))
    for stem in sorted(set(files)):
        held = files == stem
        lofo[held] = predict(fit(x[~held], y[~held]), x[held])
    now = np.array([r[4] for r in rows])
    print(f"turns: {len(rows)} (non-English, with a translation) in {len(set(files))} files")
    print(f"Spearman with per-turn chrF: in use now {spearmanr(now, y)[0]:.3f}; "
          f"fitted {spearmanr(predict(w, x), y)[0]:.3f}; leave-one-file-out {spearmanr(lofo, y)[0]:.3f}")
    olds = [(r[6], r[3]) for r in rows if r[6] is not None]
    if olds:
        print(f"Spearman of --before on the same turns ({len(olds)}): {spearmanr(*zip(*olds, strict=True))[0]:.3f}")
    for lang in ("ru", "az"):
        mask = np.array([r[1]["language"] == lang for r in rows])
        if mask.sum() > 2:
            print(f"  {lang}: {mask.sum()} turns, now {spearmanr(now[mask], y[mask])[0]:.3f}, "
                  f"leave-one-file-out {spearmanr(lofo[mask], y[mask])[0]:.3f}")
    reliable = sum(1 for r in rows if r[4] >= 0.5 and not r[5])
    print(f"turns above the reliable line (confidence >= 0.5, no flag): {reliable} of {len(rows)}")


def labelled(transcripts: Path, name: str) -> None:
    """How many labelled wrong / correct translations (tests/data/translation_labels.json) the
    transcripts in `transcripts` show above the reliable line, or flag."""
    labels = json.loads((ROOT / "tests" / "data" / "translation_labels.json").read_text(encoding="utf-8"))["items"]
    counts = {(label, language, flagged): 0 for label in ("wrong", "correct") for language in ("ru", "az")
              for flagged in (True, False)}
    scores: dict[str, list[float]] = {"wrong": [], "correct": []}  # Russian only: every az one is wrong
    for item in labels:
        path = transcripts / f"{item['file']}.json"
        if not path.is_file():
            continue
        segments = json.loads(path.read_text(encoding="utf-8"))["segments"]
        seg = next((s for s in segments if abs(s["start"] - item["start"]) < 0.05), None)
        if seg is None:
            continue
        flagged = bool(seg.get("flags")) or seg.get("translation_confidence", {}).get("en", 1.0) < 0.5
        counts[(item["label"], item["language"], flagged)] += 1
        if item["language"] == "ru":
            scores[item["label"]].append(seg.get("translation_confidence", {}).get("en", 0.0))
    pairs = [(c > w) + 0.5 * (c == w) for c in scores["correct"] for w in scores["wrong"]]
    for language in ("ru", "az"):
        wrong = counts[("wrong", language, False)] + counts[("wrong", language, True)]
        correct = counts[("correct", language, False)] + counts[("correct", language, True)]
        print(f"{name}, {language}: wrong translations above the reliable line {counts[('wrong', language, False)]} "
              f"of {wrong}; correct ones flagged {counts[('correct', language, True)]} of {correct}")
    print(f"{name}: Russian: P(confidence of a correct > of a wrong) "
          f"{sum(pairs) / max(1, len(pairs)):.2f}")


if __name__ == "__main__":
    main()
