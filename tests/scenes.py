"""Test scenes built from the bundled samples: turns of their voices laid out again with crosstalk
and back-to-back hand-overs, with a truth file in the samples' shape."""

from __future__ import annotations

import json
import wave
from pathlib import Path

import numpy as np

from toolkit.media import SAMPLE_RATE, extract_audio

SAMPLES = Path(__file__).resolve().parent.parent / "samples"

# (sample, index among its turns clear of any other turn, voice, start relative to the previous turn's end
# (negative: talks over it), gain). Voices keep the samples' labels: A is one voice in every sample.
OVERLAP_SCENE = [
    ("confession_mixed", 0, "A", 0.0, 1.0),
    ("real_voice_mixed", 0, "E", 0.15, 1.0),   # back to back with a real human voice
    ("confession_mixed", 1, "C", -1.2, 1.2),   # cuts in for 1.2 s
    ("confession_mixed", 3, "D", 0.2, 1.0),
    ("real_voice_mixed", 3, "E", -0.8, 1.0),
    ("confession_mixed", 4, "A", 0.12, 1.0),
]


def _clear_turns(name: str) -> tuple[np.ndarray, list[dict]]:
    audio = extract_audio(SAMPLES / f"{name}.mp4")
    turns = json.loads((SAMPLES / f"{name}.truth.json").read_text(encoding="utf-8"))["turns"]
    clear = [t for t in turns if not any(u is not t and u["start"] < t["end"] + 0.3 and u["end"] > t["start"] - 0.3
                                         for u in turns)]
    return audio, clear


def build_scene(plan: list[tuple[str, int, str, float, float]] = OVERLAP_SCENE, lead: float = 1.0,
                tail: float = 1.0) -> tuple[np.ndarray, dict]:
    """16 kHz audio and its truth ({"duration", "speakers", "turns"}) for `plan`."""
    sources = {name: _clear_turns(name) for name in {p[0] for p in plan}}
    placed, t = [], lead
    for name, index, voice, offset, gain in plan:
        audio, turns = sources[name]
        turn = turns[index]
        clip = audio[int((turn["start"] - 0.05) * SAMPLE_RATE):int((turn["end"] + 0.05) * SAMPLE_RATE)] * gain
        start = t + offset if placed else lead
        placed.append((start, clip, voice, turn))
        t = start + len(clip) / SAMPLE_RATE
    duration = max(s + len(c) / SAMPLE_RATE for s, c, _, _ in placed) + tail
    out = np.random.default_rng(0).normal(0.0, 0.002, int(duration * SAMPLE_RATE)).astype(np.float32)
    truth = []
    for start, clip, voice, turn in placed:
        a = int(start * SAMPLE_RATE)
        out[a:a + len(clip)] += clip
        truth.append({"speaker": voice, "language": turn["language"], "text": turn["text"],
                      "translation_en": turn.get("translation_en", ""),
                      "start": round(start + 0.05, 3), "end": round(start + len(clip) / SAMPLE_RATE - 0.05, 3)})
    truth.sort(key=lambda u: u["start"])
    return out, {"duration": duration, "speakers": sorted({u["speaker"] for u in truth}),
                 "languages": sorted({u["language"] for u in truth}), "turns": truth}


def write_wav(audio: np.ndarray, path: Path) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(np.clip(audio * 32767, -32768, 32767).astype("<i2").tobytes())
    return path
