"""BFCL-v3 scored the official way where it can be: BFCL's own Qwen FC handler on a vLLM/SGLang endpoint (else a
labelled handler), and BFCL's own summary numbers (overall, non-live, live, multi-turn) beside our task-weighted
mean, null with the missing categories when the formula cannot be computed.

Fast tests run no model and no venv: the runner is replaced by a function that records what it was asked. The
slow test drives the real runner (its venv) against a stand-in "vLLM" on localhost.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from envfactory.llm import ProviderConfig
from evals import bfcl
from evals.base import Aggregate, BenchmarkResult, CategoryScore, EvalContext, PolicySpec, get_benchmark
from evals.isolated import RUNNERS_DIR, IsolatedEnvError, ensure_venv
from evals.report import ModelResults, Provenance, headline_labels, headline_metrics

FALLBACK = "handler: openai-fc via envfactory qwen3_tools template (non-official)"


def _runner_module():
    spec = importlib.util.spec_from_file_location("bfcl_runner", RUNNERS_DIR / "bfcl_runner.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # stdlib-only at import time
    return mod


def _runner_output(cats: dict[str, tuple[list[int], int]]) -> dict:
    """What the runner returns: per category (outcomes, full category size)."""
    return {"package_version": bfcl.PACKAGE_PIN, "data_version": bfcl.DATA_VERSION, "data_checksum": "ab",
            "categories": [{"category": c, "ids": [f"{c}_{i}" for i in range(len(o))], "outcomes": o,
                            "accuracy": sum(o) / len(o), "correct_count": sum(o), "total_count": len(o),
                            "size": size, "inference_errors": 0, "unscorable_ids": []}
                           for c, (o, size) in cats.items()]}


@pytest.fixture
def fake_runner(monkeypatch):
    """Records (request, env) of every runner call; answers with `seen["out"]`."""
    seen = {"out": _runner_output({"simple": ([1, 0], 400), "multi_turn_base": ([1, 1], 200)})}

    def run_runner(name, request, work_dir, timeout_s=0, env=None):
        seen["request"], seen["env"] = request, env
        return seen["out"]

    @contextlib.contextmanager
    def serve(client, name):
        seen["served"] = name
        yield "http://127.0.0.1:1/v1"

    monkeypatch.setattr(bfcl, "ensure_venv", lambda name, log=None: "python")
    monkeypatch.setattr(bfcl, "run_runner", run_runner)
    import envfactory.agent.openai_server as openai_server

    monkeypatch.setattr(openai_server, "serve", serve)
    return seen


def _run(tmp_path, policy: PolicySpec, categories=("simple", "multi_turn_base")) -> BenchmarkResult:
    ctx = EvalContext(policy=policy, categories=list(categories), limit=2, max_turns=20, work_dir=tmp_path / "w")
    return get_benchmark("bfcl").run(ctx)


def _qwen_on(engine, model, base_url="http://gpu-node:8000/v1", base_model="Qwen/Qwen3-8B") -> PolicySpec:
    return PolicySpec(kind="model", name="qwen3-8b-rl", base_model=base_model, chat_template="qwen3_tools",
                      provider=ProviderConfig(name="openai", model=model, base_url=base_url, engine=engine))


def _results(res: BenchmarkResult) -> ModelResults:
    provenance = Provenance(experiment="e", config_hash="0" * 16, git_sha="x", created_at="now",
                            package_versions={}, data_checksums={})
    return ModelResults(model="m", final_stage="rl", benchmarks={"bfcl": res}, provenance=provenance)


# --------------------------------------------------------------------------------------- which handler


def test_qwen_on_vllm_uses_bfcl_qwen_fc_handler_with_skip_server_setup(tmp_path, fake_runner):
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    res = _run(tmp_path, _qwen_on("vllm", str(ckpt)))
    pol, env = fake_runner["request"]["policy"], fake_runner["env"]
    assert pol["handler"] == "bfcl-qwen-fc" and pol["bfcl_model"] == "Qwen/Qwen3-8B-FC"
    assert pol["skip_server_setup"] is True and pol["engine"] == "vllm" and pol["local_model_path"] == str(ckpt)
    assert env == {"VLLM_ENDPOINT": "gpu-node", "VLLM_PORT": "8000"}  # BFCL's OSSHandler reads these
    assert "served" not in fake_runner  # nothing served in-process
    assert "Qwen/Qwen3-8B-FC" in res.handler and "vllm" in res.handler
    assert not any("handler:" in c.label for c in res.categories)  # official: no qualifier
    assert "handler:" not in headline_labels(_results(res)).get("bfcl", "")

    # the runner turns that into bfcl-eval's generate_results arguments (`bfcl generate --skip-server-setup ...`)
    r = _runner_module()
    args = r.generation_args(fake_runner["request"], "RESULTS")
    assert (args.skip_server_setup, args.backend, args.local_model_path) == (True, "vllm", str(ckpt))
    assert r.served_model_id(pol) == str(ckpt)  # BFCL requests model=<local_model_path>


def test_qwen_on_sglang_served_under_its_hub_id(tmp_path, fake_runner):
    _run(tmp_path, _qwen_on("sglang", "Qwen/Qwen3-4B", base_url="http://10.0.0.5:30000/v1/",
                            base_model="Qwen/Qwen3-4B"))
    pol, env = fake_runner["request"]["policy"], fake_runner["env"]
    assert (pol["bfcl_model"], pol["engine"], pol["local_model_path"]) == ("Qwen/Qwen3-4B-FC", "sglang", None)
    assert env == {"VLLM_ENDPOINT": "10.0.0.5", "VLLM_PORT": "30000"}
    r = _runner_module()
    assert r.served_model_id(pol) == "Qwen/Qwen3-4B"  # QwenFCHandler strips -FC
    assert r.generation_args(fake_runner["request"], "R").backend == "sglang"


def test_in_process_model_is_labelled_with_the_template(tmp_path, fake_runner):
    policy = PolicySpec(kind="model", name="qwen3-1.7b-sft", base_model="Qwen/Qwen3-1.7B", chat_template="qwen3_tools",
                        provider=ProviderConfig(name="scripted", responses=str(tmp_path / "none.json")))
    res = _run(tmp_path, policy)
    pol = fake_runner["request"]["policy"]
    assert "handler" not in pol and fake_runner["env"] == {} and fake_runner["served"] == "qwen3-1.7b-sft"
    assert all(FALLBACK in c.labels() for c in res.categories)
    assert not hasattr(_runner_module().generation_args(fake_runner["request"], "R"), "skip_server_setup")
    # the label travels with the flat metrics (MLflow tags `label.<metric>`, sweep report)
    labels = headline_labels(_results(res))
    assert FALLBACK in labels["bfcl"] and FALLBACK in labels["bfcl.simple"] and FALLBACK in labels["bfcl.multi_turn"]


@pytest.mark.parametrize("engine,base_model,label", [
    (None, "Qwen/Qwen3-8B", "handler: openai-fc on an OpenAI-compatible endpoint"),  # engine never guessed
    ("vllm", None, "handler: openai-fc via vllm chat template (non-official)"),  # not a Qwen model
    ("vllm", "HuggingFaceTB/SmolLM2-135M-Instruct", "handler: openai-fc via vllm chat template (non-official)"),
])
def test_other_endpoints_use_the_openai_handler_labelled(tmp_path, fake_runner, engine, base_model, label):
    res = _run(tmp_path, _qwen_on(engine, "served-name", base_model=base_model))
    assert "handler" not in fake_runner["request"]["policy"] and fake_runner["env"] == {}
    assert all(label in c.labels() for c in res.categories)


def test_qwen_fc_refuses_an_endpoint_it_cannot_reach(tmp_path, fake_runner):
    with pytest.raises(ValueError, match="neither an absolute local directory"):
        _run(tmp_path, _qwen_on("vllm", "my-served-name"))
    with pytest.raises(ValueError, match="http://<host>:<port>/v1"):
        _run(tmp_path, _qwen_on("vllm", "Qwen/Qwen3-8B", base_url="https://gpu-node/api/v1"))
    assert "request" not in fake_runner


def test_runner_checks_the_server_before_the_package_waits_on_it(monkeypatch):
    r = _runner_module()

    class Models(BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps({"data": [{"id": "Qwen/Qwen3-8B"}]}).encode()
            self.send_response(200 if self.path == "/v1/models" else 404)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Models)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("VLLM_ENDPOINT", "127.0.0.1")
        monkeypatch.setenv("VLLM_PORT", str(server.server_address[1]))
        r.check_server({"bfcl_model": "Qwen/Qwen3-8B-FC", "local_model_path": None})
        with pytest.raises(SystemExit, match="serves \\['Qwen/Qwen3-8B'\\]"):
            r.check_server({"bfcl_model": "Qwen/Qwen3-8B-FC", "local_model_path": "/models/rl"})
        monkeypatch.setenv("VLLM_PORT", "1")
        with pytest.raises(SystemExit, match="did not answer"):
            r.check_server({"bfcl_model": "Qwen/Qwen3-8B-FC"}, timeout_s=2)
    finally:
        server.shutdown()


# --------------------------------------------------------------------------------------- BFCL's aggregates

ACC = {"simple": 0.9, "java": 0.6, "javascript": 0.3, "multiple": 0.8, "parallel": 0.7, "parallel_multiple": 0.5,
       "irrelevance": 1.0, "live_simple": 0.5, "live_multiple": 0.4, "live_parallel": 0.25,
       "live_parallel_multiple": 0.5, "live_irrelevance": 0.8, "live_relevance": 0.5,
       "multi_turn_base": 0.2, "multi_turn_miss_func": 0.1, "multi_turn_miss_param": 0.3,
       "multi_turn_long_context": 0.0}
SIZE = {c: 100 for c in ACC} | {"live_simple": 100, "live_multiple": 300, "live_parallel": 20,
                                "live_parallel_multiple": 20, "live_irrelevance": 50, "live_relevance": 10}


def _agg(cats):
    return bfcl.bfcl_aggregates({c: ACC[c] for c in cats}, {c: 2 for c in cats}, {c: SIZE[c] for c in cats})


def test_bfcl_formula_on_every_category():
    a = _agg(ACC)
    # non-live: mean(mean(.9, .6, .3), .8, .7, .5, 1.0) = mean(.6, .8, .7, .5, 1.0)
    assert a["non_live"].score == pytest.approx(0.72)
    # live: weighted by category size (not by the 2 tasks run each: that would be 2.95 / 6 = .4917)
    assert a["live"].score == pytest.approx((50 + 120 + 5 + 10 + 40 + 5) / 500)
    assert a["multi_turn"].score == pytest.approx(0.15) and a["multi_turn"].label == "BFCL multi_turn formula"
    assert a["overall"].score == pytest.approx((0.72 + 0.46 + 0.15) / 3)
    assert a["overall"].missing == [] and a["overall"].n == 2 * len(ACC)


def test_missing_categories_make_bfcl_overall_null_with_the_reason():
    a = _agg([c for c in ACC if c not in ("java", "javascript")])
    assert a["overall"].score is None and a["non_live"].score is None
    assert a["overall"].missing == a["non_live"].missing == ["java", "javascript"]
    assert "not supported by this adapter" in a["overall"].reason
    assert a["live"].score == pytest.approx(0.46) and a["multi_turn"].score == pytest.approx(0.15)

    # the default config's categories: multi-turn reported over what ran, labelled partial; the rest null
    a = _agg(["simple", "multiple", "multi_turn_base"])
    assert a["multi_turn"].score == pytest.approx(0.2) and "partial: 1/4" in a["multi_turn"].label
    assert a["multi_turn"].missing == ["multi_turn_miss_func", "multi_turn_miss_param", "multi_turn_long_context"]
    assert a["live"].score is None and a["live"].missing == bfcl.LIVE
    assert a["overall"].score is None and set(bfcl.LIVE) <= set(a["overall"].missing)

    a = _agg(["simple"])
    assert a["multi_turn"].score is None and a["multi_turn"].reason == "no multi-turn category was run"


def test_aggregates_reach_results_and_flat_metrics(tmp_path, fake_runner):
    res = _run(tmp_path, PolicySpec(kind="oracle", name="oracle"))
    assert res.score == pytest.approx(0.75)  # ours, task-weighted: (1 + 2) / 4
    assert res.aggregates["multi_turn"].score == 1.0 and res.aggregates["overall"].score is None
    back = BenchmarkResult.model_validate_json(res.model_dump_json())  # the results file keeps null + missing
    assert back.aggregates["overall"].score is None and "java" in back.aggregates["overall"].missing
    metrics, labels = headline_metrics(_results(res)), headline_labels(_results(res))
    assert metrics["bfcl"] == pytest.approx(0.75) and metrics["bfcl.multi_turn"] == 1.0
    assert "bfcl.overall" not in metrics and "bfcl.live" not in metrics
    assert "task-weighted mean" in labels["bfcl"] and "partial: 1/4" in labels["bfcl.multi_turn"]
    assert set(labels) <= set(metrics)


def test_aggregate_names_cannot_shadow_categories():
    with pytest.raises(ValueError, match="also category names"):
        BenchmarkResult(benchmark="b", status="scored", policy="p", adapter_version="1",
                        categories=[CategoryScore(category="overall", score=1.0, n=1, stderr=None)],
                        aggregates={"overall": Aggregate(score=1.0)})


# --------------------------------------------------------------------------------------- slow: the real runner


@pytest.mark.slow
def test_bfcl_qwen_fc_handler_against_a_stand_in_vllm(tmp_path):
    """The package's QwenFCHandler, skip-server-setup, against a localhost server speaking vLLM's /v1/models and
    /v1/completions: it formats BFCL's Qwen prompt, parses `<tool_call>` text, and the package scores it."""
    from envfactory.default_model import models_dir

    tok_dir = models_dir() / "smollm2-135m"  # any local config + tokenizer: the handler only counts tokens
    if not (tok_dir / "tokenizer_config.json").is_file():
        pytest.skip("no local tokenizer (envfactory models prepare)")
    try:
        ensure_venv("bfcl")
    except IsolatedEnvError as e:
        pytest.skip(f"bfcl venv unavailable: {e}")
    requests = []
    right = '<tool_call>\n{"name": "calculate_triangle_area", "arguments": {"base": 10, "height": 5}}\n</tool_call>'

    class VLLM(BaseHTTPRequestHandler):
        def _send(self, obj):
            body = json.dumps(obj).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            self._send({"object": "list", "data": [{"id": str(tok_dir), "object": "model"}]})

        def do_POST(self):
            req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            requests.append((self.path, req))
            text = right if "triangle" in req["prompt"] else "I cannot help with that."
            self._send({"id": "c", "object": "text_completion", "created": 0, "model": req["model"],
                        "choices": [{"index": 0, "text": text, "finish_reason": "stop", "logprobs": None}],
                        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})

        def log_message(self, *a):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), VLLM)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        policy = _qwen_on("vllm", str(tok_dir), base_url=f"http://127.0.0.1:{server.server_address[1]}/v1")
        ctx = EvalContext(policy=policy, categories=["simple", "multi_turn_base"], limit=2, work_dir=tmp_path)
        res = get_benchmark("bfcl").run(ctx)
    finally:
        server.shutdown()
    assert res.status == "scored", res.reason
    simple, multi = res.categories
    assert (simple.n, simple.score) == (2, 0.5)  # simple_0 right, simple_1 not
    assert (multi.n, multi.score) == (2, 0.0)  # no calls: every multi-turn entry fails
    assert res.aggregates["multi_turn"].score == 0.0 and res.aggregates["overall"].score is None
    assert {p for p, _ in requests} == {"/v1/completions"} and len(requests) > 2
    assert all(r["model"] == str(tok_dir) and r["prompt"].startswith("<|im_start|>system") and "<tools>" in r["prompt"]
               for _, r in requests)  # BFCL's Qwen template, BFCL's model id
    assert os.path.isdir(tmp_path / "bfcl" / "project" / "result" / "Qwen_Qwen3-8B-FC")
