"""The one data model every stage speaks: `Transcript`, `Segment`, `Word`, `Speaker`.

Dicts exist only at the JSON boundary (`to_dict` / `from_dict`), whose shape is the
transcript contract (`shared/CONTRACT.md`, schema_version 1).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

SCHEMA_VERSION = 1
DEFAULT_SPEAKER = "SPEAKER_00"


def _round(t: float) -> float:
    return round(float(t), 3)


@dataclass
class Word:
    start: float  # seconds from the start of the media
    end: float
    word: str  # as Whisper emits it, usually with its leading space
    probability: float = 1.0

    def __post_init__(self) -> None:
        # Stages compute times in numpy; plain floats keep the objects' types one (and JSON-safe).
        self.start, self.end, self.probability = float(self.start), float(self.end), float(self.probability)

    def to_dict(self) -> dict[str, Any]:
        return {"start": _round(self.start), "end": _round(self.end), "word": self.word,
                "probability": round(float(self.probability), 3)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Word:
        return cls(float(d["start"]), float(d["end"]), d.get("word", ""), float(d.get("probability", 1.0)))


@dataclass(frozen=True)
class SpeakerTurn:
    """A stretch of one speaker's speech (seconds): diarization's unit, and one entry of a
    segment's `overlap` (another speaker heard during the segment)."""

    start: float
    end: float
    speaker: str

    def to_dict(self) -> dict[str, Any]:
        return {"speaker": self.speaker, "start": _round(self.start), "end": _round(self.end)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SpeakerTurn:
        return cls(float(d["start"]), float(d["end"]), str(d.get("speaker") or DEFAULT_SPEAKER))


@dataclass
class Segment:
    start: float
    end: float
    text: str
    language: str  # ISO 639-1: a candidate, or a well-heard language outside them (then in the notes)
    speaker: str = DEFAULT_SPEAKER
    language_confidence: float = 1.0  # fused audio+text evidence for `language`, 0..1
    words: list[Word] = field(default_factory=list)
    translation: dict[str, str] = field(default_factory=dict)  # target code -> text
    # target code -> 0..1; below `UNRELIABLE` the translation is flagged, not trusted
    translation_confidence: dict[str, float] = field(default_factory=dict)
    avg_logprob: float | None = None  # decoder's mean token log-probability
    flags: list[str] = field(default_factory=list)  # e.g. "translation_unreliable", "translation_negation"
    evidence: dict[str, str] = field(default_factory=dict)  # flag -> what a reader can check it by
    # other speakers heard during this segment (crosstalk); text and words are this speaker's alone
    overlap: list[SpeakerTurn] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.start, self.end = float(self.start), float(self.end)
        self.language_confidence = float(self.language_confidence)
        if self.avg_logprob is not None:
            self.avg_logprob = float(self.avg_logprob)

    @property
    def duration(self) -> float:
        return self.end - self.start

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "start": _round(self.start), "end": _round(self.end), "speaker": self.speaker,
            "language": self.language, "language_confidence": round(float(self.language_confidence), 3),
            "text": self.text, "translation": dict(self.translation),
            "words": [w.to_dict() for w in self.words],
        }
        if self.translation_confidence:
            d["translation_confidence"] = {k: round(float(v), 3) for k, v in self.translation_confidence.items()}
        if self.avg_logprob is not None:
            d["avg_logprob"] = round(float(self.avg_logprob), 3)
        if self.flags:
            d["flags"] = list(self.flags)
        if self.evidence:
            d["evidence"] = dict(self.evidence)
        if self.overlap:
            d["overlap"] = [t.to_dict() for t in self.overlap]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Segment:
        translation = d.get("translation") or {}
        if isinstance(translation, str):  # tolerate the bench's plain-string form
            translation = {"en": translation}
        return cls(
            start=float(d["start"]), end=float(d["end"]), text=d.get("text", ""),
            language=d.get("language", ""), speaker=d.get("speaker") or DEFAULT_SPEAKER,
            language_confidence=float(d.get("language_confidence", 1.0)),
            words=[Word.from_dict(w) for w in d.get("words") or []],
            translation=dict(translation),
            translation_confidence=dict(d.get("translation_confidence") or {}),
            avg_logprob=d.get("avg_logprob"), flags=list(d.get("flags") or []),
            evidence={str(k): str(v) for k, v in (d.get("evidence") or {}).items()},
            overlap=[SpeakerTurn.from_dict(t) for t in d.get("overlap") or []],
        )


