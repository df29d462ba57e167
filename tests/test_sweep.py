"""Sweeps as config: expansion, environment-count subsets, the sweep report, MLflow comparison, repro diffs."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from browser import chromium_command, parse_dom, png_info
from envfactory.config import ExperimentConfig
from envfactory.env.manifest import training_subset
from envfactory.sweep import SweepSpec, deep_merge, expand_sweep, load_sweeps
from envfactory.tracking import member_tags
from evals.report import PaperNumber

ROOT = Path(__file__).resolve().parents[1]


def _spec(**kw) -> SweepSpec:
    return SweepSpec.model_validate({"sweep": "s", "variants": {"a": {"envs": {"count": 1}}, "b": {}},
                                     "seeds": [0, 1], **kw})


def test_expansion_layers_base_overrides_variant_and_seed():
    base = {"experiment": "default", "results_dir": "out", "train": {"sft": {"max_steps": 10, "lora": True}}}
    spec = _spec(overrides={"train": {"sft": {"max_steps": 3}}},
                 variants={"a": {"train": {"sft": {"lora": False}}, "envs": {"count": 2}}, "b": {}})
    points = expand_sweep(spec, base)
    assert list(points) == ["out/s/a-s0", "out/s/a-s1", "out/s/b-s0", "out/s/b-s1"]
    a1 = points["out/s/a-s1"]
    assert (a1.seed, a1.experiment, a1.results_dir) == (1, "a-s1", "out/s")
    assert a1.train.sft.max_steps == 3 and a1.train.sft.lora is False and a1.envs.count == 2
    b0 = points["out/s/b-s0"]
    assert b0.train.sft.lora is True and b0.envs.count is None
    assert (b0.sweep.name, b0.sweep.variant, b0.sweep.seed) == ("s", "b", 0)
    assert len({p.config_hash() for p in points.values()}) == 4
    assert base["train"]["sft"]["max_steps"] == 10  # the base is not mutated


def test_invalid_variant_names_the_variant():
    with pytest.raises(ValueError, match="variant 'a'"):
        expand_sweep(_spec(variants={"a": {"train": {"sft": {"max_stepz": 1}}}}), {})
    with pytest.raises(ValueError, match="variant names"):
        _spec(variants={"a b": {}})


def test_deep_merge_replaces_lists_and_merges_mappings():
    assert deep_merge({"a": {"x": 1, "y": [1]}, "b": 1}, {"a": {"y": [2]}}) == {"a": {"x": 1, "y": [2]}, "b": 1}


def test_load_sweeps_skips_experiments_and_rejects_duplicates(tmp_path):
    (tmp_path / "exp.yaml").write_text("experiment: e\n")
    (tmp_path / "s.yaml").write_text(yaml.safe_dump({"sweep": "s", "variants": {"a": {}}}))
    found = load_sweeps([tmp_path, tmp_path / "missing"])
    assert list(found) == ["s"] and found["s"][0].seeds == [0, 1, 2]
    other = tmp_path / "more"
    other.mkdir()
    (other / "t.yaml").write_text(yaml.safe_dump({"sweep": "s", "variants": {"b": {}}}))
    with pytest.raises(ValueError, match=r"two different files: .*s\.yaml and .*more/t\.yaml; rename .*more/t\.yaml"):
        load_sweeps([tmp_path, other])


def test_identical_sweep_files_found_twice_are_one_sweep(tmp_path):
    """config/ copied into the working folder: the workflow's and the working directory's files are one sweep
    (compared by content, not path); a copy that differs, or starts from a different base config, is an error
    naming the copy to rename."""
    shipped, copy = tmp_path / "workflow" / "config" / "experiments", tmp_path / "work" / "config" / "experiments"
    for d in (shipped, copy):
        d.mkdir(parents=True)
        (d / "base.yaml").write_text("experiment: base\nseed: 3\n")
        (d / "s.yaml").write_text(yaml.safe_dump({"sweep": "s", "base": "base.yaml", "variants": {"a": {}}}))
    (copy / "s.yaml").write_text("# a comment and other formatting do not matter\n" + yaml.safe_dump(
        {"variants": {"a": {}}, "base": "base.yaml", "sweep": "s"}, default_flow_style=True))
    found = load_sweeps([shipped, copy])
    assert list(found) == ["s"] and found["s"][1] == shipped / "s.yaml"
    (copy / "base.yaml").write_text("experiment: base\nseed: 4\n")
    with pytest.raises(ValueError, match=f"rename the `sweep:` in {copy / 's.yaml'}"):
        load_sweeps([shipped, copy])
    (copy / "base.yaml").write_text("experiment: base\nseed: 3\n")
    (copy / "s.yaml").write_text(yaml.safe_dump({"sweep": "s", "base": "base.yaml", "variants": {"b": {}}}))
    with pytest.raises(ValueError, match=f"two different files: {shipped / 's.yaml'} and {copy / 's.yaml'}"):
        load_sweeps([shipped, copy])


def test_shipped_config_copied_into_the_working_folder_loads_once(tmp_path):
    shutil.copytree(ROOT / "config", tmp_path / "config")
    once = load_sweeps([ROOT / "config" / "experiments"])
    twice = load_sweeps([ROOT / "config" / "experiments", tmp_path / "config" / "experiments"])
    assert {k: v[1] for k, v in twice.items()} == {k: v[1] for k, v in once.items()}


def test_shipped_sweeps_expand_and_name_their_axes():
    base = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    sweeps = load_sweeps([ROOT / "config" / "experiments"])
    assert {"env_scaling", "reward_ablation", "sampler", "refinement", "paper_env_scaling"} <= set(sweeps)
    for name, (spec, path) in sweeps.items():
        points = expand_sweep(spec, base, path.parent)
        assert len(points) == len(spec.variants) * len(spec.seeds) and len(spec.seeds) >= 3, name
    scaling = expand_sweep(*[sweeps["env_scaling"][0], base, sweeps["env_scaling"][1].parent])
    counts = sorted({str(c.envs.count) for c in scaling.values()})
    assert counts == ["2", "4", "8", "None"]
    reward = expand_sweep(sweeps["reward_ablation"][0], base)
    terms = {member_tags(c)["envfactory.reward_terms"] for c in reward.values()}
    assert {"trace+length_penalty+format_penalty", "state+length_penalty+format_penalty",
            "trace+state+format_penalty", "trace+state+length_penalty+format_penalty"} <= terms
    paper = expand_sweep(sweeps["paper_env_scaling"][0], base, sweeps["paper_env_scaling"][1].parent)
    assert {c.train.model for c in paper.values()} == {"qwen3-8b"}


def test_environment_subsets_are_nested_seeded_and_keep_heldout():
    names = [f"e{i}" for i in range(8)] + ["held"]
    two, four = (set(training_subset(names, ["held"], n, seed=0)) for n in (2, 4))
    assert "held" in two and len(two) == 3 and len(four) == 5 and two <= four
    assert training_subset(names, ["held"], None, 0) == names
    other = {tuple(sorted(training_subset(names, ["held"], 2, seed=s))) for s in range(6)}
    assert len(other) > 1  # seeds draw different subsets
    with pytest.raises(ValueError, match="only 8"):
        training_subset(names, ["held"], 9, 0)


def test_manifest_holds_back_environments_beyond_the_count(tmp_path):
    from envfactory.env.manifest import build_manifest

    cfg = ExperimentConfig.model_validate({
        "envs": {"catalog": ["hotel_reservations", "bookstore", "car_rental", "cinema_tickets"], "count": 1},
        "data": {"heldout_envs": ["cinema_tickets"]}, "tracking": {"enabled": False}})
    m = build_manifest(cfg, tmp_path / "envs" / "manifest.json", log=lambda *_: None)
    names = {e.name for e in m.envs}
    assert "cinema_tickets" in names and len(names) == 2 and m.train_envs == 1 and len(m.held_back) == 2
    assert not (tmp_path / "envs" / m.held_back[0]).exists()


def _point(variant: str, seed: int, train_envs: int, heldout: float, bfcl: float | None, reward=None):
    from envfactory.sweep_report import PointSummary

    metrics = {"heldout": heldout, "heldout.base": 0.0}
    if bfcl is not None:
        metrics |= {"bfcl": bfcl, "bfcl.multi_turn_base": bfcl}
    return PointSummary(out=f"results/s/{variant}-s{seed}", variant=variant, seed=seed, metrics=metrics,
                        train_envs=train_envs, admitted=train_envs + 1, rejected=0, held_back=12 - train_envs,
                        synthesis={"status": "skipped", "reason": "offline"}, reward_curve=reward or [])


@pytest.fixture
def summary():
    from envfactory.sweep_report import summarize

    spec = SweepSpec.model_validate({"sweep": "s", "variants": {"envs2": {}, "envs4": {}, "all": {}},
                                     "seeds": [0, 1], "plot": "line", "x": "train_envs",
                                     "metrics": ["heldout", "bfcl.multi_turn_base"]})
    points = [_point("envs2", 0, 2, 0.1, 0.0, [(1, 0.1), (2, 0.2)]), _point("envs2", 1, 2, 0.3, 0.5, [(1, 0.3)]),
              _point("envs4", 0, 4, 0.4, 0.5), _point("envs4", 1, 4, 0.4, None),
              _point("all", 0, 12, 0.6, 1.0), _point("all", 1, 12, 0.8, 1.0)]
    return summarize(spec, points, "tiny", paper={"heldout": PaperNumber(base=0.1, trained=0.7, source="the test")})


def test_summary_aggregates_seeds(summary):
    v = {x.variant: x for x in summary.variants}
    assert [x.variant for x in summary.variants] == ["envs2", "envs4", "all"]
    assert v["envs2"].mean["heldout"] == pytest.approx(0.2) and v["envs2"].stderr["heldout"] == pytest.approx(0.1)
    assert v["envs4"].n["bfcl.multi_turn_base"] == 1 and v["envs4"].stderr["heldout"] == 0.0  # missing = absent
    assert (v["envs2"].x, v["all"].x) == (2.0, 12.0)


def test_report_page_renders_in_headless_chromium(summary, tmp_path):
    from envfactory.sweep_report import PLOTS, render_html, render_plots

    plots = render_plots(summary)
    for name in PLOTS:  # real images with content, not blank canvases
        width, height, distinct = png_info(plots[name])
        assert width > 300 and height > 200 and distinct > 16, name
    html = tmp_path / "report.html"
    html.write_text(render_html(summary, plots))
    text = html.read_text()
    assert "0.200 ± 0.100" in text and "0.700" in text and "the test" in text  # mean ± s.e.; paper, its source
    assert "http://" not in text and "https://" not in text  # self-contained

    base = chromium_command(tmp_path, size="1200,1600")
    dump = subprocess.run(base + ["--dump-dom", html.as_uri()], capture_output=True, text=True, timeout=120)
    assert dump.returncode == 0, dump.stderr[-2000:]
    dom = parse_dom(dump.stdout)
    assert dom.classes["plot"] == 3 and {"plot-main", "plot-reward_curves", "plot-funnel", "variants"} <= dom.ids
    shot = tmp_path / "shot.png"
    run = subprocess.run(base + [f"--screenshot={shot}", html.as_uri()], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and shot.is_file(), run.stderr[-2000:]
    width, height, distinct = png_info(shot.read_bytes())
    assert (width, height) == (1200, 1600) and distinct > 64 and shot.stat().st_size > 40_000


def test_reward_curve_plot_says_when_there_is_no_rl(summary):
    from envfactory.sweep_report import plot_reward_curves

    no_rl = summary.model_copy(update={"points": [p.model_copy(update={"reward_curve": []}) for p in summary.points]})
    empty, drawn = plot_reward_curves(no_rl), plot_reward_curves(summary)
    assert empty != drawn and png_info(empty)[0] > 300


def test_sweep_points_compare_in_mlflow_by_tags(tmp_path, monkeypatch):
    """What the MLflow UI shows: one run per point under one sweep run, searchable by tags, same metric keys."""
    import mlflow

    from envfactory import tracking

    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    base = {"tracking": {"tracking_uri": uri, "experiment_name": "sweeps"}}
    spec = _spec(variants={"envs1": {"envs": {"count": 1}}, "all": {}}, seeds=[0, 1])
    points = expand_sweep(spec, base)
    dag = ExperimentConfig.model_validate(base)
    tracking.start_parent_run(dag)
    for i, cfg in enumerate(points.values()):
        with tracking.rule_run("sft", cfg) as run:
            run.metrics({"loss": 1.0 / (i + 1)})
        assert tracking.point_run_id(cfg) == tracking.point_run_id(cfg)  # found again, not duplicated
        tracking.log_summary(cfg, {"heldout": i / 10, "bfcl.multi_turn_base": 0.5},
                             labels={"heldout": "smoke-sized n=4"})
    tracking.end_parent_run(dag)

    client = mlflow.MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("sweeps").experiment_id
    found = client.search_runs([exp], "tags.`envfactory.sweep` = 's' and tags.`envfactory.kind` = 'point'")
    assert len(found) == 4 and {r.info.status for r in found} == {"FINISHED"}
    assert {r.data.tags["envfactory.variant"] for r in found} == {"envs1", "all"}
    assert {r.data.tags["envfactory.env_count"] for r in found} == {"1", "all"}
    assert all(set(r.data.metrics) == {"heldout", "bfcl.multi_turn_base"} for r in found)
    assert {r.data.tags["label.heldout"] for r in found} == {"smoke-sized n=4"}  # the label travels with the number
    sweep_runs = client.search_runs([exp], "tags.`envfactory.kind` = 'sweep'")
    assert len(sweep_runs) == 1 and {r.data.tags["mlflow.parentRunId"] for r in found} == {sweep_runs[0].info.run_id}
    one = client.search_runs([exp], "tags.`envfactory.variant` = 'envs1' and tags.`envfactory.seed` = '1' "
                                    "and tags.`envfactory.kind` = 'point'")
    assert len(one) == 1
    rules = client.search_runs([exp], "tags.`envfactory.rule` = 'sft'")
    assert {r.data.tags["mlflow.parentRunId"] for r in rules} == {r.info.run_id for r in found}


def _results(heldout: float, checksum: str, sha: str = "a" * 40, out: str = "results/x"):
    from evals.base import BenchmarkResult, CategoryScore
    from evals.report import ModelResults, Provenance

    bench = BenchmarkResult(benchmark="vitabench", status="scored", policy="p", adapter_version="1",
                            categories=[CategoryScore(category="delivery", score=0.5, n=2, stderr=0.5)])
    results_dir, experiment = out.rsplit("/", 1)
    return ModelResults(model="m", final_stage="base", benchmarks={"vitabench": bench},
                        heldout={"base": {"stage": "base", "success_rate": heldout}},
                        provenance=Provenance(experiment=experiment, config_hash="h", git_sha=sha, created_at="t",
                                              package_versions={"torch": "2.13.0"},
                                              data_checksums={f"{out}/data/sft.parquet": checksum},
                                              config={"results_dir": results_dir, "experiment": experiment}))


def test_repro_diff_compares_relocated_results():
    from envfactory.repro import compare_results

    same = compare_results(_results(0.5, "c1"), _results(0.5, "c1", sha="b" * 40, out="repro/results/x"))
    assert same.reproduced_ok and same.metrics_compared == 4 and [w.key for w in same.warnings] == ["git_sha"]
    moved = compare_results(_results(0.5, "c1"), _results(0.25, "c2", out="repro/results/x"))
    assert not moved.reproduced_ok
    assert {(d.kind, d.key) for d in moved.differences} == {("metric", "heldout"), ("metric", "heldout.base"),
                                                            ("data", "data/sft.parquet")}
    assert compare_results(_results(0.5, "c1"), _results(0.25, "c1"), tolerance=0.3).reproduced_ok


def test_relocation_keeps_the_config_hash():
    from envfactory.repro import relocated_config

    cfg = ExperimentConfig.model_validate({"experiment": "x"})
    moved = relocated_config(cfg.model_dump(mode="json"))
    assert moved.results_dir == "repro/results" and moved.config_hash() == cfg.config_hash()
    assert json.loads(json.dumps(moved.model_dump(mode="json")))["experiment"] == "x"


TINY_BASE = {
    "experiment": "base", "envs": {"catalog": ["hotel_reservations", "bookstore", "cinema_tickets"]},
    "data": {"compare_random_walk": False, "attempts_per_tool": 10, "chains_per_tool": 2,
             "heldout_envs": ["cinema_tickets"]},
    "train": {"stages": [], "heldout": {"limit": 1, "max_turns": 1, "max_new_tokens": 16}},
    "evaluation": {"benchmarks": ["vitabench"], "limit": 1, "categories": {"vitabench": ["delivery"]},
                   "max_turns": 2, "max_new_tokens": 16},
}
TINY_SWEEP = {"sweep": "tiny", "description": "e2e", "variants": {"envs1": {"envs": {"count": 1}}, "envs2": {}},
              "seeds": [0, 1], "plot": "line", "x": "train_envs", "metrics": ["heldout", "vitabench"]}


@pytest.mark.slow
def test_sweep_runs_end_to_end_with_report_mlflow_and_repro(tmp_path):
    """One command runs a sweep (2 environment counts x 2 seeds) to its report; MLflow has a run per point;
    `snakemake --report` packages the plots; `envfactory repro` re-runs one point and finds it identical."""
    import os
    import sys

    import mlflow

    db = tmp_path / "mlruns" / "mlflow.db"
    (tmp_path / "config" / "experiments").mkdir(parents=True)
    (tmp_path / "config" / "experiments" / "tiny.yaml").write_text(yaml.safe_dump(TINY_SWEEP))
    config = tmp_path / "base.yaml"
    config.write_text(yaml.safe_dump({**TINY_BASE, "tracking": {"tracking_uri": f"sqlite:///{db}",
                                                                "experiment_name": "sweep-e2e"}}))
    env = {k: v for k, v in os.environ.items() if k != "ENVFACTORY_CACHE"}  # reuse the converted model
    snake = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(tmp_path),
             "--cores", "2"]
    proc = subprocess.run(snake + ["results/tiny/report.html", "--configfile", str(config)],
                          capture_output=True, text=True, timeout=1800, env=env)
    logs = "".join(f"\n== {p}\n" + p.read_text()[-1200:] for p in sorted(tmp_path.glob("results/tiny/*/logs/*.log")))
    assert proc.returncode == 0, proc.stderr[-3000:] + logs[-6000:]

    sweep_dir = tmp_path / "results" / "tiny"
    summary = json.loads((sweep_dir / "summary.json").read_text())
    assert [(v["variant"], v["seeds"], v["x"]) for v in summary["variants"]] == [("envs1", [0, 1], 1.0),
                                                                                 ("envs2", [0, 1], 2.0)]
    assert all("heldout" in v["mean"] and "vitabench" in v["mean"] for v in summary["variants"])
    for name in ("main", "reward_curves", "funnel"):
        assert png_info((sweep_dir / "plots" / f"{name}.png").read_bytes())[2] > 16
    assert (sweep_dir / "report.html").read_text().count("data:image/png;base64,") == 3

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{db}")
    exp = client.get_experiment_by_name("sweep-e2e").experiment_id
    points = client.search_runs([exp], "tags.`envfactory.sweep` = 'tiny' and tags.`envfactory.kind` = 'point'")
    assert sorted(r.info.run_name for r in points) == ["envs1-s0", "envs1-s1", "envs2-s0", "envs2-s1"]
    assert len({frozenset(r.data.metrics) for r in points}) == 1 and "heldout" in points[0].data.metrics
    assert {r.data.tags["envfactory.env_count"] for r in points} == {"1", "all"}

    report = tmp_path / "snakemake_report.html"
    proc = subprocess.run(snake + ["results/tiny/report.html", "--report", str(report), "--configfile", str(config)],
                          capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0 and report.stat().st_size > 10_000, proc.stderr[-2000:]

    proc = subprocess.run([sys.executable, "-m", "envfactory", "repro", "results/tiny/envs1-s1/results.json",
                           "--cores", "2"], cwd=tmp_path, capture_output=True, text=True, timeout=1200, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    repro = json.loads((tmp_path / "repro" / "results" / "tiny" / "envs1-s1" / "repro.json").read_text())
    assert repro["reproduced_ok"] and repro["metrics_compared"] >= 4 and not repro["differences"]


@pytest.mark.slow
def test_team_server_tracking_uri_and_ui_search(tmp_path, monkeypatch):
    """`tracking.tracking_uri: http://...` logs sweep points to an MLflow server; the server's UI and the REST
    search it uses find them by tags with the same metric keys."""
    import os
    import socket
    import sys
    import time
    import urllib.request

    from envfactory import tracking

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}", "--artifacts-destination",
         str(tmp_path / "artifacts")], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=tmp_path,
        env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"})
    try:
        for _ in range(120):
            try:
                if urllib.request.urlopen(f"{url}/health", timeout=2).status == 200:
                    break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("mlflow server did not start: " + server.stderr.read().decode()[-2000:] if server.poll()
                        is not None else "mlflow server did not answer /health")
        monkeypatch.chdir(tmp_path)
        base = {"tracking": {"tracking_uri": url, "experiment_name": "team"}}
        points = expand_sweep(_spec(variants={"envs1": {"envs": {"count": 1}}, "all": {}}, seeds=[0]), base)
        dag = ExperimentConfig.model_validate(base)
        tracking.start_parent_run(dag)
        for i, cfg in enumerate(points.values()):
            with tracking.rule_run("report", cfg) as run:
                run.params({"variant": cfg.sweep.variant})
            tracking.log_summary(cfg, {"heldout": 0.25 * i, "bfcl.multi_turn_base": 0.5})
        tracking.end_parent_run(dag)

        page = urllib.request.urlopen(url, timeout=10).read().decode()
        assert "<html" in page.lower() and "mlflow" in page.lower()  # the UI is served

        def api(path: str, body: dict) -> dict:
            req = urllib.request.Request(f"{url}/api/2.0/mlflow/{path}", data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
            return json.loads(urllib.request.urlopen(req, timeout=10).read())

        exp = json.loads(urllib.request.urlopen(
            f"{url}/api/2.0/mlflow/experiments/get-by-name?experiment_name=team", timeout=10).read())
        runs = api("runs/search", {"experiment_ids": [exp["experiment"]["experiment_id"]],
                                   "filter": "tags.`envfactory.sweep` = 's' and tags.`envfactory.kind` = 'point'"})
        found = runs["runs"]
        assert len(found) == 2
        keys = [sorted(m["key"] for m in r["data"]["metrics"]) for r in found]
        assert keys[0] == keys[1] == ["bfcl.multi_turn_base", "heldout"]
        variants = {t["value"] for r in found for t in r["data"]["tags"] if t["key"] == "envfactory.variant"}
        assert variants == {"envs1", "all"}
    finally:
        server.terminate()
        server.wait(timeout=30)
