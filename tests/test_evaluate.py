"""toolkit.evaluate: known answers on built transcripts, the CLI, and agreement with the shared
benchmark scorer (../shared/bench/score.py) on the real samples' pipeline output."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from toolkit.evaluate import chrf, evaluate
from toolkit.transcript import MediaInfo, Segment, Transcript, Word

from .conftest import SHARED_BENCH, truth

TRUTH = {
    "duration": 10.0, "speakers": ["A", "B"], "languages": ["ru", "az"],
    "turns": [
        {"speaker": "A", "language": "ru", "start": 1.0, "end": 3.0, "text": "Мы жили в Ракке.",
         "translation_en": "We lived in Raqqa."},
        {"speaker": "B", "language": "az", "start": 4.0, "end": 6.0, "text": "Biz Bakıdan gəldik.",
         "translation_en": "We came from Baku."},
    ],
}


def _segment(start, end, speaker, language, words, translation=""):
    step = (end - start) / len(words)
    return Segment(start, end, " ".join(words), language, speaker,
                   words=[Word(start + i * step, start + (i + 1) * step, f" {w}") for i, w in enumerate(words)],
                   translation={"en": translation})


def _transcript(*segments):
    return Transcript(MediaInfo("x.mp4", 10.0), list(segments), ["az", "ru"])


def test_perfect_transcript_scores_perfectly():
    hyp = _transcript(_segment(1.0, 3.0, "S1", "ru", ["Мы", "жили", "в", "Ракке."], "We lived in Raqqa."),
                      _segment(4.0, 6.0, "S2", "az", ["Biz", "Bakıdan", "gəldik."], "We came from Baku."))
    result = evaluate(TRUTH, hyp)
    assert result.wer == {"ru": 0.0, "az": 0.0} and result.cer == {"ru": 0.0, "az": 0.0}
    assert result.lid_accuracy == 1.0 and result.der == 0.0 and result.chrf_en == 100.0
    assert result.speakers == {"truth": 2, "hypothesis": 2}
    assert result.boundary_ms == 0 and result.words_outside_turns == 0


def test_errors_are_counted_where_they_are():
    hyp = _transcript(
        _segment(1.0, 3.0, "S1", "ru", ["Мы", "жили", "Ракке"]),  # one word deleted: WER 1/4
        _segment(4.0, 6.0, "S1", "ru", ["Биз", "Бакыдан", "гəлдик"]),  # wrong language, wrong speaker
        _segment(8.0, 9.0, "S1", "ru", ["музыка"]),  # invented over silence
    )
    result = evaluate(TRUTH, hyp)
    assert result.wer["ru"] == 0.25 and result.wer["az"] == 1.0
    assert result.lid_accuracy == 0.5
    assert result.words_outside_turns == 1
    assert result.speakers == {"truth": 2, "hypothesis": 1}
    # scored (0.25 s collars): 1.5 s of A and 1.5 s of B; one hypothesis speaker for both turns
    # confuses 1.5 s, and the word over silence adds 1 s of false alarm
    assert result.der == pytest.approx(2.5 / 3.0, abs=1e-3)
    assert result.der_parts == {"miss": 0.0, "false_alarm": pytest.approx(1 / 3, abs=1e-3),
                                "confusion": 0.5}


def test_chrf_is_sacrebleu_with_the_scorer_settings():
    assert chrf("We lived in Raqqa.", "we lived in raqqa.") == 100.0  # lowercased
    assert chrf("", "We lived in Raqqa.") == 0.0
    assert 0 < chrf("We lived in Rakka", "We lived in Raqqa.") < 100
    assert chrf("We  lived\tin Raqqa.", "We lived in Raqqa.") == 100.0  # whitespace runs are one space


def test_cli_evaluate(tmp_path):
    hyp = _transcript(_segment(1.0, 3.0, "S1", "ru", ["Мы", "жили", "в", "Ракке."], "We lived in Raqqa."))
    hyp.save(tmp_path / "hyp.json")
    (tmp_path / "truth.json").write_text(json.dumps(TRUTH, ensure_ascii=False), encoding="utf-8")
    cmd = [sys.executable, "-m", "toolkit", "evaluate", str(tmp_path / "truth.json"), str(tmp_path / "hyp.json")]
    proc = subprocess.run([*cmd, "--json"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    scores = json.loads(proc.stdout)
    assert scores["cer"] == {"ru": 0.0, "az": 1.0} and scores["lid_accuracy"] == 0.5
    (tmp_path / "bad.json").write_text("{}")
    proc = subprocess.run([*cmd[:4], str(tmp_path / "bad.json"), str(tmp_path / "hyp.json")],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "not a truth file" in proc.stderr


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


@pytest.mark.parametrize("name", ["confession_mixed", "real_voice_mixed", "russian_two_speakers", "azeri_music"])
def test_agrees_with_the_shared_scorer(run_pipeline, name):
    if not (SHARED_BENCH / "score.py").is_file():
        pytest.skip(f"the shared scorer is not at {SHARED_BENCH}")
    sys.path.insert(0, str(SHARED_BENCH))
    try:
        import score as scorer
    finally:
        sys.path.pop(0)
    transcript = run_pipeline(name, diarize=True)
    theirs = _flat(scorer.score(truth(name), transcript.to_dict()))
    ours = _flat(evaluate(truth(name), transcript).to_dict())
    assert set(theirs) == set(ours)
    for key, value in theirs.items():
        if isinstance(value, float):  # chrF on a 0-100 scale: 3 decimals of its 0-1 value
            assert ours[key] == pytest.approx(value, abs=0.1 if "chrf" in key else 1e-3), key
        else:
            assert ours[key] == value, key
