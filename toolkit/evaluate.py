"""Score a transcript against an annotated truth file: the project's own evaluation.

A truth file holds the speaker turns of one media file (shape: `samples/*.truth.json`, see
CONTRACT.md): speaker, language, start, end, text and, optionally, `translation_en`. Metrics,
each over the truth's turns, computed with the field's own libraries (the `eval` extra):
  wer, cer             per language, jiwer over the turns' normalised words (corpus-level)
  lid_accuracy         share of turns whose majority hypothesis language (by overlap) is right
  der                  pyannote.metrics, overlap-aware, 0.25 s collar on each side of a boundary
  speakers             hypothesis speaker count against the truth's
  chrf_en              sacrebleu chrF (6 character orders, beta 2, lowercased, spaces kept) of
                       the English translation, per turn, averaged (and per source language)
  boundary_ms          median |error| of turn starts and ends, from word times
  words_outside_turns  words whose midpoint lies in no truth turn widened by 0.3 s: text
                       invented over silence, noise or music
Each hypothesis word counts for one truth turn only (`_owner`). The definitions are those of the
benchmark's scorer, and a test holds the two to 3 decimals on the samples.
"""

from __future__ import annotations

import json
import re
import statistics
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .transcript import Transcript

PAD = 0.3  # s a truth turn is widened by when it claims words
COLLAR = 0.25  # s not scored on each side of a truth boundary (DER)


@dataclass
class Evaluation:
    """Scores of one transcript against its truth; `to_dict` has the benchmark scorer's keys."""

    wer: dict[str, float]  # truth language -> word error rate
    cer: dict[str, float]  # truth language -> character error rate
    lid_accuracy: float
    der: float | None  # None: the truth has no speech to score
    der_parts: dict[str, float] | None  # miss, false_alarm, confusion (shares of the scored speech)
    speakers: dict[str, int]  # {"truth": n, "hypothesis": m}
    chrf_en: float | None  # None: the truth has no translations
    chrf_en_by_language: dict[str, float] = field(default_factory=dict)
    boundary_ms: int | None = None  # None: the transcript has no word times
    words_outside_turns: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def load_truth(path: str | Path) -> dict[str, Any]:
    """A truth file, checked for what scoring needs (one clear error per missing field)."""
    truth = json.loads(Path(path).read_text(encoding="utf-8"))
    for key in ("duration", "speakers", "turns"):
        if key not in truth:
            raise ValueError(f"{path}: not a truth file (no {key!r})")
    for i, turn in enumerate(truth["turns"]):
        missing = [k for k in ("speaker", "language", "start", "end", "text") if k not in turn]
        if missing:
            raise ValueError(f"{path}: turn {i} lacks {', '.join(missing)}")
    return truth


def evaluate(truth: dict[str, Any] | str | Path, transcript: Transcript | dict[str, Any] | str | Path,
             target: str = "en") -> Evaluation:
    """Score `transcript` (the data model, its JSON dict, or a JSON file) against `truth`
    (a truth dict or file); `target` is the translation language compared with `translation_<target>`."""
    if not isinstance(truth, dict):
        truth = load_truth(truth)
    if isinstance(transcript, (str, Path)):
        transcript = Transcript.load(transcript)
    elif isinstance(transcript, dict):
        transcript = Transcript.from_dict(transcript)
    turns, segments = truth["turns"], transcript.segments
    diarization, speaker_map = _der(truth, segments)
    # every word, or every segment without words, in the transcript's order
    units = [u for s in segments
             for u in ([(w.start, w.end, w.word, s) for w in s.words] or [(s.start, s.end, s.text, s)])]
    owners = [_owner(u, turns, speaker_map) for u in units]
    refs: dict[str, list[str]] = {}
    hyps: dict[str, list[str]] = {}
    lid_ok, boundary, chrfs, chrf_by_language = 0, [], [], {}
    has_words = any(s.words for s in segments)
    for index, turn in enumerate(turns):
        mine = [u for u, owner in zip(units, owners, strict=True) if owner == index]
        refs.setdefault(turn["language"], []).append(" ".join(normalise(turn["text"])))
        hyps.setdefault(turn["language"], []).append(" ".join(normalise(" ".join(u[2] for u in mine))))
        lid_ok += _majority_language(segments, turn) == turn["language"]
        reference = turn.get(f"translation_{target}")
        if reference:
            nearby = [s for s in segments if _belongs(s, turn)]
            chrfs.append(chrf(" ".join(s.translation.get(target) or "" for s in nearby), reference))
            chrf_by_language.setdefault(turn["language"], []).append(chrfs[-1])
        timed = [u for u in mine if u[2].strip()]
        if timed and has_words:
            boundary += [abs(timed[0][0] - turn["start"]), abs(timed[-1][1] - turn["end"])]
    wer, cer = _error_rates(refs, hyps)
    return Evaluation(
        wer=wer, cer=cer, lid_accuracy=round(lid_ok / len(turns), 4) if turns else 0.0,
        der=round(diarization["der"], 4) if diarization else None,
        der_parts={k: round(v, 4) for k, v in diarization.items() if k != "der"} if diarization else None,
        speakers={"truth": len(truth["speakers"]), "hypothesis": len({s.speaker for s in segments})},
        chrf_en=round(statistics.mean(chrfs), 2) if chrfs else None,
        chrf_en_by_language={k: round(statistics.mean(v), 2) for k, v in chrf_by_language.items()},
        boundary_ms=round(1000 * statistics.median(boundary)) if boundary else None,
        words_outside_turns=sum(len(normalise(u[2])) for u, owner in zip(units, owners, strict=True) if owner is None),
    )


