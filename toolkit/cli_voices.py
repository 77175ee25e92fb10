"""The `toolkit voices` and `toolkit link` commands: a voice library, and identities across a folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .voices import LINK_FLOOR, LINK_THRESHOLD


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register `voices` and `link`; each parser carries its handler (`args.handler`)."""
    v = sub.add_parser("voices", help="a voice library: named voices that transcribe --voices recognises",
                       description="Keep named voice prints in one library file (SQLite). SOURCE is a "
                                   "transcript's speaker, outputs/clip.json#SPEAKER_01, or a media span, "
                                   "video.mp4@12.5-31.0 (seconds or [h:]m:s).")
    actions = v.add_subparsers(dest="action", required=True)
    library = argparse.ArgumentParser(add_help=False)
    library.add_argument("--voices", "--library", dest="library", required=True, metavar="LIB",
                         help="the voice library file (created by the first add)")
    a = actions.add_parser("add", parents=[library], help="add samples of a voice (several are pooled)")
    a.add_argument("name")
    a.add_argument("sources", nargs="+", metavar="SOURCE")
    ls = actions.add_parser("list", parents=[library], help="the voices in the library")
    ls.add_argument("--samples", action="store_true", help="every sample with its source")
    rm = actions.add_parser("remove", parents=[library], help="forget a voice and all its samples")
    rm.add_argument("name")
    rn = actions.add_parser("rename", parents=[library], help="rename a voice")
    rn.add_argument("old")
    rn.add_argument("new")
    v.set_defaults(handler=_cmd_voices)

    k = sub.add_parser("link", help="link the speakers of every transcript in a folder into people",
                       description="Cluster the speakers of all transcripts in OUTDIR into collection-wide "
                                   "identities (PERSON_001, or a voice library's name) and write "
                                   "OUTDIR/speakers.json; the index.html, if there is one, gains its people view.")
    k.add_argument("folder", metavar="OUTDIR")
    k.add_argument("--voices", default=None, metavar="LIB", help="name identities from this voice library")
    k.add_argument("--threshold", type=float, default=None,
                   help=f"mean cosine from which two groups of appearances are one person (default: {LINK_THRESHOLD}, "
                        "calibrated)")
    k.add_argument("--floor", type=float, default=None,
                   help="lowest cosine allowed between any two appearances of one person (default: threshold - 0.02)")
    k.set_defaults(handler=_cmd_link)


def _fail(message: str) -> int:
    print(f"toolkit: {message}", file=sys.stderr)
    return 2


def _cmd_voices(args: argparse.Namespace) -> int:
    from .voice_library import LibraryError, VoiceLibrary
    from .voices import WEAK_SECONDS, voice_from_source

    try:
        if args.action == "add":
            prints = [(source, voice_from_source(source)) for source in args.sources]  # all read before any write
            with VoiceLibrary(args.library, create=True) as library:
                for source, voice in prints:
                    library.add(args.name, voice, source)
                    short = voice.seconds < WEAK_SECONDS
                    note = f" (under {WEAK_SECONDS:g} s: a weak sample, add more)" if short else ""
                    print(f"added {args.name}: {voice.seconds:.1f} s of speech from {source}{note}")
            return 0
        with VoiceLibrary(args.library) as library:
            if args.action == "list":
                return _list(library, args.samples)
            if args.action == "remove":
                print(f"removed {args.name} ({library.remove(args.name)} sample(s))")
            else:
                print(f"renamed {args.old} to {library.rename(args.old, args.new) and args.new}")
        return 0
    except (LibraryError, ValueError, OSError) as e:
        return _fail(str(e))


def _list(library, samples: bool) -> int:
    entries = library.entries()
    if not entries:
        print(f"{library.path}: no voices yet", file=sys.stderr)
        return 0
    for entry in entries:
        print(f"{entry.name}\t{entry.samples} sample(s)\t{entry.seconds:.1f} s\t{','.join(entry.encoders)}")
        if samples:
            for sample in library.samples(entry.name):
                print(f"  #{sample.id}\t{sample.print.seconds:.1f} s\t{sample.source}\t{sample.added}")
    return 0


def _cmd_link(args: argparse.Namespace) -> int:
    from .linking import LinkOptions, link_collection, read_speakers_file
    from .report_index import INDEX_NAME, build_reports
    from .voice_library import LibraryError

    folder = Path(args.folder)
    if not folder.is_dir():
        return _fail(f"{folder}: no such folder")
    try:
        threshold = LINK_THRESHOLD if args.threshold is None else args.threshold
        floor = args.floor if args.floor is not None else threshold - (LINK_THRESHOLD - LINK_FLOOR)
        path = link_collection(folder, args.voices, LinkOptions(threshold=threshold, floor=floor))
    except (LibraryError, ValueError, OSError) as e:
        return _fail(str(e))
    document = read_speakers_file(path)
    identities = document["identities"]
    recurring = [i for i in identities if i["files"] > 1]
    files = len({a["file"] for i in identities for a in i["appearances"]})
    print(f"{len(identities)} people over {files} transcript(s), {len(recurring)} in more than one; "
          f"threshold {document['threshold']}: {path}")
    for ident in recurring:
        label = ident["name"] or ident["id"]
        weak = " (weak)" if ident["weak"] else ""
        print(f"  {label}{weak}: " + ", ".join(f"{a['file']}#{a['speaker']}" for a in ident["appearances"]))
    for skipped in document["skipped"]:
        print(f"toolkit: {skipped['file']}: left out: {skipped['reason']}", file=sys.stderr)
    if (folder / INDEX_NAME).is_file():
        build_reports(folder, reports=False)
    return 0 if identities else 1