@dataclass
class VoicePrint:
    """What a speaker sounds like: the length-weighted centroid of its speech's window embeddings."""

    embedding: np.ndarray  # (dim,) float32, unit norm
    seconds: float  # speech the centroid rests on: a short one scatters more
    encoder: str  # SpeakerEncoder.name; prints of different encoders cannot be compared

    def to_dict(self) -> dict[str, Any]:
        # 4 decimals move a cosine by < 1e-3 and keep a 256-dim print at ~2 KB of JSON
        return {"encoder": self.encoder, "seconds": _round(self.seconds),
                "embedding": [round(float(x), 4) for x in self.embedding]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> VoicePrint:
        import numpy as np  # not at the top: `import toolkit` stays without numpy

        embedding = np.asarray(d["embedding"], dtype=np.float32)
        if embedding.ndim != 1 or not embedding.size:
            raise ValueError("a voice embedding is a non-empty list of numbers")
        return cls(embedding / max(float(np.linalg.norm(embedding)), 1e-12), float(d.get("seconds", 0.0)),
                   str(d.get("encoder", "")))


@dataclass(frozen=True)
class VoiceMatch:
    """A speaker recognised in a voice library: the name, and the evidence an analyst can check."""

    name: str
    score: float  # cosine of the speaker's print to the name's pooled print
    threshold: float  # the score a match had to reach
    weak: bool = False  # the speaker's print rests on little speech: check by ear


@dataclass
class Speaker:
    id: str
    total_speech: float = 0.0  # seconds
    voice: VoicePrint | None = None
    match: VoiceMatch | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"id": self.id, "total_speech": _round(self.total_speech)}
        if self.match:
            d.update(name=self.match.name, match_score=round(float(self.match.score), 3),
                     match_threshold=round(float(self.match.threshold), 3))
            if self.match.weak:
                d["match_weak"] = True
        if self.voice is not None:
            d["voice"] = self.voice.to_dict()
        return d


@dataclass
class MediaStream:
    index: int  # ffprobe's absolute stream index
    codec_type: str  # "audio", "video", "subtitle", ...
    codec_name: str = ""
    language: str | None = None  # the container's tag, if any
    channels: int | None = None
    sample_rate: int | None = None
    default: bool = False


@dataclass
class MediaDamage:
    """A stretch of the audio that did not decode as the container says; times on the media's clock."""

    # "missing" (no packets), "undecodable" (packets the decoder refused), "overlap" (repeated audio,
    # dropped), "truncated" (the audio ends before the container says)
    kind: str
    start: float
    end: float

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "start": _round(self.start), "end": _round(self.end)}


@dataclass
class MediaInfo:
    path: str
    duration: float = 0.0
    sha256: str = ""
    audio_stream: int | None = None  # the n-th audio stream (0-based) that was extracted
    sample_rate: int = 16000
    format_name: str = ""
    streams: list[MediaStream] = field(default_factory=list)
    damage: list[MediaDamage] = field(default_factory=list)  # gaps filled with silence, an early end

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["duration"] = _round(self.duration)
        d.pop("damage")
        if self.damage:
            d["damage"] = [x.to_dict() for x in self.damage]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MediaInfo:
        streams = [MediaStream(**s) for s in d.get("streams", [])]
        damage = [MediaDamage(**x) for x in d.get("damage") or []]
        return cls(**{**d, "streams": streams, "damage": damage})


