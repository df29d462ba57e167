"""`vllm serve` of a stage's model for GPU evaluation: command, port, health check, teardown.

The server runs in its own virtualenv (evals/requirements/vllm.txt: vLLM pins an older transformers than the
training stack), serves the checkpoint under the stage's name with the same chat template training used, and
parses Qwen3-style tool calls (`hermes`, the format of envfactory/agent/templates/qwen3_tools.jinja). Callers
reach it as an OpenAI-compatible endpoint (provider `openai`, `engine: vllm`), so BFCL can use its own
handler against it. Unexecuted here (no GPU on the development machines): the commands and configs are tested
by dry run, and the README says so.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Iterator

from pydantic import BaseModel, Field

TEMPLATES = Path(__file__).resolve().parents[1] / "agent" / "templates"


class VllmServeSpec(BaseModel):
    model: str = Field(description="checkpoint folder or hub id")
    served_name: str
    port: int
    gpu_memory_utilization: float = 0.9
    max_model_len: int = 8192
    tensor_parallel_size: int = 1
    chat_template: str = "qwen3_tools"
    seed: int = 0

    def command(self, python: str = "python") -> list[str]:
        return [python, "-m", "vllm.entrypoints.openai.api_server", "--model", self.model,
                "--served-model-name", self.served_name, "--host", "127.0.0.1", "--port", str(self.port),
                "--gpu-memory-utilization", str(self.gpu_memory_utilization),
                "--max-model-len", str(self.max_model_len), "--tensor-parallel-size", str(self.tensor_parallel_size),
                "--chat-template", str(TEMPLATES / f"{self.chat_template}.jinja"),
                "--enable-auto-tool-choice", "--tool-call-parser", "hermes", "--seed", str(self.seed),
                "--generation-config", "vllm"]  # vLLM's sampling defaults, not the checkpoint's

    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


class VllmServeError(RuntimeError):
    pass


def wait_healthy(url: str, proc: subprocess.Popen | None, timeout_s: float) -> None:
    """Poll `GET /health` until 200; fail early when the server process died (its log says why)."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise VllmServeError(f"vllm serve exited with {proc.returncode} before it was healthy")
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(2)
    raise VllmServeError(f"vllm serve was not healthy at {url} within {timeout_s:.0f} s")


@contextlib.contextmanager
def vllm_server(spec: VllmServeSpec, log_path: Path, startup_timeout_s: float = 900) -> Iterator[str]:
    """Start the server in the vllm venv, yield its base URL, and stop it (its whole process group) on exit."""
    from evals.isolated import ensure_venv

    if not _gpu_visible():  # torch honours CUDA_VISIBLE_DEVICES
        raise VllmServeError("engine vllm needs a visible GPU; on CPU use engine llama_cpp or transformers")
    python = ensure_venv("vllm")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(spec.command(str(python)), stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            wait_healthy(spec.base_url().removesuffix("/v1") + "/health", proc, startup_timeout_s)
            yield spec.base_url()
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _gpu_visible() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False
