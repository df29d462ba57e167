"""Capability retention (lm-eval): the in-repo smoke task loads and is scored by lm-eval through the same
OpenAI-compatible endpoint as the other benchmarks; right answers score 1, wrong or empty ones 0; the report
gives every trained stage's delta against base; the DAG schedules a run per stage. No test reaches the network
(the smoke task's data are files in the repo; every model here is scripted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from envfactory.agent.openai_server import apply_stop, serve
from envfactory.llm import LLMClient, ProviderConfig
from envfactory.llm.providers.scripted import ScriptedProvider
from envfactory.llm.types import ChatResponse
from evals.base import BenchmarkResult, CategoryScore, EvalContext, PolicySpec, get_benchmark
from evals.capability import TASKS_DIR, load_contamination
from evals.report import ModelResults, Provenance, headline_labels, headline_metrics, per_stage_results

ROOT = Path(__file__).resolve().parents[2]
ITEMS = [json.loads(line) for line in (TASKS_DIR / "capability_smoke.jsonl").read_text().splitlines()]
GOLD = {r["question"]: r["answer"] for r in ITEMS}


def _ctx(tmp: Path, kind: str, provider: ProviderConfig | None = None, **kw) -> EvalContext:
    return EvalContext(policy=PolicySpec(kind=kind, name=kind, provider=provider, max_tokens=16), work_dir=tmp, **kw)


def _samples(tmp: Path) -> list[dict]:
    return [json.loads(line) for line in (tmp / "capability" / "samples.jsonl").read_text().splitlines()]


def test_smoke_task_is_ours_small_and_labelled():
    assert len(ITEMS) == 20 and len({r["question"] for r in ITEMS}) == 20
    shots = [json.loads(line) for line in (TASKS_DIR / "capability_smoke_fewshot.jsonl").read_text().splitlines()]
    assert not {s["question"] for s in shots} & set(GOLD)  # few-shot examples are not test items
    bench = load_contamination()
    assert bench.tools == [] and sum(len(d) for _, d in bench.docs) == 23


def test_oracle_scores_1_and_idle_0(tmp_path):
    bench = get_benchmark("capability")
    oracle = bench.run(_ctx(tmp_path / "oracle", "oracle"))
    idle = bench.run(_ctx(tmp_path / "idle", "idle"))
    for res, want in ((oracle, 1.0), (idle, 0.0)):
        assert res.status == "scored" and res.benchmark == "capability"
        [cat] = res.categories
        assert (cat.category, cat.score, cat.n) == ("capability_smoke", want, 20)
        assert res.data_version == "lm-eval==0.4.13 capability_smoke v1.0"
        labels = cat.labels()
        assert "in-repo smoke task (not a standard benchmark)" in labels and "smoke-sized n=20" in labels
    assert oracle.data_checksum == idle.data_checksum  # the same 20 documents
    assert all(s["score"] == 1.0 for s in _samples(tmp_path / "oracle"))


def test_scripted_model_served_in_process_is_scored_by_its_answers(tmp_path):
    """The in-process path (a non-openai provider is served by openai_server): ordered scripted replies, every
    one wrong, score 0 — and the stop sequence `\\n` cuts what the model said after the first line."""
    responses = tmp_path / "wrong.json"
    responses.write_text(json.dumps([{"content": "Atlantis\nbecause"}] * len(ITEMS)))
    res = get_benchmark("capability").run(
        _ctx(tmp_path, "model", ProviderConfig(name="scripted", model="s", responses=str(responses))))
    assert res.status == "scored" and res.score == 0.0 and res.categories[0].n == 20
    assert {s["response"] for s in _samples(tmp_path)} == {"Atlantis"}  # cut at the stop sequence by the server


def _served(answer, tmp_path: Path, **kw) -> BenchmarkResult:
    """A scripted model behind our own server; the adapter reaches it as an `openai` provider (pass-through)."""
    provider = ScriptedProvider.from_callable(answer, model="m")
    with serve(LLMClient(provider.cfg, provider=provider, cache_mode="off"), "m") as url:
        prov = ProviderConfig(name="openai", model="m", base_url=url, api_key_env="NO_SUCH_KEY_VAR", concurrency=2)
        return get_benchmark("capability").run(_ctx(tmp_path, "model", prov, **kw))


def test_right_answers_score_1_wrong_ones_0_through_an_openai_endpoint(tmp_path):
    seen = []

    def right_for_capitals(req):
        seen.append(req)
        question = req.messages[-1].content
        gold = GOLD[question]
        return {"content": f" {gold.upper()}.\nI hope that helps" if "capital" in question else "no idea"}

    res = _served(right_for_capitals, tmp_path)
    capitals = [r for r in ITEMS if "capital" in r["question"]]
    assert res.score == pytest.approx(len(capitals) / len(ITEMS))  # case, punctuation, whitespace ignored
    cat = res.categories[0]
    assert cat.stderr == pytest.approx((0.2 * 0.8 / 19) ** 0.5)
    # lm-eval sent chat turns: 3 worked examples, then the question; greedy, short
    first = seen[0]
    assert [m.role for m in first.messages] == ["user", "assistant"] * 3 + ["user"]
    assert first.temperature == 0.0 and first.max_tokens == 8
    rows = _samples(tmp_path)
    assert sum(r["score"] for r in rows) == len(capitals) and len(rows) == 20


def test_options_limit_and_unknown_tasks(tmp_path):
    res = _served(lambda req: {"content": GOLD[req.messages[-1].content]}, tmp_path, options={"limit": 5})
    cat = res.categories[0]
    assert (cat.score, cat.n) == (1.0, 5) and "first 5 of 20 documents" in cat.label
    with pytest.raises(ValueError, match="unknown lm-eval tasks"):
        get_benchmark("capability").run(_ctx(tmp_path, "idle", categories=["no_such_task_xyz"]))
    with pytest.raises(ValueError, match="extra"):
        get_benchmark("capability").run(_ctx(tmp_path, "idle", options={"limt": 5}))


def test_options_are_checked_when_the_config_is_read():
    from envfactory.config import ExperimentConfig

    with pytest.raises(ValueError, match="options of capability"):
        ExperimentConfig.model_validate({"evaluation": {"options": {"capability": {"limt": 5}}}})
    with pytest.raises(ValueError, match="takes no options"):
        ExperimentConfig.model_validate({"evaluation": {"options": {"bfcl": {"x": 1}}}})
    ev = ExperimentConfig.model_validate({"evaluation": {"options": {"capability": {"limit": 5}}}}).evaluation
    assert ev.per_stage == ["capability"] and ev.options == {"capability": {"limit": 5}}


def test_apply_stop_is_openai_semantics():
    resp = ChatResponse(content="Paris\nQuestion: next", finish_reason="length")
    assert apply_stop(resp, ["Question:", "\n"]).content == "Paris"
    assert apply_stop(resp, "\n").finish_reason == "stop"
    assert apply_stop(resp, None) is resp and apply_stop(resp, ["zzz", ""]) is resp


# ------------------------------------------------------------------------------------------- report: deltas
def _result(policy: str, scores: dict[str, tuple[float, int, float | None]]) -> BenchmarkResult:
    cats = [CategoryScore(category=c, score=s, n=n, stderr=se, label="lm-eval exact_match,first_line")
            for c, (s, n, se) in scores.items()]
    return BenchmarkResult(benchmark="capability", status="scored", policy=policy, categories=cats,
                           adapter_version="1")


def test_stage_deltas_against_base(tmp_path):
    base = _result("m-base", {"gsm8k": (0.5, 100, 0.05), "ifeval": (0.3, 300, 0.02)})
    sft = _result("m-sft", {"gsm8k": (0.4, 100, 0.04), "ifeval": (0.33, 300, 0.03)})
    rl = _result("m-rl", {"gsm8k": (0.55, 100, 0.05), "ifeval": (0.3, 300, 0.02)})
    files = []
    for stage, r in (("base", base), ("sft", sft)):
        f = tmp_path / f"{stage}.json"
        f.write_text(r.model_dump_json())
        files.append((stage, f))
    per_stage = per_stage_results({"capability": rl}, files, ["sft", "rl"])
    ps = per_stage["capability"]
    assert list(ps.stages) == ["base", "sft", "rl"] and ps.stages["rl"].policy == "m-rl"
    d_sft, d_rl = ps.deltas["sft"], ps.deltas["rl"]
    assert d_sft.categories == pytest.approx({"gsm8k": -0.1, "ifeval": 0.03})
    # task-weighted: base 0.35, sft 0.3475, rl 0.3625
    assert (d_sft.base, d_sft.stage, d_sft.delta) == pytest.approx((0.35, 0.3475, -0.0025))
    assert d_rl.delta == pytest.approx(0.0125) and d_rl.n == 400
    se_base = ((0.25 * 0.05) ** 2 + (0.75 * 0.02) ** 2) ** 0.5
    se_sft = ((0.25 * 0.04) ** 2 + (0.75 * 0.03) ** 2) ** 0.5
    assert d_sft.stderr == pytest.approx((se_base ** 2 + se_sft ** 2) ** 0.5)

    provenance = Provenance(experiment="e", config_hash="h", git_sha="0" * 40, created_at="t",
                            package_versions={}, data_checksums={})
    res = ModelResults(model="m", final_stage="rl", benchmarks={"capability": rl}, per_stage=per_stage,
                       provenance=provenance)
    res = ModelResults.model_validate_json(res.model_dump_json())  # the results file round-trips
    metrics, labels = headline_metrics(res), headline_labels(res)
    assert metrics["capability.delta.sft"] == pytest.approx(-0.0025)
    assert metrics["capability.delta.rl"] == pytest.approx(0.0125)
    assert labels["capability.delta.rl"].startswith("rl - base")


def test_stage_delta_is_null_when_a_stage_was_not_scored(tmp_path):
    base = _result("m-base", {"capability_smoke": (0.5, 20, 0.11)})
    down = BenchmarkResult(benchmark="capability", status="unavailable", reason="lm-eval is not installed",
                           policy="m-sft", adapter_version="1")
    f = tmp_path / "base.json"
    f.write_text(base.model_dump_json())
    d = per_stage_results({"capability": down}, [("base", f)], ["sft"])["capability"].deltas["sft"]
    assert d.delta is None and d.stderr is None and "not installed" in d.label
    with pytest.raises(ValueError, match="no result for stage"):
        per_stage_results({}, [("base", f)], ["sft"])


def test_dag_runs_capability_on_every_stage(tmp_path):
    """Dry run: capability on base and sft (eval_bench_stage) and on the final rl model (eval_bench); the report
    reads all three."""
    config = tmp_path / "cap.yaml"
    config.write_text(yaml.safe_dump({"experiment": "cap", "evaluation": {"benchmarks": ["vitabench", "capability"]}}))
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-n", "-p", "-s", str(ROOT / "Snakefile"),
                           "--directory", str(tmp_path), "--configfile", str(ROOT / "config" / "config.yaml"),
                           str(config), "--cores", "1", "results/cap/results.json"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={k: v for k, v in os.environ.items() if k != "ENVFACTORY_BENCHMARKS"})
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    for path in ("results/cap/evals/stages/base/capability.json", "results/cap/evals/stages/sft/capability.json",
                 "results/cap/evals/capability.json"):
        assert path in out
    assert "results/cap/evals/stages/rl/" not in out and "stages/base/vitabench" not in out
    assert "--stage-benchmarks base=results/cap/evals/stages/base/capability.json " \
           "sft=results/cap/evals/stages/sft/capability.json" in out
    assert "--name smollm2-135m-base" in out and "--model results/cap/train/sft/metrics.json --name smollm2-135m-sft" \
        in out


GROUP_TASK = """task: {name}
custom_dataset: !function utils.load_{name}
output_type: generate_until
test_split: test
doc_to_text: "{{{{question}}}}"
doc_to_target: "{{{{answer}}}}"
generation_kwargs: {{until: ["\\n"], do_sample: false, temperature: 0.0, max_gen_toks: 4}}
filter_list: [{{name: first_line, filter: [{{function: regex, regex_pattern: "^\\\\s*(.*?)\\\\s*(?:\\\\n|$)"}},
                                           {{function: take_first}}]}}]