@dataclass
class Transcript:
    media: MediaInfo
    segments: list[Segment] = field(default_factory=list)
    languages: list[str] = field(default_factory=list)  # the candidates this run chose from
    models: dict[str, str] = field(default_factory=dict)  # stage -> model/backend description
    timings: dict[str, float] = field(default_factory=dict)  # stage -> wall seconds
    notes: list[str] = field(default_factory=list)  # one-line remarks a reader should see
    created: str = ""  # ISO 8601 time of the run
    voices: dict[str, VoicePrint] = field(default_factory=dict)  # speaker id -> voice print
    matches: dict[str, VoiceMatch] = field(default_factory=dict)  # speaker id -> name from a voice library

    @property
    def speakers(self) -> list[Speaker]:
        """Speakers in order of first appearance, with their summed segment time, voice and name."""
        totals: dict[str, float] = {}
        for seg in sorted(self.segments, key=lambda s: s.start):
            totals[seg.speaker] = totals.get(seg.speaker, 0.0) + seg.duration
        return [Speaker(k, v, self.voices.get(k), self.matches.get(k)) for k, v in totals.items()]

    def speaker_label(self, speaker: str) -> str:
        """How outputs name a speaker: the voice library's name when recognised, else its id."""
        match = self.matches.get(speaker)
        return match.name if match else speaker

    @property
    def detected_languages(self) -> dict[str, float]:
        """Language -> seconds of speech, largest first."""
        totals: dict[str, float] = {}
        for seg in self.segments:
            totals[seg.language] = totals.get(seg.language, 0.0) + seg.duration
        return dict(sorted(totals.items(), key=lambda kv: -kv[1]))

    @property
    def text(self) -> str:
        return " ".join(s.text.strip() for s in self.segments if s.text.strip())

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "media": self.media.to_dict(),
            "languages": list(self.languages),
            "speakers": [s.to_dict() for s in self.speakers],
            "segments": [s.to_dict() for s in self.segments],
            "models": dict(self.models),
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
            "notes": list(self.notes),
            "created": self.created,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Transcript:
        return cls(
            media=MediaInfo.from_dict(d.get("media") or {"path": ""}),
            segments=[Segment.from_dict(s) for s in d.get("segments", [])],
            languages=list(d.get("languages", [])), models=dict(d.get("models", {})),
            timings=dict(d.get("timings", {})), notes=list(d.get("notes", [])),
            created=d.get("created", ""), **_speaker_data(d.get("speakers")),
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=1)

    @classmethod
    def load(cls, path: str | Path) -> Transcript:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))

    def save(self, path: str | Path, fmt: str | None = None, **writer_options: Any) -> Path:
        """Write this transcript in `fmt` (default: from the file's suffix) to `path`."""
        from .writers import get_writer

        path = Path(path)
        return get_writer(fmt or path.suffix.lstrip("."), **writer_options).write(self, path)


def is_transcript_dict(data: Any) -> bool:
    """True for the transcript contract's shape; false for truth files, manifests, configs."""
    return (isinstance(data, dict) and isinstance(data.get("segments"), list)
            and isinstance(data.get("media"), dict))


def _speaker_data(entries: Any) -> dict[str, dict[str, Any]]:
    """Voices and names stored on `speakers[]`; an entry that does not parse is left out, not fatal."""
    voices: dict[str, VoicePrint] = {}
    matches: dict[str, VoiceMatch] = {}
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict) or not entry.get("id"):
            continue
        try:
            if isinstance(entry.get("voice"), dict):
                voices[entry["id"]] = VoicePrint.from_dict(entry["voice"])
            if entry.get("name"):
                matches[entry["id"]] = VoiceMatch(str(entry["name"]), float(entry.get("match_score", 0.0)),
                                                  float(entry.get("match_threshold", 0.0)),
                                                  bool(entry.get("match_weak", False)))
        except (KeyError, TypeError, ValueError):
            continue
    return {"voices": voices, "matches": matches}
