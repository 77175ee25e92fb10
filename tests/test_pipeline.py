"""The whole pipeline on the real samples with the real offline model (CPU int8)."""

import pytest

from .conftest import score, truth

FULL = {"diarize": True}


def _check_invariants(transcript, duration):
    segments = transcript.segments
    assert segments, "no speech found"
    assert [s.start for s in segments] == sorted(s.start for s in segments)
    for a, b in zip(segments, segments[1:], strict=False):
        assert a.end <= b.start + 1e-6, "segments overlap"
    for seg in segments:
        assert 0 <= seg.start < seg.end <= duration + 1e-6
        assert seg.language in transcript.languages and seg.language != "tr"
        assert seg.text.strip()
        starts = [w.start for w in seg.words]
        assert starts == sorted(starts)
        for w in seg.words:
            assert seg.start - 1e-6 <= w.start <= w.end <= seg.end + 1e-6


@pytest.mark.parametrize("name", ["confession_mixed", "real_voice_mixed"])
def test_mixed_files_language_per_segment(run_pipeline, name):
    transcript = run_pipeline(name, **FULL)
    _check_invariants(transcript, truth(name)["duration"])
    result = score(name, transcript)
    assert result["lid_accuracy"] >= 0.95, result
    assert result["words_outside_turns"] == 0, result
    assert set(transcript.detected_languages) == {"az", "ru"}
    # Russian CER within 0.03 of the oracle (0.066 and ~0.06 measured with the same model)
    assert result["cer"]["ru"] <= 0.10, result
    assert result["cer"]["az"] <= 0.75, result  # the synthetic voice; oracle 0.66 on confession_mixed


def test_music_bed_gives_no_text_outside_speech(run_pipeline):
    transcript = run_pipeline("azeri_music", **FULL)
    _check_invariants(transcript, truth("azeri_music")["duration"])
    result = score("azeri_music", transcript)
    assert result["words_outside_turns"] == 0
    assert result["lid_accuracy"] == 1.0
    assert {s.language for s in transcript.segments} == {"az"}


def test_contract_fields_and_timings(run_pipeline):
    data = run_pipeline("confession_mixed", **FULL).to_dict()
    assert data["media"]["duration"] == pytest.approx(71.0, abs=0.2)
    assert data["media"]["sample_rate"] == 16000 and data["media"]["audio_stream"] == 0
    assert {"extract", "vad", "transcribe"} <= set(data["timings"])
    assert data["models"]["asr"].startswith("whisper-base (ct2 int8")
    for seg in data["segments"]:
        assert {"start", "end", "speaker", "language", "language_confidence", "text", "translation",
                "words"} <= set(seg)
        assert 0.0 <= seg["language_confidence"] <= 1.0


def test_restricted_candidates(run_pipeline):
    transcript = run_pipeline("russian_two_speakers", languages=("ru",), translate_to=None, diarize=False)
    assert {s.language for s in transcript.segments} == {"ru"}
    assert all(not s.translation for s in transcript.segments)
    assert score("russian_two_speakers", transcript)["cer"]["ru"] <= 0.07
