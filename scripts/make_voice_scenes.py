#!/usr/bin/env python3
"""Build scenes in which voices recur across files, for calibrating voice linking.

Each scene is a WAV with 2-4 speakers taking turns, a `<scene>.truth.json` (the samples' truth
shape) and one `voices.json` for the folder (scene -> label -> voice). Voices:
- synthetic: festival's Russian voice and espeak-ng voices (az, ru, en), with pitch-shifted
  variants, which count as different people (hard negatives, as in the samples);
- real people: Asterisk's recorded prompts (Debian asterisk-core-sounds-{en,es,fr,it,ru}-wav);
  Allison speaks both the en_US and es_MX prompts, so one person is heard in two languages;
  a pitch-shifted real voice is another hard negative.
Beds: none, pink noise, a synthetic chord bed; some scenes go through a telephone band with reverb.

    apt-get install -y espeak-ng festival festvox-ru sox asterisk-core-sounds-{en,es,fr,it,ru}-wav
    python scripts/make_voice_scenes.py OUTDIR [--scenes 24] [--seed 15]
    python scripts/calibrate_voices.py --extra OUTDIR
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

SR = 16000
ASTERISK = Path("/usr/share/asterisk/sounds")
RU = ["Я родился в Баку и учился в школе номер шесть.", "Мы долго ехали через горы, потом ждали на границе.",
      "Мне сказали, что работа будет в другой стране.", "Я не знал, куда нас везут и зачем.",
      "Командир приказал нам молчать и ждать сигнала.", "Потом я понял, что меня обманули.",
      "Каждый день мы учили новые правила и молитвы.", "Моя семья не знала, где я нахожусь.",
      "Я прошу прощения у всех, кому причинил боль.", "Деньги нам обещали, но так и не заплатили.",
      "В лагере было много людей из разных стран.", "Я хочу вернуться домой и начать новую жизнь."]
AZ = ["Mən Sumqayıtda anadan olmuşam.", "Atam zavodda işləyirdi, anam isə müəllimə idi.",
      "Bizə dedilər ki, orada yaxşı iş var.", "Yol çox uzun idi və biz yorulmuşduq.",
      "Mən heç kimə zərər vermək istəməmişəm.", "Qardaşım hələ də Bakıda yaşayır.",
      "Onlar bizə silah verdilər və təlim keçdilər.", "Mən ailəmdən üzr istəyirəm.",
      "Hər gün səhər tezdən durub namaz qılırdıq.", "Sonra başa düşdüm ki, bu səhv idi."]
EN = ["This is the evening news from the capital.", "Our correspondent spoke to people in the square.",
      "The ministry has not commented on the video.", "Several families are still waiting for news.",
      "The recording could not be independently verified.", "We will return to this story after the break."]


def sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True)


def read_wav(path: Path) -> np.ndarray:
    raw = subprocess.run(["sox", str(path), "-t", "raw", "-r", str(SR), "-c", "1", "-e", "signed", "-b", "16", "-"],
                         check=True, capture_output=True).stdout
    return np.frombuffer(raw, dtype=np.int16).astype(np.float32) / 32768


def pitch(audio: np.ndarray, cents: int, tmp: Path) -> np.ndarray:
    if not cents:
        return audio
    src, dst = tmp / "p_in.wav", tmp / "p_out.wav"
    write_wav(src, audio)
    sh("sox", str(src), str(dst), "pitch", str(cents))
    return read_wav(dst)


def write_wav(path: Path, audio: np.ndarray) -> None:
    raw = (np.clip(audio, -1, 1) * 32767).astype(np.int16).tobytes()
    subprocess.run(["sox", "-t", "raw", "-r", str(SR), "-c", "1", "-e", "signed", "-b", "16", "-", str(path)],
                   input=raw, check=True, capture_output=True)


class Voice:
    def __init__(self, name: str, kind: str, arg: str, cents: int = 0, language: str = "ru"):
        self.name, self.kind, self.arg, self.cents, self.language = name, kind, arg, cents, language

    def say(self, rng: np.random.Generator, seconds: float, tmp: Path) -> np.ndarray:
        """About `seconds` of this voice: sentences (TTS) or recorded prompts (real people)."""
        pieces: list[np.ndarray] = []
        total = 0.0
        while total < seconds:
            wav = tmp / "say.wav"
            if self.kind == "festival":
                text = tmp / "say.txt"
                text.write_text(str(rng.choice(RU)), encoding="utf-8")
                sh("text2wave", "-eval", "(voice_msu_ru_nsh_clunits)", str(text), "-o", str(wav))
            elif self.kind == "espeak":
                texts = {"az": AZ, "ru": RU, "en": EN}[self.language]
                voice, _, p = self.arg.partition(":")
                sh("espeak-ng", "-v", voice, *(["-p", p] if p else []), "-w", str(wav), str(rng.choice(texts)))
            else:  # recorded prompts of one person
                folders = self.arg.split(",")
                files = sorted(p for f in folders for p in (ASTERISK / f).iterdir() if p.suffix in (".wav", ".gsm"))
                wav = files[int(rng.integers(len(files)))]
            piece = read_wav(wav)
            piece = piece[np.flatnonzero(np.abs(piece) > 0.01)[0]:] if np.any(np.abs(piece) > 0.01) else piece
            pieces.append(piece)
            pieces.append(np.zeros(int(SR * rng.uniform(0.1, 0.25)), dtype=np.float32))
            total += len(piece) / SR
        audio = np.concatenate(pieces)
        audio = pitch(audio, self.cents, tmp)
        return audio / max(float(np.abs(audio).max()), 1e-6) * 0.5


VOICES = [
    Voice("fest_ru", "festival", ""), Voice("fest_ru_m250", "festival", "", -250),
    Voice("fest_ru_p250", "festival", "", 250), Voice("fest_ru_p500", "festival", "", 500),
    Voice("esp_az_m1", "espeak", "az+m1", language="az"), Voice("esp_az_m3", "espeak", "az+m3", language="az"),
    Voice("esp_az_f2", "espeak", "az+f2", language="az"),
    Voice("esp_az_m1_p70", "espeak", "az+m1:70", language="az"),
    Voice("esp_ru_m2", "espeak", "ru+m2"), Voice("esp_en_m7", "espeak", "en+m7", language="en"),
    Voice("allison", "real", "en_US_f_Allison,es_MX_f_Allison"), Voice("june", "real", "fr_CA_f_June"),
    Voice("menardi", "real", "it_IT_f_Menardi"), Voice("carlo", "real", "it_IT_m_Carlo"),
    Voice("ivr_ru_f", "real", "ru_RU_f_IvrvoiceRU"),
    Voice("carlo_m300", "real", "it_IT_m_Carlo", -300), Voice("allison_p300", "real", "en_US_f_Allison", 300),
]


def bed(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(n) / SR
    if kind == "noise":
        white = rng.standard_normal(n)
        pink = np.fft.irfft(np.fft.rfft(white) / np.sqrt(np.maximum(np.fft.rfftfreq(n, 1 / SR), 20)), n)
        return (0.02 * pink / np.abs(pink).max()).astype(np.float32)
    if kind == "music":
        chord = sum(np.sin(2 * np.pi * f * t) for f in rng.choice([110, 147, 165, 196, 220, 262], 3))
        return (0.04 * chord * (0.6 + 0.4 * np.sin(2 * np.pi * 0.25 * t))).astype(np.float32)
    return np.zeros(n, dtype=np.float32)


def scene(k: int, rng: np.random.Generator, tmp: Path, out: Path) -> dict[str, str]:
    cast = [VOICES[i] for i in rng.choice(len(VOICES), size=int(rng.integers(2, 5)), replace=False)]
    labels = {v.name: f"S{j + 1}" for j, v in enumerate(cast)}
    turns, pieces, t = [], [np.zeros(int(SR * 0.8), dtype=np.float32)], 0.8
    # one speaker in four says only a short line: prints resting on 2-4 s of speech
    plan = [(v, float(rng.uniform(2.0, 4.0)) if rng.random() < 0.25 else float(rng.uniform(3.0, 7.0)))
            for v in cast for _ in range(1 if rng.random() < 0.25 else int(rng.integers(2, 4)))]
    rng.shuffle(plan)
    for voice, seconds in plan:
        audio = voice.say(rng, seconds, tmp)
        turns.append({"speaker": labels[voice.name], "language": voice.language, "start": round(t, 3),
                      "end": round(t + len(audio) / SR, 3), "text": "", "translation_en": ""})
        gap = float(rng.uniform(0.3, 0.9))
        pieces += [audio, np.zeros(int(SR * gap), dtype=np.float32)]
        t += len(audio) / SR + gap
    audio = np.concatenate(pieces)
    kind = str(rng.choice(["none", "noise", "music"]))
    audio = audio + bed(kind, len(audio), rng)
    name = f"scene_{k:02d}"
    path = out / f"{name}.wav"
    write_wav(path, audio)
    degrade = bool(rng.random() < 0.2)
    if degrade:  # a re-upload: telephone band and a room
        degraded = tmp / "degraded.wav"
        sh("sox", str(path), str(degraded), "sinc", "300-3400", "reverb", "40")
        write_wav(path, read_wav(degraded)[:len(audio)])
    truth = {"media": path.name, "duration": round(len(audio) / SR, 3), "speakers": sorted(labels.values()),
             "languages": sorted({v.language for v in cast}), "turns": turns,
             "conditions": {"bed": kind, "telephone_reverb": degrade}}
    (out / f"{name}.truth.json").write_text(json.dumps(truth, ensure_ascii=False, indent=1), encoding="utf-8")
    return {label: name_ for name_, label in labels.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("outdir", type=Path)
    ap.add_argument("--scenes", type=int, default=24)
    ap.add_argument("--seed", type=int, default=15)
    args = ap.parse_args()
    args.outdir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    voices = {}
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(args.scenes):
            voices[f"scene_{k:02d}"] = scene(k, rng, Path(tmp), args.outdir)
            print(f"scene_{k:02d}: {', '.join(sorted(voices[f'scene_{k:02d}'].values()))}", flush=True)
    (args.outdir / "voices.json").write_text(json.dumps(voices, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