def normalise(text: str) -> list[str]:
    """Words for WER/CER: NFC, Turkic dotted/dotless I folded as Azerbaijani writes them, lowercase,
    punctuation and symbols as spaces."""
    text = unicodedata.normalize("NFC", text).replace("İ", "i").replace("I", "ı").lower()
    return "".join(" " if unicodedata.category(c)[0] in "PS" else c for c in text).split()


def _error_rates(refs: dict[str, list[str]], hyps: dict[str, list[str]]) -> tuple[dict[str, float], dict[str, float]]:
    """Corpus WER and CER per language over the turns' normalised texts (jiwer: summed edits over
    summed reference lengths; a turn with an empty reference adds the hypothesis' length as errors)."""
    import jiwer

    wer, cer = {}, {}
    for language, references in refs.items():
        word_edits = char_edits = words = chars = 0
        for ref, hyp in zip(references, hyps[language], strict=True):
            words += len(ref.split())
            chars += len(ref)
            if not ref:  # jiwer refuses an empty reference: all of the hypothesis is inserted
                word_edits += len(hyp.split())
                char_edits += len(hyp)
                continue
            w = jiwer.process_words(ref, hyp)
            word_edits += w.substitutions + w.deletions + w.insertions
            c = jiwer.process_characters(ref, hyp)
            char_edits += c.substitutions + c.deletions + c.insertions
        wer[language] = round(word_edits / max(1, words), 4)
        cer[language] = round(char_edits / max(1, chars), 4)
    return wer, cer


def chrf(hypothesis: str, reference: str) -> float:
    """Sentence chrF: character 1- to 6-grams, beta 2, lowercased, whitespace runs kept as one space
    (sacrebleu's effective-order average, as chrF++.py before eps smoothing)."""
    from sacrebleu.metrics import CHRF

    def spaced(s: str) -> str:
        return re.sub(r"\s+", " ", s.strip())

    metric = CHRF(char_order=6, word_order=0, beta=2, lowercase=True, whitespace=True, eps_smoothing=False)
    return metric.sentence_score(spaced(hypothesis), [spaced(reference)]).score


def _overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0))


def _majority_language(segments, turn: dict) -> str | None:
    votes: dict[str, float] = {}
    for s in segments:
        ov = _overlap(s.start, s.end, turn["start"], turn["end"])
        if ov > 0:
            votes[s.language] = votes.get(s.language, 0.0) + ov
    return max(votes, key=votes.get) if votes else None


def _belongs(segment, turn: dict) -> bool:
    """Whether a segment's translation counts for `turn`: its middle lies in the widened turn, or
    more than half of it overlaps the turn."""
    middle = (segment.start + segment.end) / 2
    return (turn["start"] - PAD <= middle <= turn["end"] + PAD
            or _overlap(segment.start, segment.end, turn["start"], turn["end"]) > 0.5 * max(1e-6, segment.duration))


def _der(truth: dict, segments) -> tuple[dict[str, float] | None, dict[str, str]]:
    """Overlap-aware DER through pyannote.metrics (its collar is the total width around a boundary),
    and the optimal hypothesis -> truth speaker mapping it scored with."""
    from pyannote.core import Annotation, Segment, Timeline
    from pyannote.metrics.diarization import DiarizationErrorRate

    reference, hypothesis = Annotation(), Annotation()
    for i, t in enumerate(truth["turns"]):
        if t["end"] > t["start"]:
            reference[Segment(t["start"], t["end"]), i] = t["speaker"]
    for i, s in enumerate(segments):
        if s.end > s.start:
            hypothesis[Segment(s.start, s.end), i] = s.speaker
    if not reference:
        return None, {}
    metric = DiarizationErrorRate(collar=2 * COLLAR, skip_overlap=False)
    uem = Timeline([Segment(0.0, max(float(truth["duration"]), reference.get_timeline().extent().end))])
    parts = metric(reference, hypothesis, uem=uem, detailed=True)
    total = parts["total"]
    if not total:
        return None, {}
    mapping = metric.optimal_mapping(reference, hypothesis)
    return ({"der": float(parts["diarization error rate"]), "miss": float(parts["missed detection"] / total),
             "false_alarm": float(parts["false alarm"] / total), "confusion": float(parts["confusion"] / total)},
            {str(h): str(r) for h, r in mapping.items()})


def _owner(unit: tuple, turns: list[dict], speaker_map: dict[str, str]) -> int | None:
    """The one truth turn a hypothesis word belongs to: among the turns whose widened span holds its
    midpoint, prefer one that holds it unwidened, then the turn of the mapped speaker, then of the same
    language, then the nearest (so overlapping or touching turns never both count it)."""
    start, end, _, segment = unit
    middle = (start + end) / 2
    pool = [i for i, t in enumerate(turns) if t["start"] - PAD <= middle <= t["end"] + PAD]
    for prefer in (lambda i: turns[i]["start"] <= middle <= turns[i]["end"],
                   lambda i: speaker_map.get(segment.speaker) == turns[i]["speaker"],
                   lambda i: segment.language == turns[i]["language"]):
        if len(pool) > 1:
            pool = [i for i in pool if prefer(i)] or pool
    return min(pool, key=lambda i: abs(middle - (turns[i]["start"] + turns[i]["end"]) / 2)) if pool else None
