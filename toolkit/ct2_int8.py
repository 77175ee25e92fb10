"""A CTranslate2 Whisper model kept as int8 on disk, so that loading it on a CPU costs no quantization.

Whisper models ship in float16. Loaded with `compute_type="int8"`, CTranslate2 quantizes every
linear weight at each load: ~1 s of one core for Whisper base (145 MB) on every run, as much as
transcribing 10 s of speech. Here the weights are quantized once, the way CTranslate2 does it
(per output row, scale 127 / max |w|, round half to even; convolutions stay float, as its
loader leaves them), written in its `model.bin` layout (binary version 6) and cached. A copy is
used only after it proved equal: the encoder output of a fixed input from both models must be
bit for bit the same, else the original model is loaded as before.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
from pathlib import Path

import numpy as np

DTYPES = ("float32", "int8", "int16", "int32", "float16", "bfloat16")  # CTranslate2's DataType order
MODEL_FILES = ("config.json", "tokenizer.json", "vocabulary.txt", "vocabulary.json", "preprocessor_config.json")


def int8_copy(model_dir: Path, cache: Path) -> Path | None:
    """An int8 copy of the CTranslate2 model in `model_dir` under `cache` (made once, then reused),
    or None when the model cannot be copied faithfully (another layout, already int8, a mismatch)."""
    import ctranslate2

    st = (model_dir / "model.bin").stat()
    key = hashlib.sha256(f"{model_dir.resolve()}|{st.st_size}|{st.st_mtime_ns}|{ctranslate2.__version__}".encode())
    target = cache / f"{model_dir.name}-int8-{key.hexdigest()[:12]}"
    if (target / "verified").is_file():
        return target
    if (target / "unfaithful").is_file():
        return None
    staging = cache / f".{target.name}.{os.getpid()}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        staging.mkdir(parents=True)
        if not _quantize(model_dir / "model.bin", staging / "model.bin"):
            return _refuse(target)
        for name in MODEL_FILES:
            if (model_dir / name).is_file():
                shutil.copyfile(model_dir / name, staging / name)
        if not _same_encoder(model_dir, staging):
            return _refuse(target)
        proof = {"source": str(model_dir), "ctranslate2": ctranslate2.__version__}
        (staging / "verified").write_text(json.dumps(proof))
        try:
            os.rename(staging, target)
        except OSError:  # another process made it first: theirs is as good
            pass
        return target if (target / "verified").is_file() else None
    except OSError:  # a read-only or full cache: load the original as before
        return None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _refuse(target: Path) -> None:
    try:
        target.mkdir(parents=True, exist_ok=True)
        (target / "unfaithful").write_text("this model is loaded from its own folder\n")
    except OSError:
        pass
    return None


def _quantize(source: Path, target: Path) -> bool:
    """Write `source` with its linear and embedding weights as int8 plus a float32 scale per row,
    and every other float16 variable as float32 (what CTranslate2's int8 loader makes of them)."""
    data = source.read_bytes()
    reader = _Reader(data)
    version = reader.uint("I")
    if version != 6:
        return False
    name, revision = reader.string(), reader.uint("I")
    variables = []
    for _ in range(reader.uint("I")):
        var_name = reader.string()
        dims = [reader.uint("I") for _ in range(reader.uint("B"))]
        dtype = DTYPES[reader.uint("B")]
        size = reader.uint("I")
        value = np.frombuffer(data, dtype=dtype, count=size // np.dtype(dtype).itemsize, offset=reader.pos)
        reader.pos += size
        variables.append((var_name, value.reshape(dims)))
    aliases = [(reader.string(), reader.string()) for _ in range(reader.uint("I"))]
    if any(v.dtype == np.int8 and n.endswith("/weight") for n, v in variables):
        return False  # already quantized
    out = []
    for var_name, value in variables:
        if var_name.endswith("/weight") and value.ndim == 2 and value.dtype in (np.float16, np.float32):
            weight, scale = _int8_rows(value)
            out += [(var_name, weight), (var_name + "_scale", scale)]
        elif value.dtype == np.float16:
            out.append((var_name, value.astype(np.float32)))
        else:
            out.append((var_name, value))
    with open(target, "wb") as f:
        def string(text: str) -> None:
            f.write(struct.pack("H", len(text) + 1) + text.encode() + b"\0")

        f.write(struct.pack("I", version))
        string(name)
        f.write(struct.pack("II", revision, len(out)))
        for var_name, value in sorted(out, key=lambda item: item[0]):
            string(var_name)
            f.write(struct.pack("B", value.ndim) + b"".join(struct.pack("I", d) for d in value.shape))
            raw = np.ascontiguousarray(value).tobytes()
            f.write(struct.pack("=BI", DTYPES.index(str(value.dtype)), len(raw)) + raw)
        f.write(struct.pack("I", len(aliases)))
        for alias, original in aliases:
            string(alias)
            string(original)
    return True


def _int8_rows(value: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """CTranslate2's int8 quantization (its converter's `_quantize`, which its loader matches)."""
    rows = value.astype(np.float32)
    amax = np.amax(np.absolute(rows), axis=1)
    amax[amax == 0] = 127.0
    amax = np.maximum(amax, np.float32(127) / np.finfo(np.float32).max)
    scale = (127.0 / amax).astype(np.float32)
    return np.rint(rows * scale[:, None]).astype(np.int8), scale


class _Reader:
    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def uint(self, fmt: str) -> int:
        (value,) = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return value

    def string(self) -> str:
        size = self.uint("H")
        text = self.data[self.pos:self.pos + size - 1].decode()
        self.pos += size
        return text


def _same_encoder(original: Path, copy: Path) -> bool:
    """Whether both folders give bit-identical encoder outputs on a fixed input (loaded as int8)."""
    import ctranslate2

    outputs = []
    for folder in (original, copy):
        model = ctranslate2.models.Whisper(str(folder), device="cpu", compute_type="int8")
        features = np.random.default_rng(0).standard_normal((1, model.n_mels, 1000)).astype(np.float32) * 0.5
        outputs.append(np.array(model.encode(ctranslate2.StorageView.from_array(features))))
        del model
    return np.array_equal(*outputs)
