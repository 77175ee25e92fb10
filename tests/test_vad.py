"""Speech regions from Silero VAD, over the audio in chunks."""

import numpy as np

from toolkit.media import load_media
from toolkit.vad import VadSettings, speech_regions

from .conftest import SAMPLES, truth


def test_chunked_vad_finds_the_regions_of_one_pass():
    _, audio = load_media(SAMPLES / "confession_mixed.mp4")
    whole = speech_regions(audio)  # 71 s: one chunk
    # nominal boundaries at 19, 38 and 57 s lie inside speech; they move to pauses
    chunked = speech_regions(audio, VadSettings(chunk_s=19.0))
    assert len(whole) >= 8 and len(chunked) == len(whole)
    for (s1, e1), (s2, e2) in zip(whole, chunked, strict=True):
        assert abs(s1 - s2) <= 0.1 and abs(e1 - e2) <= 0.1, (whole, chunked)
    assert all(a[1] <= b[0] for a, b in zip(chunked, chunked[1:], strict=False))
    # every true turn is covered by speech regions
    for turn in truth("confession_mixed")["turns"]:
        covered = sum(max(0.0, min(e, turn["end"]) - max(s, turn["start"])) for s, e in chunked)
        assert covered >= 0.9 * (turn["end"] - turn["start"]), (turn, chunked)


def test_chunks_are_cut_in_pauses():
    from toolkit.vad import _quiet_cuts

    tone = np.sin(np.arange(16000 * 60) * 0.05).astype(np.float32)
    tone[16000 * 25:16000 * 25 + 4000] = 0.0  # a quarter-second pause at 25 s
    cuts = _quiet_cuts(tone, 16000 * 30)
    assert cuts[0] == 0 and cuts[-1] == tone.size
    assert 25 * 16000 <= cuts[1] <= 25 * 16000 + 4000


def test_silence_has_no_regions():
    assert speech_regions(np.zeros(16000 * 5, dtype=np.float32)) == []
    assert speech_regions(np.zeros(0, dtype=np.float32)) == []
