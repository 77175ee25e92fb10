import pytest

from toolkit import models


def test_runtime_on_cpu_is_int8():
    runtime = models.resolve_runtime("cpu", "auto")
    assert runtime == models.Runtime("cpu", "int8")
    with pytest.raises(ValueError, match="not supported"):
        models.resolve_runtime("cpu", "bogus")


def test_bundled_base_is_assembled_once(tmp_path, monkeypatch):
    monkeypatch.setenv("TOOLKIT_CACHE", str(tmp_path))
    path = models.whisper_model_path("base")
    assert path.parent == tmp_path
    sizes = {p.name: p.stat().st_size for p in path.iterdir()}
    assert sizes["model.bin"] > 100_000_000 and {"config.json", "tokenizer.json", "vocabulary.txt"} <= set(sizes)
    mtime = (path / "model.bin").stat().st_mtime_ns
    assert models.whisper_model_path("base") == path
    assert (path / "model.bin").stat().st_mtime_ns == mtime
    assert not list(path.glob(".*.tmp"))


def test_offline_named_model_fails_with_what_is_available(monkeypatch):
    monkeypatch.setenv("TOOLKIT_OFFLINE", "1")
    with pytest.raises(models.ModelNotAvailableError, match="available here: base"):
        models.whisper_model_path("large-v3")
    with pytest.raises(models.ModelNotAvailableError, match="unknown Whisper model"):
        models.whisper_model_path("no-such-size")


def test_folder_model(tmp_path):
    with pytest.raises(models.ModelNotAvailableError, match="not a CTranslate2 model folder"):
        models.whisper_model_path(str(tmp_path))
    assert models.whisper_model_path(str(models.whisper_model_path("base"))).is_dir()


def test_list_models():
    entries = models.list_models()
    base = [e for e in entries if e.name == "base"]
    assert base and base[0].available
    assert any(e.name == "large-v3" and not e.available for e in entries)
    kinds = {(e.kind, e.name): e.available for e in entries}
    assert kinds[("speaker-encoder", "ge2e")] and kinds[("translation", "whisper")]
    assert kinds[("translation", "facebook/nllb-200-distilled-600M")] is False  # never shipped here
