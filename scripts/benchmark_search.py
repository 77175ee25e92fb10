#!/usr/bin/env python3
"""Benchmark the collection index: build it over a synthetic collection, time queries, count false hits.

    scripts/benchmark_search.py [--files 1000] [--segments 100] [--dictionary /usr/share/hunspell/ru_RU.dic]

The collection is copies of the samples' ground-truth turns (public and, when ../shared is
there, dev) with varied text: a third of the words of each copy are replaced by invented
ones (Latin for Azerbaijani and English turns, Cyrillic for Russian ones), so the vocabulary
grows with the collection as a real one does; a few segments carry the test terms.
Reported: the first full index, an update with nothing changed, an update after 10 changed
files, and the latency of `toolkit.corpus.search` per query (median, 95th percentile, max).

`--dictionary` (a hunspell .dic, e.g. Debian's hunspell-ru) counts, for each test term, the
dictionary words (lemmas) that it matches: the words it should match and the false ones.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from toolkit.corpus import update_index  # noqa: E402
from toolkit.search import search  # noqa: E402
from toolkit.search_keys import query_terms, word_keys  # noqa: E402

QUERIES = ["Raqqa", "Ракка", "Rəqqə", "Baghdadi", "Багдади", "zakat", "закят", "group", "группа", "Sumqayit",
           "Сумгаит", "считали", "Abu Bakr", "weapons", "Islamic State", "мы", "takfir"]
# term -> what a right match looks like in a Russian dictionary word (the rest are false hits)
TRUE_MATCHES = {"Raqqa": r"^ракк", "Baghdadi": r"^багдад", "zakat": r"^закят", "group": r"^групп",
                "Sumqayit": r"^сумгаит", "takfir": r"^такфир", "emir": r"^эмир"}
_LATIN = "bcdfgklmnprstvxzqşçğ"
_CYRILLIC = "бвгдзклмнпрстфхцчшж"


def _invented(rng: random.Random, cyrillic: bool) -> str:
    consonants, vowels = (_CYRILLIC, "аеиоуыя") if cyrillic else (_LATIN, "aeıiouəü")
    return "".join(rng.choice(consonants) + rng.choice(vowels) for _ in range(rng.randint(2, 4)))


def _vary(text: str, rng: random.Random, cyrillic: bool) -> str:
    return " ".join(_invented(rng, cyrillic) if rng.random() < 0.33 else w for w in text.split())


def build_collection(folder: Path, files: int, segments: int, seed: int = 1) -> int:
    truths = sorted((ROOT / "samples").glob("*.truth.json"))
    dev = ROOT.parent / "shared" / "samples" / "dev"
    truths += sorted(dev.glob("*.truth.json")) if dev.is_dir() else []
    turns = [t for p in truths for t in json.loads(p.read_text(encoding="utf-8"))["turns"]]
    rng = random.Random(seed)
    total = 0
    for n in range(files):
        out, at = [], 0.0
        for i in range(segments):
            turn = turns[(n + i) % len(turns)]
            cyrillic = turn["language"] == "ru"
            length = turn["end"] - turn["start"]
            out.append({"start": round(at, 3), "end": round(at + length, 3), "speaker": f"SPEAKER_{i % 3:02d}",
                        "language": turn["language"], "text": _vary(turn["text"], rng, cyrillic),
                        "translation": {"en": _vary(turn["translation_en"], rng, False)}, "words": []})
            at += length + 0.5
        total += len(out)
        doc = {"schema_version": 1, "media": {"path": f"/videos/video{n:04d}.mp4", "duration": at},
               "languages": ["az", "ru", "en"], "segments": out}
        (folder / f"video{n:04d}.json").write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return total


def time_queries(folder: Path, repeats: int) -> None:
    print(f"{'query':16s} {'hits':>6s} {'median ms':>10s} {'p95 ms':>8s} {'max ms':>8s}")
    every = []
    for query in QUERIES:
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            hits = search(folder, query, limit=20)
            times.append(1000 * (time.perf_counter() - started))
        every += times
        total = len(search(folder, query, limit=None))
        times.sort()
        print(f"{query:16s} {total:6d} {statistics.median(times):10.1f} {times[int(0.95 * (len(times) - 1))]:8.1f} "
              f"{times[-1]:8.1f}   (first page: {len(hits)})")
    every.sort()
    print(f"all queries: median {statistics.median(every):.1f} ms, p95 {every[int(0.95 * (len(every) - 1))]:.1f} ms, "
          f"max {every[-1]:.1f} ms")


def false_hits(dictionary: Path) -> None:
    """Dictionary words each term matches, split into right and false by TRUE_MATCHES."""
    lemmas = sorted({line.split("/")[0].strip() for line in dictionary.read_text(encoding="utf-8").splitlines()[1:]
                     if line.strip() and line.split("/")[0].strip().isalpha()})
    keys = [(w, word_keys(w)) for w in lemmas]
    print(f"\n{len(lemmas)} dictionary words ({dictionary.name})")
    print(f"{'term':10s} {'right':>6s} {'false':>6s}  false examples")
    for term, right in TRUE_MATCHES.items():
        t = query_terms(term)[0]
        matched = [w for w, k in keys if t.matches(k)]
        good = [w for w in matched if re.search(right, w, re.IGNORECASE)]
        bad = [w for w in matched if w not in good]
        print(f"{term:10s} {len(good):6d} {len(bad):6d}  {', '.join(bad[:12])}{' ...' if len(bad) > 12 else ''}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--segments", type=int, default=100, help="segments per transcript")
    parser.add_argument("--repeats", type=int, default=20, help="timed runs of each query")
    parser.add_argument("--dictionary", type=Path, help="a hunspell .dic to count false hits in")
    parser.add_argument("--keep", type=Path, help="build the collection here and keep it")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="toolkit-search-bench-") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        segments = build_collection(folder, args.files, args.segments)
        print(f"collection: {args.files} transcripts, {segments} segments, written in "
              f"{time.perf_counter() - started:.1f} s")
        first = update_index(folder)
        size = (folder / "corpus.sqlite").stat().st_size / 2**20
        print(f"index, first build: {first.seconds:.1f} s ({len(first.added)} files, {first.segments} segments, "
              f"{size:.0f} MiB)")
        print(f"index, nothing changed: {update_index(folder).seconds:.2f} s")
        for path in sorted(folder.glob("*.json"))[:10]:
            doc = json.loads(path.read_text(encoding="utf-8"))
            doc["segments"][0]["text"] += " Raqqa"
            path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
        changed = update_index(folder)
        print(f"index, 10 files changed: {changed.seconds:.2f} s ({len(changed.updated)} updated)")
        time_queries(folder, args.repeats)
    if args.dictionary:
        false_hits(args.dictionary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
