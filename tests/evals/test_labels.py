"""Every number keeps its qualifiers: undefined standard errors stay undefined, labels reach flat metrics and the
sweep report."""

from __future__ import annotations

from envfactory.stats import mean_stderr
from evals.base import BenchmarkResult, CategoryScore
from evals.report import ModelResults, Provenance, headline_labels, headline_metrics


def _results() -> ModelResults:
    bench = {
        "mcp_atlas": BenchmarkResult(benchmark="mcp_atlas", status="scored", policy="p", adapter_version="1",
                                     categories=[CategoryScore(category="default", score=1.0, n=1, stderr=None,
                                                               label="replay-based")]),
        "bfcl": BenchmarkResult(benchmark="bfcl", status="scored", policy="p", adapter_version="1",
                                categories=[CategoryScore(category=c, score=0.5, n=40, stderr=0.08)
                                            for c in ("simple", "multiple")]),
        "tau2": BenchmarkResult(benchmark="tau2", status="unavailable", policy="p", adapter_version="1"),
    }
    provenance = Provenance(experiment="e", config_hash="0" * 16, git_sha="x", created_at="now",
                            package_versions={}, data_checksums={})
    return ModelResults(model="m", final_stage="sft", benchmarks=bench, provenance=provenance,
                        heldout={"base": {"success_rate": 0.0, "episodes": 6}, "sft": {"success_rate": 0.5,
                                                                                       "episodes": 6}})


def test_stderr_is_undefined_below_two_samples():
    assert mean_stderr([1.0]) == (1.0, None) and mean_stderr([]) == (0.0, None)
    assert mean_stderr([0.0, 1.0])[1] == 0.5


def test_labels_travel_with_the_flat_metrics():
    res = _results()
    metrics, labels = headline_metrics(res), headline_labels(res)
    assert set(labels) <= set(metrics)
    assert labels["mcp_atlas.default"] == "replay-based; smoke-sized n=1"
    assert labels["mcp_atlas"] == "replay-based; smoke-sized n=1"
    assert labels["heldout"] == labels["heldout.sft"] == "smoke-sized n=6"
    assert labels["bfcl"] == "task-weighted mean over categories" and "bfcl.simple" not in labels  # n=40
    assert "tau2" not in metrics and "tau2" not in labels


def test_the_sweep_report_shows_labels_and_no_zero_stderr():
    from envfactory.sweep import SweepSpec
    from envfactory.sweep_report import PointSummary, render_html, summarize

    res = _results()
    spec = SweepSpec.model_validate({"sweep": "s", "variants": {"a": {}}, "seeds": [0],
                                     "metrics": ["heldout", "mcp_atlas"]})
    point = PointSummary(out="results/s/a-s0", variant="a", seed=0, metrics=headline_metrics(res),
                         labels=headline_labels(res), train_envs=2, admitted=3, rejected=0, held_back=0)
    s = summarize(spec, [point], "m")
    assert s.variants[0].stderr["heldout"] is None  # one seed: no standard error, not ± 0
    page = render_html(s, {name: b"" for name in ("main", "reward_curves", "funnel")})
    assert "± 0.000" not in page and "no s.e." in page
    assert "replay-based" in page and "smoke-sized n=6" in page
