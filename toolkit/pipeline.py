"""The orchestrator: media -> speech regions -> speakers -> language + text -> translation.

Each stage is one call into its module; `transcribe()` reads top to bottom in one screen.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from . import media as media_io
from . import models
from .asr import DecodeOptions, RegionRecognizer, Window
from .audio import Audio
from .diarize import Diarization, DiarizationOptions, diarize, mark_overlaps
from .language import DEFAULT_CANDIDATES, LanguageDecision, TextLanguageId
from .progress import ProgressHook, no_progress
from .recognize import recognize
from .streams import balanced_batches, in_streams
from .transcript import DEFAULT_SPEAKER, MediaInfo, Segment, SpeakerTurn, Transcript, VoiceMatch, VoicePrint
from .translate import REASONS, RoutedTranslator, TranslationOptions, TranslationRequest, failed_result, load_translator
from .vad import VadSettings, speech_regions

__all__ = ["PipelineOptions", "ProgressHook", "transcribe", "transcribe_audio"]


@dataclass(frozen=True)
class PipelineOptions:
    """Everything that shapes a transcript; the CLI builds one, the library accepts one."""

    languages: tuple[str, ...] = DEFAULT_CANDIDATES  # the languages expected; every decision starts from these
    # True: every segment is labelled with a candidate. False: a well-heard language outside the
    # candidates that the audio hears confidently (Arabic, English, ...) is labelled as itself.
    languages_only: bool = False
    model: str = models.DEFAULT_WHISPER  # bundled size, hub name, or CTranslate2 folder
    device: str = "auto"  # auto | cpu | cuda
    compute_type: str = "auto"  # auto: float16 on CUDA, int8 on CPU
    cpu_threads: int = 0  # 0: CTranslate2's default (all cores)
    batch_size: int = 0  # speech regions decoded together by Whisper; 0: by device (models.decode_batch_size)
    audio_stream: int | None = None  # n-th audio stream; None: the file's default
    diarize: bool = True
    diarization: DiarizationOptions = field(default_factory=DiarizationOptions)  # speaker counts and every knob
    translate_to: str | None = "en"  # None skips translation
    translator: str = "auto"
    translation: TranslationOptions = field(default_factory=TranslationOptions)  # text MT models' settings
    voices: str | None = None  # a voice library file (toolkit voices add): speakers it recognises are named
    # Same-speaker regions closer than this are decoded as one window: Russian sentences
    # cut at short pauses lose context and CER when decoded apart.
    merge_gap_s: float = 0.25
    max_window_s: float = 28.0  # a merged window still fits Whisper's 30 s input
    vad: VadSettings = field(default_factory=VadSettings)
    decode: DecodeOptions = field(default_factory=DecodeOptions)

    def __post_init__(self) -> None:
        if not self.languages:
            raise ValueError("at least one candidate language is needed")
        object.__setattr__(self, "languages", tuple(c.strip().lower() for c in self.languages))
        if self.translate_to:
            object.__setattr__(self, "translate_to", self.translate_to.strip().lower())
        if self.cpu_threads < 0:
            raise ValueError(f"--cpu-threads must be at least 1 (or 0: all cores), not {self.cpu_threads}")
        if self.audio_stream is not None and self.audio_stream < 0:
            raise ValueError(f"--audio-stream counts from 0, not {self.audio_stream}")
        if self.batch_size < 0:
            raise ValueError(f"--batch-size must be at least 1 (or 0: by device), not {self.batch_size}")

    def with_overrides(self, **overrides) -> PipelineOptions:
        """A copy with `overrides` applied: PipelineOptions fields, or DiarizationOptions fields
        (`num_speakers=2`) for short library calls."""
        nested = {k: overrides.pop(k) for k in list(overrides) if k in _DIARIZATION_FIELDS}
        if nested:
            overrides["diarization"] = replace(overrides.get("diarization", self.diarization), **nested)
        return replace(self, **overrides)


_DIARIZATION_FIELDS = frozenset(f.name for f in fields(DiarizationOptions))


def preflight(options: PipelineOptions) -> None:
    """Fail before any file is decoded when the options cannot work: unknown language codes, a
    device or precision this machine lacks, a Whisper model that is not here, a missing translator."""
    from faster_whisper.tokenizer import _LANGUAGE_CODES

    unknown = [c for c in options.languages if c not in _LANGUAGE_CODES]
    if unknown:
        raise ValueError(f"unknown language code(s) {', '.join(unknown)}: "
                         "use ISO 639-1 codes that Whisper knows (az, ru, en, ...)")
    models.whisper_model_path(options.model)
    translator = translator_for(options)
    if translator:
        translator.check_available(options.languages)
    if options.voices:
        from .voice_library import VoiceLibrary

        VoiceLibrary(options.voices).close()


def translator_for(options: PipelineOptions, runtime: models.Runtime | None = None) -> RoutedTranslator | None:
    """The translation stage these options ask for (None: off); resolving it reads only local caches."""
    if not options.translate_to:
        return None
    runtime = runtime or models.resolve_runtime(options.device, options.compute_type, options.cpu_threads)
    return load_translator(options.translator, target=options.translate_to, runtime=runtime,
                           whisper_model=options.model, whisper_batch_size=options.batch_size,
                           options=options.translation)




@contextmanager
def _timed(timings: dict[str, float], stage: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        timings[stage] = timings.get(stage, 0.0) + time.perf_counter() - started


def speaker_turns(audio: np.ndarray | Audio, regions: list[tuple[float, float]], options: PipelineOptions,
                  progress: ProgressHook) -> tuple[Diarization, str | None]:
    """Who speaks when; one speaker for all the speech when diarization is off. The speakers'
    voice prints (`Diarization.embeddings`) come with it."""
    if not options.diarize or not regions:
        turns = [SpeakerTurn(s, e, DEFAULT_SPEAKER) for s, e in regions]
        return Diarization(turns, turns), None
    diarization = diarize(audio, regions, options.diarization, progress=progress)
    return diarization, "pyannote segmentation-3.0 (onnxruntime) + resemblyzer GE2E (numpy) + agglomerative clustering"


def speaker_voices(audio: np.ndarray | Audio, turns: list[SpeakerTurn], speakers: set[str], library: str | None,
                   progress: ProgressHook = no_progress) -> tuple[dict[str, VoicePrint], dict[str, VoiceMatch]]:
    """A voice print for each speaker that has segments, and the names a voice library gives them."""
    from .voices import voice_prints

    prints = voice_prints(audio, [t for t in turns if t.speaker in speakers], progress=progress)
    if not library or not prints:
        return prints, {}
    from .voice_library import VoiceLibrary
    from .voices import match_speakers

    with VoiceLibrary(library) as known:
        return prints, match_speakers(prints, known.voices(next(iter(prints.values())).encoder))


def merge_turns(turns: list[SpeakerTurn], max_gap: float, max_length: float) -> list[SpeakerTurn]:
    """Join consecutive turns of one speaker separated by short pauses into decoding windows."""
    merged: list[SpeakerTurn] = []
    for turn in turns:
        last = merged[-1] if merged else None
        if (last and last.speaker == turn.speaker and turn.start - last.end <= max_gap
                and turn.end - last.start <= max_length):
            merged[-1] = replace(last, end=turn.end)
        else:
            merged.append(turn)
    return merged


def turn_joints(windows: list[SpeakerTurn], turns: list[SpeakerTurn]) -> list[tuple[float, ...]]:
    """For each merged window, the pauses between the turns merged into it (where a language
    change is cut first)."""
    joints: list[tuple[float, ...]] = []
    i = 0
    for window in windows:
        inside = []
        while i < len(turns) and turns[i].end <= window.end + 1e-9:
            inside.append(turns[i])
            i += 1
        joints.append(tuple((a.end + b.start) / 2 for a, b in zip(inside, inside[1:], strict=False)))
    return joints


def _segment(decision: LanguageDecision, turn: SpeakerTurn) -> Segment | None:
    """One segment per piece of a decoding window: one speaker, one language, one translation."""
    decoded = decision.decoded
    if not decoded.text:
        return None
    words = decoded.words
    start, end = (words[0].start, words[-1].end) if words else (decoded.spans[0].start, decoded.spans[-1].end)
    return Segment(start=start, end=end, text=decoded.text, language=decision.language, speaker=turn.speaker,
                   language_confidence=decision.confidence, words=words, avg_logprob=decoded.avg_logprob)


def transcribe(path: str | Path, options: PipelineOptions | None = None, progress: ProgressHook | None = None,
               media: tuple[MediaInfo, np.ndarray | Audio] | None = None, **overrides) -> Transcript:
    """Transcribe one media file: the whole pipeline, returning the data model.

    `progress(stage, done, total)` hears every stage, in seconds of media (`progress.py`).
    `media` is the file's already extracted (info, 16 kHz audio), for engines that decode on
    other workers than the ones that run the models. Otherwise the audio is extracted to a
    temporary file that the stages read by windows, and removed when this returns or fails.

    `overrides` are PipelineOptions fields, or DiarizationOptions fields, for short library calls:
    `toolkit.transcribe("v.mp4", languages=("ru",), translate_to=None, num_speakers=2)`.
    """
    options = (options or PipelineOptions()).with_overrides(**overrides)
    progress = progress or no_progress
    timings: dict[str, float] = {}
    if media is not None:
        return transcribe_audio(*media, options, progress, timings)
    with _timed(timings, "extract"):
        info, audio = media_io.open_media(path, options.audio_stream, progress)
    with audio:
        return transcribe_audio(info, audio, options, progress, timings)


def transcribe_audio(info: MediaInfo, audio: np.ndarray | Audio, options: PipelineOptions,
                     progress: ProgressHook = no_progress, timings: dict[str, float] | None = None) -> Transcript:
    """The pipeline after extraction: speech, speakers, language and text, translation, voices."""
    timings = {} if timings is None else timings
    with _timed(timings, "load_models"):
        runtime = models.resolve_runtime(options.device, options.compute_type, options.cpu_threads)
        recognizer = RegionRecognizer(models.load_whisper(options.model, runtime), options.decode,
                                      models.decode_batch_size(runtime, options.batch_size))
        text_id = TextLanguageId(options.languages)
        translator = translator_for(options, runtime)
    with _timed(timings, "vad"):
        regions = speech_regions(audio, options.vad, progress)
    with _timed(timings, "diarize"):
        diarization, diarization_model = speaker_turns(audio, regions, options, progress)
    windows = merge_turns(diarization.exclusive, options.merge_gap_s, options.max_window_s)
    joints = dict(zip(windows, turn_joints(windows, diarization.exclusive), strict=True))

    notes: list[str] = media_io.damage_notes(info)  # damaged audio: said first, since it bears on every time
    decode = functools.partial(_decode_batch, recognizer, audio, text_id, translator, joints, options)
    segments = _decode_windows(windows, decode, recognizer.batch_size, models.decode_streams(runtime), progress,
                               timings, notes)

    if translator:
        with _timed(timings, "translate"):  # text models: one batched pass over what is left
            _apply_translations(translator, [s for s in segments if options.translate_to not in s.translation],
                                options.translate_to, notes, progress=progress)

    with _timed(timings, "voices"):
        voices, matches = speaker_voices(audio, diarization.exclusive, {s.speaker for s in segments}, options.voices,
                                         progress)

    mark_overlaps(segments, diarization)  # ASR decoded one speaker at a time; crosstalk gets both
    transcript = Transcript(
        media=info, segments=sorted(segments, key=lambda s: s.start), languages=list(options.languages),
        models={"asr": models.describe_whisper(options.model, runtime),
                "language_id": "whisper audio probabilities (per region, probes for switches) + lingua text ID",
                "vad": "silero (faster-whisper)"},
        timings=timings, notes=notes, created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        voices=voices, matches=matches,
    )
    if diarization_model:
        transcript.models["diarization"] = diarization_model
    notes.extend(outsider_notes(transcript.segments, options.languages))
    if translator:
        transcript.models["translation"] = translator.name
        if options.translator == "auto" and "whisper" in translator.name:
            notes.append("translation: a draft by Whisper's translate task (no NLLB or opus-mt model on this machine): "
                         "it can read fluently and be wrong; a line marked [?] says why, a line without a mark is "
                         "still a draft (README, Translation: how to get a real MT model)")
    return transcript


def _decode_windows(windows: list[SpeakerTurn], decode: Callable[[list[SpeakerTurn]], tuple],
                    batch_size: int, streams: int, progress: ProgressHook, timings: dict[str, float],
                    notes: list[str]) -> list[Segment]:
    """Every window decoded, `streams` batches of `batch_size` at a time (`_decode_batch`), reported as
    batches finish. Each window in flight holds ~40 MB (the decoder's cache over its encoder output):
    2 streams of 8 peaked at 1370 MiB on a 10-hour input against 1190 MiB for 2 of 4, and decoded
    confession_mixed in 4.6 s against 5.3 s."""
    segments: list[Segment] = []
    total, done = math.fsum(t.end - t.start for t in windows), []  # fsum: the last prefix is the total
    progress("transcribe", 0.0, total)
    spent: dict[str, float] = {}
    started = time.perf_counter()
    batches = balanced_batches(windows, batch_size, streams, _decode_cost)
    for batch, (found, batch_spent, batch_notes) in zip(batches, in_streams(batches, decode, streams), strict=True):
        segments.extend(found)
        notes.extend(n for n in batch_notes if n not in notes)
        for stage, seconds in batch_spent.items():
            spent[stage] = spent.get(stage, 0.0) + seconds
        done += [turn.end - turn.start for turn in batch]
        progress("transcribe", math.fsum(done), total)
        if "translate" in batch_spent:
            progress("translate", math.fsum(done), total)
    for stage, seconds in spent.items():  # the streams overlap: their wall time, shared as they spent it
        timings[stage] = (time.perf_counter() - started) * seconds / sum(spent.values())
    return segments


def _decode_cost(window: SpeakerTurn) -> float:
    """A window's decoding cost, relatively: one encoder pass (its input is at least 20 s), plus
    decoding and translating in proportion to its speech (confession_mixed: ~0.05 s a second of
    speech against 0.17 s an encoder pass, one thread)."""
    return 1.0 + 0.3 * (window.end - window.start)


def _decode_batch(recognizer: RegionRecognizer, audio: np.ndarray | Audio, text_id: TextLanguageId,
                  translator: RoutedTranslator | None, joints: dict[SpeakerTurn, tuple[float, ...]],
                  options: PipelineOptions, batch: list[SpeakerTurn]
                  ) -> tuple[list[Segment], dict[str, float], list[str]]:
    """One batch of windows (on a decoding stream): language and text, then Whisper's translation
    while the windows' encoder outputs exist. The segments, seconds spent per stage, notes."""
    spent: dict[str, float] = {}
    notes: list[str] = []
    with _timed(spent, "transcribe"):
        found = recognize(recognizer, audio, [(t.start, t.end) for t in batch], text_id,
                          outsiders=not options.languages_only, joints=[joints[t] for t in batch])
        kept = [(segment, piece.window) for turn, pieces in zip(batch, found, strict=True) for piece in pieces
                if (segment := _segment(piece.decision, turn))]
    by_audio = [(s, r) for s, r in kept if translator and translator.translates_audio(s.language)]
    if by_audio:
        with _timed(spent, "translate"):
            _apply_translations(translator, [s for s, _ in by_audio], options.translate_to, notes,
                                [r for _, r in by_audio])
    return [s for s, _ in kept], spent, notes


def outsider_notes(segments: list[Segment], candidates: tuple[str, ...]) -> list[str]:
    """One line per language heard outside the candidates, e.g. "1 segment in ar, not among the candidates"."""
    counts: dict[str, int] = {}
    for s in segments:
        if s.language not in candidates:
            counts[s.language] = counts.get(s.language, 0) + 1
    return [f"{n} segment{'s' if n > 1 else ''} in {lang}, not among the candidates ({', '.join(candidates)})"
            for lang, n in counts.items()]


def _apply_translations(translator: RoutedTranslator, segments: list[Segment], target: str, notes: list[str],
                        windows: list[Window] | None = None, progress: ProgressHook | None = None) -> None:
    """Translate `segments` in place; a failing backend degrades those segments, not the run."""
    if not segments:
        return
    requests = [TranslationRequest(s.text, s.language, avg_logprob=s.avg_logprob, window=w,
                                   word_probabilities=tuple(x.probability for x in s.words), seconds=s.end - s.start)
                for s, w in zip(segments, windows or [None] * len(segments), strict=True)]
    try:
        results = translator.translate(requests, target, progress=progress)
    except Exception as e:  # e.g. a Whisper decode that runs out of memory
        results = [failed_result(e) for _ in segments]
    for seg, result in zip(segments, results, strict=True):
        seg.translation[target] = result.text  # set even when failed: not tried again at the end
        seg.translation_confidence[target] = result.confidence
        if result.error is not None:
            _flag(seg, "translation_failed", result.error)
            note = f"translation failed ({seg.language}): {result.error}"
            if note not in notes:
                notes.append(note)
        elif not result.reliable:
            _flag(seg, "translation_unreliable", REASONS.get(result.reason or "", result.reason or ""))
            for check, evidence in result.checks.items():
                _flag(seg, f"translation_{check}", evidence)


def _flag(seg: Segment, flag: str, evidence: str) -> None:
    if flag not in seg.flags:
        seg.flags.append(flag)
    if evidence:
        seg.evidence[flag] = evidence


def translation_failure(transcript: Transcript) -> str | None:
    """Why a transcript is incomplete because its translation failed (None when it is not): a batch
    writes such a file's outputs but records it as failed, so the next run translates it again."""
    failed = [s for s in transcript.segments if "translation_failed" in s.flags]
    if not failed:
        return None
    first = failed[0].evidence.get("translation_failed", "")
    return f"translation failed for {len(failed)} of {len(transcript.segments)} segments: {first}"
