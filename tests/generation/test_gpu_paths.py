"""The GPU paths, checked without a GPU: the `vllm serve` command, TRL's vLLM arguments, the card's engine in
config.json, and clear refusals where a GPU is needed. (Unexecuted on GPUs until a GPU run reports it.)"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from envfactory.config import ExperimentConfig, load_config
from envfactory.generation.vllm import VllmServeError, VllmServeSpec, wait_healthy
from envfactory.train.rl import rl_arguments

ROOT = Path(__file__).resolve().parents[2]


def test_vllm_serve_command_serves_the_stage_model_with_the_training_template():
    spec = VllmServeSpec(model="/ckpt/rl/model", served_name="/ckpt/rl/model", port=8123,
                         gpu_memory_utilization=0.45, max_model_len=16384)
    cmd = spec.command("/venv/bin/python")
    assert cmd[:3] == ["/venv/bin/python", "-m", "vllm.entrypoints.openai.api_server"]
    args = dict(zip(cmd[3::2], cmd[4::2]))
    assert args["--model"] == "/ckpt/rl/model" and args["--port"] == "8123"
    assert args["--gpu-memory-utilization"] == "0.45" and args["--max-model-len"] == "16384"
    assert Path(cmd[cmd.index("--chat-template") + 1]).name == "qwen3_tools.jinja"
    assert Path(cmd[cmd.index("--chat-template") + 1]).is_file()
    assert "--enable-auto-tool-choice" in cmd and cmd[cmd.index("--tool-call-parser") + 1] == "hermes"
    assert spec.base_url() == "http://127.0.0.1:8123/v1"


def test_health_check_waits_for_200_and_fails_when_the_server_dies():
    calls = {"n": 0}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            calls["n"] += 1
            self.send_response(200 if calls["n"] >= 2 else 503)
            self.end_headers()

        def log_message(self, *a):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        wait_healthy(f"http://127.0.0.1:{server.server_port}/health", None, timeout_s=20)
        assert calls["n"] >= 2
    finally:
        server.shutdown()
    dead = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    dead.wait()
    with pytest.raises(VllmServeError, match="exited with 3"):
        wait_healthy("http://127.0.0.1:9/health", dead, timeout_s=20)


def test_served_policy_with_vllm_refuses_without_a_gpu(tmp_path):
    from envfactory.generation.serving import served_policy

    cfg = ExperimentConfig.model_validate({"train": {"model": "qwen3-8b"}})
    assert cfg.generation.engine == "vllm" and cfg.generation.gpu_memory_utilization == 0.45  # from the card
    with pytest.raises(VllmServeError, match="needs a visible GPU"):
        with served_policy(cfg.generation, "Qwen/Qwen3-8B", 64, tmp_path / "vllm.log"):
            pass


def test_grpo_rolls_out_with_vllm_colocated_on_gpus_only(tmp_path):
    cfg = ExperimentConfig.model_validate({"train": {"model": "qwen3-8b", "rl": {"prompts_per_step": 2,
                                                                                "num_generations": 8}}})
    gen = cfg.generation
    on_gpu = rl_arguments(cfg.train.rl, tmp_path, gpu=True, bf16=True, engine=gen.engine,
                          gpu_memory_utilization=gen.gpu_memory_utilization)
    assert on_gpu["use_vllm"] is True and on_gpu["vllm_mode"] == "colocate"
    assert on_gpu["vllm_gpu_memory_utilization"] == 0.45
    server = rl_arguments(cfg.train.rl.model_copy(update={"vllm_mode": "server"}), tmp_path, gpu=True, bf16=True,
                          engine="vllm", gpu_memory_utilization=0.45)
    assert server["vllm_mode"] == "server" and "vllm_gpu_memory_utilization" not in server
    on_cpu = rl_arguments(cfg.train.rl.model_copy(update={"deepspeed": None}), tmp_path, gpu=False, bf16=False,
                          engine=gen.engine)
    assert "use_vllm" not in on_cpu
    from trl import GRPOConfig  # TRL accepts the arguments as generated

    args = GRPOConfig(**{**on_gpu, "use_cpu": True, "bf16": False, "deepspeed": None,
                         "gradient_checkpointing": False})
    assert args.use_vllm and args.vllm_mode == "colocate" and args.vllm_gpu_memory_utilization == 0.45


def test_the_cards_engine_survives_the_config_json_round_trip(tmp_path):
    cfg = load_config(ROOT / "config" / "config.yaml")
    assert cfg.generation.engine == "llama_cpp"  # the default card's CPU engine
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg.model_dump(mode="json")))
    again = load_config(path)
    assert again.generation == cfg.generation
    pinned = ExperimentConfig.model_validate({"generation": {"engine": "transformers"}})
    assert pinned.generation.engine == "transformers"  # a config's own choice wins over the card