metric_list: [{{metric: exact_match, aggregation: mean, higher_is_better: true, ignore_case: true}}]
metadata: {{version: 1.0}}
"""
GROUP = """group: cap_group
task: [cap_a, cap_b]
aggregate_metric_list: [{metric: exact_match, aggregation: mean, weight_by_size: true, filter_list: first_line}]
metadata: {version: 1.0}
"""
GROUP_UTILS = """import datasets

def _d(rows):
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(rows)})

def load_cap_a(**_):
    return _d([{"question": f"a{i}?", "answer": f"A{i}"} for i in range(3)])

def load_cap_b(**_):
    return _d([{"question": "b0?", "answer": "B0"}])
"""


def test_a_group_is_one_category_over_its_subtasks(tmp_path, monkeypatch):
    """An lm-eval group (as mmlu_pro is) scores as lm-eval aggregates it, n = all its documents."""
    import evals.capability as capability

    tasks = tmp_path / "tasks"
    tasks.mkdir()
    for name in ("cap_a", "cap_b"):
        (tasks / f"{name}.yaml").write_text(GROUP_TASK.format(name=name))
    (tasks / "cap_group.yaml").write_text(GROUP)
    (tasks / "utils.py").write_text(GROUP_UTILS)
    monkeypatch.setattr(capability, "TASKS_DIR", tasks)
    answers = {"a0?": "A0", "a1?": "a1", "a2?": "A2", "b0?": "nope"}
    res = _served(lambda req: {"content": answers[req.messages[-1].content]}, tmp_path / "w",
                  categories=["cap_group"])
    [cat] = res.categories
    assert (cat.category, cat.score, cat.n) == ("cap_group", 0.75, 4)
    assert cat.stderr == pytest.approx(0.25)  # over the 4 documents: sd 0.5 / sqrt(4)
    assert {r["task"] for r in _samples(tmp_path / "w")} == {"cap_a", "cap_b"}
    oracle = get_benchmark("capability").run(_ctx(tmp_path / "o", "oracle", categories=["cap_group"]))
    assert oracle.score == 1.0
