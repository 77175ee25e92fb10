"""The GPU path: float16 on CUDA, chosen automatically. Skipped where there is no GPU."""

import pytest

from toolkit import models

from .conftest import score

pytestmark = pytest.mark.requires_cuda


def test_auto_runtime_is_float16_on_cuda():
    assert models.resolve_runtime() == models.Runtime("cuda", "float16")


def test_pipeline_on_cuda_matches_cpu_quality(run_pipeline):
    transcript = run_pipeline("confession_mixed", device="cuda")
    assert "float16, cuda" in transcript.models["asr"]
    result = score("confession_mixed", transcript)
    assert result["lid_accuracy"] >= 0.95 and result["words_outside_turns"] == 0
    assert result["cer"]["ru"] <= 0.10


def test_batched_float16_decoding_matches_one_region_at_a_time(run_pipeline):
    batched = run_pipeline("confession_mixed", device="cuda")  # 16 regions per batch on a GPU
    alone = run_pipeline("confession_mixed", device="cuda", batch_size=1)
    assert [(s.speaker, s.language) for s in batched.segments] == [(s.speaker, s.language) for s in alone.segments]
    # float16 kernels for a batch may round differently from one item's; the text must not move
    same = sum(a.text == b.text for a, b in zip(batched.segments, alone.segments, strict=True))
    assert same >= 0.9 * len(alone.segments)
