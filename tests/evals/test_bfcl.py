"""BFCL-v3 adapter: bfcl-eval's own generation + checkers, run in the benchmark's venv.

The slow tests need the venv (`evals/requirements/bfcl.txt`, built once from the package registry, a few
minutes); they never reach a model API: oracle and idle are answered inside the runner, and the model policy
is a scripted provider served by `envfactory.agent.openai_server` on localhost.
"""

from __future__ import annotations

import importlib.util
import itertools
import json

import pytest

from envfactory.llm import ProviderConfig
from evals.base import EvalContext, PolicySpec, get_benchmark
from evals.isolated import RUNNERS_DIR, IsolatedEnvError, ensure_venv

DEFAULTS = ["multi_turn_base", "multi_turn_miss_func", "multi_turn_miss_param", "multi_turn_long_context",
            "simple", "multiple", "parallel", "parallel_multiple"]


def _runner_module():
    spec = importlib.util.spec_from_file_location("bfcl_runner", RUNNERS_DIR / "bfcl_runner.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # stdlib-only at import time
    return mod


def _ctx(tmp_path, policy: PolicySpec, categories, limit) -> EvalContext:
    return EvalContext(policy=policy, categories=categories, limit=limit, work_dir=tmp_path)


@pytest.fixture(scope="module")
def bfcl_venv():
    try:
        return ensure_venv("bfcl")
    except IsolatedEnvError as e:  # no package registry reachable: nothing to run the benchmark with
        pytest.skip(f"bfcl venv unavailable: {e}")


# ------------------------------------------------------------------------------------------------- fast


def test_gold_calls_from_possible_answers():
    r = _runner_module()
    funcs = [{"name": "calculate_emissions", "parameters": {"properties": {
        "distance": {}, "fuel_type": {}, "fuel_efficiency": {}, "efficiency_reduction": {}},
        "required": ["distance", "fuel_type", "fuel_efficiency"]}}]
    answer = [{"calculate_emissions": {"distance": [12000], "fuel_type": ["gas"], "fuel_efficiency": ["", 25.0],
                                       "efficiency_reduction": [0, ""]}}]
    # "" marks optional: omitted unless required, where the first real option is used
    assert r.single_turn_gold_calls(answer, funcs) == [
        ("calculate_emissions", {"distance": 12000, "fuel_type": "gas", "fuel_efficiency": 25.0})]
    nested = [{"f": {"d": [{"a": ["x", "y"], "b": ["", 1]}], "l": [[{"k": [1]}, {"k": [2]}]]}}]
    assert r.single_turn_gold_calls(nested, [{"name": "f", "parameters": {"properties": {}, "required": []}}]) == [
        ("f", {"d": {"a": "x"}, "l": [{"k": 1}, {"k": 2}]})]
    # a namespace dropped in the answer maps back to the one offered function
    assert r.single_turn_gold_calls([{"find_closest": {"x": [1]}}],
                                    [{"name": "restaurant_search.find_closest", "parameters": {}}])[0][0] == \
        "restaurant_search.find_closest"
    assert r.multi_turn_gold_calls(["cd(folder='document')", "mv(source='a', destination='b')"], []) == [
        ("cd", {"folder": "document"}), ("mv", {"source": "a", "destination": "b"})]
    assert r.single_turn_unscorable([{"name": "g", "parameters": {"properties": {"q": {}}, "required": ["s"]}}],
                                    [{"g": {"q": ["hi"]}}])


def test_unavailable_when_venv_cannot_be_built(tmp_path, monkeypatch):
    from evals import bfcl

    def broken(name, log=None):
        raise IsolatedEnvError("pip install for bfcl failed: no index")

    monkeypatch.setattr(bfcl, "ensure_venv", broken)
    res = get_benchmark("bfcl").run(_ctx(tmp_path, PolicySpec(kind="idle", name="idle"), ["simple"], 1))
    assert res.status == "unavailable" and "no index" in res.reason and res.categories == []
    with pytest.raises(ValueError, match="bfcl: unknown categories"):
        get_benchmark("bfcl").run(_ctx(tmp_path, PolicySpec(kind="idle", name="idle"), ["sql"], 1))


def test_result_from_runner_output(tmp_path, monkeypatch):
    from evals import bfcl

    seen = {}

    def fake_runner(name, request, work_dir, timeout_s=0, env=None):
        seen.update(request)
        return {"package_version": "bfcl-eval==2025.7.17", "data_version": bfcl.DATA_VERSION, "data_checksum": "ab",
                "categories": [{"category": "simple", "ids": ["simple_0", "simple_1"], "outcomes": [1, 0],
                                "accuracy": 0.5, "correct_count": 1, "total_count": 2, "inference_errors": 0,
                                "unscorable_ids": []}]}

    monkeypatch.setattr(bfcl, "ensure_venv", lambda name, log=None: "python")
    monkeypatch.setattr(bfcl, "run_runner", fake_runner)
    res = get_benchmark("bfcl").run(_ctx(tmp_path, PolicySpec(kind="oracle", name="oracle"), ["simple"], 2))
    assert seen["limit"] == 2 and seen["policy"]["kind"] == "oracle" and seen["categories"] == ["simple"]
    (cat,) = res.categories
    assert (res.status, cat.score, cat.n, round(cat.stderr, 6)) == ("scored", 0.5, 2, 0.5)
    assert res.data_checksum == "ab" and res.data_version == "bfcl-eval==2025.7.17 BFCL_v3"


# ------------------------------------------------------------------------------------------------- slow


@pytest.mark.slow
def test_oracle_scores_max_on_default_categories(tmp_path, bfcl_venv):
    res = get_benchmark("bfcl").run(_ctx(tmp_path, PolicySpec(kind="oracle", name="oracle"), [], 3))
    assert res.status == "scored", res.reason
    assert [c.category for c in res.categories] == DEFAULTS
    assert all(c.n == 3 and c.score == 1.0 and c.stderr == 0.0 for c in res.categories), res.categories
    assert res.data_version == "bfcl-eval==2025.7.17 BFCL_v3" and len(res.data_checksum) == 64
    assert res.reason == ""


@pytest.mark.slow
def test_idle_scores_zero(tmp_path, bfcl_venv):
    res = get_benchmark("bfcl").run(_ctx(tmp_path, PolicySpec(kind="idle", name="idle"), [], 3))
    assert res.status == "scored"
    assert [c.category for c in res.categories] == DEFAULTS
    assert all(c.n == 3 and c.score == 0.0 for c in res.categories), res.categories


@pytest.mark.slow
def test_scripted_model_through_openai_endpoint(tmp_path, bfcl_venv):
    # simple_0: calculate_triangle_area(base=10, height=5) is right; the answer to simple_1 is wrong.
    # multi_turn_base_0: the gold calls of each turn, then a text reply that ends the turn; the calls are
    # executed by the package against its simulated file system, results go back as tool messages.
    ids = itertools.count()
    call = lambda name, **args: {"id": f"c{next(ids)}", "name": name, "arguments": args}
    done = {"content": "Done."}
    script = [
        {"tool_calls": [call("calculate_triangle_area", base=10, height=5)]},
        {"tool_calls": [call("math_factorial", number=6)]},
        {"tool_calls": [call("cd", folder="document"), call("mkdir", dir_name="temp"),
                        call("mv", source="final_report.pdf", destination="temp")]}, done,
        {"tool_calls": [call("cd", folder="temp"),
                        call("grep", file_name="final_report.pdf", pattern="budget analysis")]},
        done,
        {"tool_calls": [call("sort", file_name="final_report.pdf")]}, done,
        {"tool_calls": [call("cd", folder=".."), call("mv", source="previous_report.pdf", destination="temp"),
                        call("cd", folder="temp"),
                        call("diff", file_name1="final_report.pdf", file_name2="previous_report.pdf")]}, done,
    ]
    responses = tmp_path / "script.json"
    responses.write_text(json.dumps(script))
    policy = PolicySpec(kind="model", name="scripted-policy",
                        provider=ProviderConfig(name="scripted", model="scripted", responses=str(responses),
                                                max_retries=0))
    res = get_benchmark("bfcl").run(_ctx(tmp_path / "a", policy, ["simple"], 2))
    assert res.status == "scored", res.reason
    (simple,) = res.categories
    assert (simple.score, simple.n, simple.metrics["inference_errors"]) == (0.5, 2, 0.0)

    responses.write_text(json.dumps(script[2:]))
    res = get_benchmark("bfcl").run(_ctx(tmp_path / "b", policy, ["multi_turn_base"], 1))
    (mt,) = res.categories
    assert (mt.score, mt.n, mt.metrics["inference_errors"]) == (1.0, 1, 0.0), res
    log = (tmp_path / "b" / "bfcl" / "runner.log").read_text()
    assert "Error during inference" not in log
