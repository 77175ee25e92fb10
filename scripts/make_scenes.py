#!/usr/bin/env python3
"""Build the test scenes of tests/data (or OUTDIR) with their truth files: espeak-ng (az, en) and
festival (ru) voices with exact pauses, AAC audio under a test pattern.

Usage: scripts/make_scenes.py [OUTDIR]
Needs espeak-ng, festival with festvox-ru, and sox (apt-get install espeak-ng festival festvox-ru sox).
"""

import json
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

import numpy as np

SR = 16000
OUT = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "tests" / "data"
TMP = Path(tempfile.mkdtemp())
AZ, EN, EN_F, RU = "az+m3", "en+m3", "en+f2", "festival"  # the same espeak variant speaks az and en


def speak(voice: str, text: str) -> np.ndarray:
    """One utterance as float32 at 16 kHz, silence trimmed so that pauses are exact."""
    raw, wav = TMP / "raw.wav", TMP / "utt.wav"
    if voice == RU:
        subprocess.run(["text2wave", "-eval", "(voice_msu_ru_nsh_clunits)", "-o", str(raw)],
                       input=text.encode(), check=True)
    else:
        subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(raw), text], check=True)
    subprocess.run(["sox", str(raw), "-r", str(SR), "-c", "1", "-b", "16", str(wav)], check=True)
    with wave.open(str(wav)) as w:
        audio = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768
    loud = np.nonzero(np.abs(audio) > 0.01)[0]
    audio = audio[loud[0]:loud[-1] + 1]
    return 0.7 * audio / max(1e-6, float(np.abs(audio).max()))


def build(name: str, parts: list[tuple], languages: list[str]) -> None:
    """parts: (pause before in s, speaker, voice, language, text, English translation)."""
    pieces, turns, t = [np.zeros(SR, np.float32)], [], 1.0
    for pause, speaker, voice, language, text, english in parts:
        pieces.append(np.zeros(int(SR * pause), np.float32))
        t += int(SR * pause) / SR
        audio = speak(voice, text)
        turns.append({"speaker": speaker, "language": language, "text": text, "translation_en": english,
                      "start": round(t, 3), "end": round(t + len(audio) / SR, 3)})
        pieces.append(audio)
        t += len(audio) / SR
    pieces.append(np.zeros(SR, np.float32))
    audio = np.concatenate(pieces)
    wav = TMP / f"{name}.wav"
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SR)
        w.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())
    import imageio_ffmpeg

    mp4 = OUT / f"{name}.mp4"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i",
                    "testsrc=size=160x120:rate=5", "-i", str(wav), "-shortest", "-c:v", "libx264",
                    "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k", str(mp4)], check=True)
    truth = {"media": mp4.name, "duration": round(len(audio) / SR, 3), "speakers": sorted({p[1] for p in parts}),
             "languages": languages, "turns": turns}
    (OUT / f"{name}.truth.json").write_text(json.dumps(truth, ensure_ascii=False, indent=1), encoding="utf-8")
    print(mp4, f"{truth['duration']:.1f} s")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    mission = "They told us it was a humanitarian mission."
    office = "A man from the media office met us."
    # one voice switches Azerbaijani -> English -> Azerbaijani inside a turn (30-50 ms pauses), and
    # English -> Azerbaijani 0.2 s apart; a Russian interviewer
    build("scene_switch_en", [
        (0, "I", RU, "ru", "Расскажите, как вы попали в Сирию.", "Tell us how you got to Syria."),
        (0.8, "K", AZ, "az", "Biz əvvəlcə Bakıdan İstanbula uçduq.", "First we flew from Baku to Istanbul."),
        (0.03, "K", EN, "en", mission, mission),
        (0.05, "K", AZ, "az", "Amma orada hər şey başqa idi.", "But everything was different there."),
        (0.9, "I", RU, "ru", "Кто вас встретил на границе?", "Who met you at the border?"),
        (0.8, "K", EN, "en", office, office),
        (0.2, "K", AZ, "az", "Onun adını heç vaxt bilmədim.", "I never knew his name."),
    ], ["az", "en", "ru"])
    # an English narrator among Azerbaijani and Russian speakers (run with --languages az,ru)
    recorded = "This video was recorded in northern Syria last year."
    captured = "He was later captured near the border."
    build("scene_outsiders", [
        (0, "N", EN_F, "en", recorded, recorded),
        (0.8, "R", RU, "ru", "Я приехал сюда чтобы помогать людям.", "I came here to help people."),
        (0.8, "A", AZ, "az", "Mənim ailəm Sumqayıtda yaşayır.", "My family lives in Sumgait."),
        (0.8, "N", EN_F, "en", captured, captured),
        (0.8, "R", RU, "ru", "Я прошу прощения у своей семьи.", "I ask my family for forgiveness."),
    ], ["az", "en", "ru"])


if __name__ == "__main__":
    main()
