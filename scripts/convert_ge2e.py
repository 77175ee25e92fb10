#!/usr/bin/env python3
"""One-time conversion of resemblyzer's GE2E voice encoder to `toolkit/assets/ge2e.npz`.

Usage (needs torch, librosa and resemblyzer once; the toolkit itself never imports them):

    pip install torch librosa webrtcvad-wheels
    pip install --no-deps resemblyzer          # the wheel ships resemblyzer/pretrained.pt
    python3 scripts/convert_ge2e.py [--sample samples/confession_mixed.mp4] [--out toolkit/assets/ge2e.npz]

What it writes (float32 unless noted):
  lstm.*, linear.*   the network weights from pretrained.pt's "model_state"
  mel_basis          librosa.filters.mel(sr=16000, n_fft=400, n_mels=40), Slaney, (40, 201)
  ref_audio          int16 excerpt of the sample (a known-answer input for the tests)
  ref_embedding      resemblyzer's torch embed_utterance of that excerpt (after its volume
                     normalisation), (256,)
  ref_partials       resemblyzer's window embeddings of the excerpt, (n, 256)

It then runs the numpy forward pass (`toolkit.speaker_encoder.Ge2eEncoder`) on the same
excerpt and on a longer stretch of the sample and fails unless cosine >= 0.9999.
Weights are Apache-2.0 (resemblyzer, Corentin Jemine); see toolkit/assets/NOTICE.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

REF_SPAN = (1.0, 4.0)  # seconds of the sample kept as the known-answer excerpt
CHECK_SPAN = (0.0, 30.0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sample", default=str(ROOT / "samples" / "confession_mixed.mp4"))
    ap.add_argument("--out", default=str(ROOT / "toolkit" / "assets" / "ge2e.npz"))
    args = ap.parse_args()

    import librosa
    import torch
    from faster_whisper import decode_audio
    from resemblyzer import VoiceEncoder
    from resemblyzer.audio import normalize_volume

    torch.set_num_threads(1)
    enc = VoiceEncoder("cpu", verbose=False)
    state = {k: v.detach().cpu().numpy().astype(np.float32) for k, v in enc.state_dict().items()
             if k.startswith(("lstm.", "linear."))}
    mel_basis = librosa.filters.mel(sr=16000, n_fft=400, n_mels=40).astype(np.float32)

    audio = decode_audio(args.sample)
    a, b = (int(t * 16000) for t in REF_SPAN)
    ref_audio = np.round(np.clip(audio[a:b], -1, 1) * 32767).astype(np.int16)
    ref_wav = normalize_volume(ref_audio.astype(np.float32) / 32767, -30, increase_only=True)
    ref_embedding, ref_partials, _ = enc.embed_utterance(ref_wav, return_partials=True)

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, mel_basis=mel_basis, ref_audio=ref_audio,
                        ref_embedding=ref_embedding.astype(np.float32),
                        ref_partials=ref_partials.astype(np.float32), **state)

    from toolkit.speaker_encoder import Ge2eEncoder

    ours = Ge2eEncoder(out)
    ok = True
    for label, wav in (("ref excerpt", ref_audio.astype(np.float32) / 32767),
                       ("check span", audio[int(CHECK_SPAN[0] * 16000):int(CHECK_SPAN[1] * 16000)])):
        theirs = enc.embed_utterance(normalize_volume(wav, -30, increase_only=True))
        mine = ours.embed_utterance(wav)
        cos = float(np.dot(theirs, mine) / np.linalg.norm(theirs) / np.linalg.norm(mine))
        print(f"{label}: cosine(numpy, torch) = {cos:.7f}")
        ok &= cos >= 0.9999
    mine_partials = ours.embed_windows(ref_audio.astype(np.float32) / 32767).embeddings
    worst = float(np.min(np.sum(mine_partials * ref_partials, axis=1)))
    print(f"window embeddings: {len(mine_partials)} vs {len(ref_partials)}, worst cosine {worst:.7f}")
    ok &= len(mine_partials) == len(ref_partials) and worst >= 0.9999
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
