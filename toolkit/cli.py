"""The `toolkit` command: transcribe media files and folders, list models, rebuild reports, search."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import fields

from . import __version__
from .cli_voices import add_commands as add_voice_commands
from .corpus_cli import add_corpus_commands
from .diarize import DiarizationOptions
from .pipeline import PipelineOptions
from .translate import TranslationOptions
from .utils import ToolkitWarning, printable
from .writers import DEFAULT_FORMATS, SUBTITLE_MODES


def _csv(text: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in text.split(",") if x.strip())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="toolkit", description=__doc__)
    parser.add_argument("--version", action="version", version=f"toolkit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser("transcribe", help="transcribe media files or folders of them",
                       description="Transcribe media files (any container ffmpeg reads) or folders of them.")
    t.add_argument("inputs", nargs="+", metavar="INPUT", help="media file or folder")
    t.add_argument("-o", "--output-dir", default="outputs", help="where outputs go (default: outputs)")
    t.add_argument("--formats", default=",".join(DEFAULT_FORMATS),
                   help="comma-separated: json,srt,vtt,txt,tsv,rttm,html,eaf (ELAN), mkv (the video with "
                        "subtitle tracks) or 'all' (all but mkv) (default: %(default)s)")
    t.add_argument("--languages", default=",".join(PipelineOptions.languages), type=_csv,
                   help="candidate languages, ISO 639-1 (default: %(default)s)")
    t.add_argument("--languages-only", action="store_true",
                   help="label every segment with a candidate; by default a well-heard language outside them "
                        "(Arabic, English, ...) that Whisper hears confidently is labelled as itself and noted")
    t.add_argument("--model", default=PipelineOptions.model,
                   help="Whisper model: 'base' (bundled, offline), a hub name such as large-v3 "
                        "(downloaded when online), or a CTranslate2 model folder")
    t.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    t.add_argument("--compute-type", default="auto", help="auto (float16 on CUDA, int8 on CPU), int8, float16, ...")
    t.add_argument("--cpu-threads", type=int, default=0, help="CTranslate2 threads (0: all cores)")
    t.add_argument("--batch-size", type=int, default=PipelineOptions.batch_size, metavar="N",
                   help="speech regions Whisper decodes together (default: 8 on CPU, 16 on GPU)")
    t.add_argument("--audio-stream", type=int, default=None, metavar="N",
                   help="the N-th audio stream, from 0 (default: the file's default audio stream)")
    t.add_argument("--no-diarize", dest="diarize", action="store_false", help="one speaker for the whole file")
    t.add_argument("--num-speakers", type=int, default=None, metavar="N", help="exact speaker count")
    t.add_argument("--min-speakers", type=int, default=1, metavar="N")
    t.add_argument("--max-speakers", type=int, default=None, metavar="N")
    t.add_argument("--translate-to", default="en", help="target language code, or 'none' (default: en)")
    t.add_argument("--translator", default="auto",
                   help="whisper, auto, a transformers model name or folder, ct2:FOLDER, or a routing table "
                        "'ru=MODEL,az=MODEL,*=MODEL' (default: auto = a local NLLB/opus-mt if present, else whisper)")
    t.add_argument("--voices", default=None, metavar="LIB",
                   help="a voice library (toolkit voices add): name the speakers it recognises")
    t.add_argument("--glossary", default=None, metavar="FILE",
                   help="key terms whose translation is checked, one a line: 'source forms<TAB>English forms' "
                        "(each '|'-separated word beginnings), added to the built-in list")
    t.add_argument("--mt-beam-size", type=int, default=TranslationOptions.beam_size, metavar="N",
                   help="beam size of text MT models (default: %(default)s)")
    t.add_argument("--mt-max-tokens", type=int, default=TranslationOptions.max_tokens, metavar="N",
                   help="longest piece a text MT model is given; longer segments are split at sentences "
                        "(default: %(default)s)")
    t.add_argument("--mt-batch-size", type=int, default=TranslationOptions.batch_size, metavar="N",
                   help="pieces a text MT model translates together (default: %(default)s)")
    t.add_argument("--subtitles", default="auto", choices=list(SUBTITLE_MODES),
                   help="which text SRT/VTT/TXT/TSV show; auto: SRT/VTT the original, TXT/TSV the original "
                        "and the translation (default: auto)")
    t.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    t.add_argument("--jobs", type=int, default=None, metavar="N",
                   help="files in flight at once: local worker processes (default 1, as one file already uses "
                        "every core or the GPU), or Ray model actors (default: one per GPU, else one per node)")
    t.add_argument("--overwrite", action="store_true",
                   help="redo every file, even those whose outputs are up to date (see OUTDIR/manifest.jsonl)")
    t.add_argument("--engine", default="local", choices=["local", "ray"],
                   help="local: this machine; ray: a Ray cluster (pip install 'toolkit[ray]') (default: local)")
    t.add_argument("--ray-address", default=None, metavar="ADDR",
                   help="Ray cluster to join, e.g. ray://head:10001 or auto (default: start a local instance)")

    sub.add_parser("models", help="list the models available here and those that need a download")

    r = sub.add_parser("report", help="(re)build HTML reports and an index from transcripts in a folder")
    r.add_argument("folder")
    add_voice_commands(sub)
    add_corpus_commands(sub)
    _add_evaluate(sub)
    return parser


def _add_evaluate(sub) -> None:
    e = sub.add_parser("evaluate", help="score a transcript against an annotated truth file",
                       description="Score a transcript JSON against a truth file (the shape of samples/*.truth.json): "
                                   "WER/CER per language, language accuracy per turn, DER, speaker count, chrF of "
                                   "the translation, boundary error, words outside the truth turns.")
    e.add_argument("truth", help="truth JSON: speaker turns with language, text and (optionally) translation_en")
    e.add_argument("hypothesis", help="transcript JSON written by `toolkit transcribe`")
    e.add_argument("--json", action="store_true", help="print the scores as one JSON object")
    e.set_defaults(handler=_cmd_evaluate)


def options_from_args(args: argparse.Namespace) -> PipelineOptions:
    names = {f.name for f in fields(PipelineOptions)}
    values = {k: v for k, v in vars(args).items() if k in names}
    if str(values.get("translate_to", "")).lower() in ("none", ""):
        values["translate_to"] = None
    values["translation"] = TranslationOptions(beam_size=args.mt_beam_size, max_tokens=args.mt_max_tokens,
                                               batch_size=args.mt_batch_size, glossary=args.glossary)
    values["diarization"] = DiarizationOptions(num_speakers=args.num_speakers, min_speakers=args.min_speakers,
                                               max_speakers=args.max_speakers)
    return PipelineOptions(**values)


def _cmd_transcribe(args: argparse.Namespace) -> int:
    from .cli_batch import run_cli_batch
    from .models import ModelNotAvailableError
    from .pipeline import preflight
    from .writers import parse_formats

    try:
        formats = parse_formats(args.formats)
        if not formats:
            raise ValueError(f"--formats {args.formats!r} names no format: give e.g. json,srt or all")
        options = options_from_args(args)
        if args.jobs is not None and args.jobs < 1:
            raise ValueError(f"--jobs must be at least 1, not {args.jobs}")
        if args.ray_address and args.engine != "ray":
            raise ValueError("--ray-address needs --engine ray")
        if args.engine == "ray":
            from .ray_engine import import_ray

            import_ray()
        preflight(options)
    except (ValueError, ImportError, ModelNotAvailableError) as e:
        print(printable(f"toolkit: {e}"), file=sys.stderr)
        return 2
    return run_cli_batch(args.inputs, args.output_dir, options, formats, subtitles=args.subtitles,
                         show_progress=args.progress, jobs=args.jobs, overwrite=args.overwrite,
                         engine=args.engine, ray_address=args.ray_address)


def _cmd_models(args: argparse.Namespace) -> int:
    from .models import list_models

    for entry in list_models():
        mark = "available" if entry.available else "needs download"
        print(f"{entry.kind:16s} {entry.name:34s} {mark:15s} {entry.source}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    import warnings
    from pathlib import Path

    from .report_index import build_reports

    if not Path(args.folder).is_dir():
        print(printable(f"toolkit: {args.folder}: no such folder"), file=sys.stderr)
        return 2
    with warnings.catch_warnings(record=True) as recorded:
        warnings.simplefilter("always", ToolkitWarning)
        written = build_reports(args.folder)
    caught = [w for w in recorded if issubclass(w.category, ToolkitWarning)]
    for warning in caught:  # a transcript that cannot be read: one line each, the rest were built
        print(printable(f"toolkit: error: {warning.message}"), file=sys.stderr)
    for path in written:
        print(printable(str(path)))
    if not written:  # no index either: an empty one would look like a finished, empty collection
        if not caught:
            print(printable(f"toolkit: no transcripts (*.json) in {args.folder}; nothing written"), file=sys.stderr)
        return 1
    return 1 if caught else 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    import json

    try:
        from .evaluate import evaluate

        scores = evaluate(args.truth, args.hypothesis).to_dict()
    except ImportError as e:
        print(printable(f"toolkit: evaluate needs the eval extra (pip install 'toolkit[eval]'): {e}"),
              file=sys.stderr)
        return 2
    except (OSError, ValueError, KeyError, TypeError) as e:  # unreadable or malformed files
        print(printable(f"toolkit: {e}"), file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(scores, ensure_ascii=False))
    else:
        for key, value in scores.items():
            print(f"{key:20s} {value}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler = getattr(args, "handler", None) or {"transcribe": _cmd_transcribe, "models": _cmd_models,
                                                 "report": _cmd_report}[args.command]
    try:
        return handler(args)
    except KeyboardInterrupt:
        print("toolkit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
