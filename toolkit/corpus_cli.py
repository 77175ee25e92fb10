"""`toolkit index` and `toolkit search`: the collection's search index from the command line."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_corpus_commands(sub: argparse._SubParsersAction) -> None:
    i = sub.add_parser("index", help="build or update OUTDIR/corpus.sqlite, the search index over the transcripts",
                       description="Index every transcript (*.json) in a folder for `toolkit search`; only new "
                                   "or changed transcripts are read again.")
    i.add_argument("folder")
    i.add_argument("--rebuild", action="store_true", help="start from nothing instead of updating")
    i.set_defaults(handler=cmd_index)

    s = sub.add_parser("search", help="search every transcript in a folder",
                       description="Search every transcript in a folder, in any script: a Latin query finds "
                                   "Cyrillic and Azerbaijani spellings (Baghdadi finds Багдади and Bağdadi). "
                                   "All words must match; a word matches its inflected forms. "
                                   "Updates the index first.")
    s.add_argument("folder")
    s.add_argument("query", nargs="+")
    s.add_argument("--speaker", help="only this speaker (a label such as SPEAKER_01, or a person's identity)")
    s.add_argument("--language", help="only segments in this language (ISO 639-1, e.g. az)")
    s.add_argument("--in", dest="field_name", default="both", choices=["original", "translation", "both"],
                   help="search the original text, the translation, or both (default: both)")
    s.add_argument("--limit", type=int, default=20, metavar="N", help="at most N hits, best first (0: all)")
    s.add_argument("--json", action="store_true", help="hits as a JSON list")
    s.set_defaults(handler=cmd_search)


def _summary(update) -> str:
    parts = [f"{len(update.added)} added", f"{len(update.updated)} updated", f"{len(update.removed)} removed",
             f"{update.unchanged} unchanged"]
    files = len(update.added) + len(update.updated) + update.unchanged
    return (f"{update.path}: {files} transcript{'' if files == 1 else 's'} ({', '.join(parts)}), "
            f"{update.segments} segments, {update.seconds:.1f} s")


def cmd_index(args: argparse.Namespace) -> int:
    from .corpus import CorpusError, update_index

    if not Path(args.folder).is_dir():
        print(f"toolkit: {args.folder}: no such folder", file=sys.stderr)
        return 2
    try:
        update = update_index(args.folder, rebuild=args.rebuild)
    except CorpusError as e:
        print(f"toolkit: {e}", file=sys.stderr)
        return 2
    print(_summary(update))
    if not (update.added or update.updated or update.unchanged):
        print(f"toolkit: no transcripts (*.json) in {args.folder}", file=sys.stderr)
        return 1
    return 0


def _clock(t: float) -> str:
    minutes, seconds = divmod(max(0.0, t), 60)
    hours, minutes = divmod(int(minutes), 60)
    return (f"{hours}:{minutes:02d}" if hours else f"{minutes}") + f":{seconds:04.1f}"


def cmd_search(args: argparse.Namespace) -> int:
    from .corpus import CorpusError, corpus_path, update_index
    from .search import search

    if not Path(args.folder).is_dir():
        print(f"toolkit: {args.folder}: no such folder", file=sys.stderr)
        return 2
    try:
        update_index(args.folder)
    except CorpusError as e:  # a read-only folder: search what is there
        if not corpus_path(args.folder).is_file():
            print(f"toolkit: {e}", file=sys.stderr)
            return 2
        print(f"toolkit: warning: the index was not updated ({e}); searching it as it is", file=sys.stderr)
    query = " ".join(args.query)
    try:
        hits = search(args.folder, query, speaker=args.speaker, language=args.language,
                      field_name=args.field_name, limit=args.limit or None)
    except (CorpusError, ValueError) as e:
        print(f"toolkit: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps([h.to_dict() for h in hits], ensure_ascii=False, indent=1))
    else:
        for hit in hits:
            who = hit.speaker + (f" ({hit.identity})" if hit.identity else "")
            print(f"{hit.stem}  {_clock(hit.start)}-{_clock(hit.end)}  {who}  {hit.language}")
            print(f"  {hit.snippet('original')}")
            if hit.translation and hit.translation != hit.original:
                print(f"  {hit.target}: {hit.snippet('translation')}")
            print(f"  {hit.link}")
    if not hits:
        print(f"toolkit: no hits for {query!r} in {args.folder}", file=sys.stderr)
    return 0 if hits else 1
