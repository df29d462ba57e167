"""results/<experiment>/report.html: one experiment's page, built from result files shaped as the stages write them,
checked in headless Chromium (every plot decoded, the tables' rows with their labels, "n < 2" where a standard
error is undefined), and scheduled before the headline results/<model>.json."""

from __future__ import annotations

import html as htmllib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from browser import chromium_command, png_info
from envfactory.config import ExperimentConfig
from envfactory.stats import mean_stderr

ROOT = Path(__file__).resolve().parents[1]
# Run in the page after load (Chromium's --dump-dom then serializes it): what a person sees — each plot's decoded
# size and the rendered text (innerText: only what is laid out).
PROBE = """<script>addEventListener('load', () => {
  const pre = document.createElement('pre'); pre.id = 'probe';
  pre.textContent = JSON.stringify({
    images: Object.fromEntries([...document.querySelectorAll('img.plot')].map(i => [i.id, i.naturalWidth])),
    rows: [...document.querySelectorAll('table tr')].map(r => r.closest('table').id + '|' + r.innerText),
    text: document.body.innerText});
  document.body.appendChild(pre);
});</script>"""


def _eval_envs(stage: str, outcomes: list[float]) -> dict:
    """eval_envs/<stage>.json as run_eval_envs_stage writes it (its fields + EvalReport's)."""
    from envfactory.train.eval_envs import EvalReport

    mean, stderr = mean_stderr(outcomes)
    report = EvalReport(split="heldout", episodes=len(outcomes), success_rate=mean, success_stderr=stderr,
                        mean_reward=mean, trace_rate=mean, format_errors=0,
                        per_env={"cinema_tickets": {"episodes": len(outcomes), "successes": sum(outcomes)}})
    return {"stage": stage, "model_dir": f"train/{stage}/model", "engine": "transformers", "wall_s": 3.0,
            **report.model_dump()}


def _bench(name: str, categories: list[tuple[str, float, int, float | None, str]], **kw):
    from evals.base import BenchmarkResult, CategoryScore

    return BenchmarkResult(benchmark=name, status="scored", policy="smollm2-135m-rl", adapter_version="1",
                           categories=[CategoryScore(category=c, score=s, n=n, stderr=se, label=lab)
                                       for c, s, n, se, lab in categories], **kw)


def make_experiment(root: Path, stages=("sft", "rl"), base_outcomes=(1.0,), rl_history=True) -> Path:
    """An experiment folder as the DAG leaves it: config.json, envs/manifest.json, train/<stage>/metrics.json,
    train/eval_envs/<stage>.json, evals/*.json, then results.json from evals.report.build_results."""
    from envfactory.env.manifest import Manifest, ManifestEntry
    from evals.base import Aggregate, BenchmarkResult
    from evals.report import build_results, write_results

    cfg = ExperimentConfig.model_validate({"experiment": "exp", "results_dir": str(root / "results"),
                                           "train": {"stages": list(stages)}, "tracking": {"enabled": False}})
    out = cfg.out_dir()
    (out / "train" / "eval_envs").mkdir(parents=True)
    (out / "config.json").write_text(json.dumps(cfg.model_dump(mode="json"), sort_keys=True) + "\n")
    entries = [ManifestEntry(name=n, domain=d, source="catalog", path=n, content_hash="0" * 16, n_tools=4,
                             n_scenarios=2, verified=True)
               for n, d in (("hotel_reservations", "travel"), ("bookstore", "retail"), ("cinema_tickets", "ent"))]
    manifest = Manifest(experiment="exp", config_hash=cfg.config_hash(), envs=entries, held_back=["car_rental"],
                        train_envs=2, heldout=["cinema_tickets"],
                        synthesis={"status": "skipped", "reason": "no LLM provider configured", "proposed": 0,
                                   "verified": 0, "rejected": 0, "tokens": 0})
    (out / "envs").mkdir()
    (out / "envs" / "manifest.json").write_text(manifest.model_dump_json(indent=2))
    (out / "data").mkdir()
    for name in ("sft.parquet", "rl.parquet"):
        (out / "data" / name).write_bytes(name.encode())

    training = {}
    for stage in stages:
        (out / "train" / stage).mkdir()
        history = ([{"loss": 0.1, "reward": r, "reward_std": sd, "kl": 0.0, "step": i + 1, "epoch": 0.5 * (i + 1)}
                    for i, (r, sd) in enumerate([(0.2, 0.1), (0.35, 0.15), (0.5, 0.1)])] if stage == "rl"
                   else [{"loss": 1.0 / (i + 1), "grad_norm": 1.0, "learning_rate": 1e-5, "step": i + 1}
                         for i in range(3)])
        metrics = {"steps": 3, "train_rows": 8, "train_runtime_s": 1.0, "history": history if rl_history else [],
                   "model_dir": str(out / "train" / stage / "model")}
        training[stage] = out / "train" / stage / "metrics.json"
        training[stage].write_text(json.dumps(metrics, indent=2))
    outcomes = {"base": list(base_outcomes), "sft": [1.0, 0.0, 0.0, 1.0, 0.0, 0.0],
                "rl": [1.0, 1.0, 0.0, 1.0, 0.0, 0.0]}
    heldout = []
    for stage in ["base", *stages]:
        heldout.append(out / "train" / "eval_envs" / f"{stage}.json")
        heldout[-1].write_text(json.dumps(_eval_envs(stage, outcomes[stage]), indent=2))

    (out / "evals" / "stages" / "base").mkdir(parents=True)
    benches = {
        "bfcl": _bench("bfcl", [("multi_turn_base", 0.0, 1, None, "")],
                       aggregates={"multi_turn": Aggregate(score=0.0, n=1, categories=["multi_turn_base"],
                                                           label="BFCL multi_turn formula; partial: 1/4 "
                                                                 "multi-turn categories"),
                                   "overall": Aggregate(score=None, missing=["java"],
                                                        reason="BFCL's overall needs every category")}),
        "vitabench": _bench("vitabench", [("delivery", 0.5, 2, 0.5, "order-match (non-official)")]),
        "tau2": BenchmarkResult(benchmark="tau2", status="unavailable", policy="p", adapter_version="1",
                                reason="no user simulator configured (evaluation.user_simulator)"),
    }
    bench_files = []
    for name, b in benches.items():
        bench_files.append(out / "evals" / f"{name}.json")
        bench_files[-1].write_text(b.model_dump_json(indent=2))
    stage_files = []
    for stage, score in (("base", 0.0), *((s, 0.5) for s in stages[:-1])):
        (out / "evals" / "stages" / stage).mkdir(parents=True, exist_ok=True)
        f = out / "evals" / "stages" / stage / "vitabench.json"
        f.write_text(_bench("vitabench", [("delivery", score, 2, 0.5, "order-match (non-official)")])
                     .model_dump_json(indent=2))
        stage_files.append((stage, f))
    contamination = out / "evals" / "contamination.json"
    contamination.write_text(json.dumps({"benchmarks": {b: {"checked": True, "counts": {"exact": 0}}
                                                        for b in benches}}))
    res = build_results(cfg, bench_files, heldout, training, [out / "data" / "sft.parquet",
                                                              out / "data" / "rl.parquet",
                                                              out / "envs" / "manifest.json"],
                        contamination, stage_files if stages else [])
    write_results(res, out / "results.json")
    return out


def _probe(page: Path, tmp_path: Path) -> dict:
    """Open `page` (with PROBE added, in a copy) in headless Chromium; what it laid out."""
    probed = page.with_name("probed.html")
    probed.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    cmd = chromium_command(tmp_path, size="1200,1600") + ["--virtual-time-budget=10000", "--dump-dom",
                                                           probed.as_uri()]
    dump = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert dump.returncode == 0, dump.stderr[-2000:]
    m = re.search(r'<pre id="probe">(.*?)</pre>', dump.stdout, re.S)
    assert m, dump.stdout[-2000:]
    return json.loads(htmllib.unescape(m.group(1)))


@pytest.fixture
def experiment(tmp_path) -> Path:
    return make_experiment(tmp_path)


def test_page_shows_the_four_parts_in_headless_chromium(experiment, tmp_path):
    from envfactory.experiment_report import PLOTS, write_report

    s = write_report(experiment)
    page = experiment / "report.html"
    for name in PLOTS:  # real images beside the page, with content
        width, height, distinct = png_info((experiment / "plots" / f"{name}.png").read_bytes())
        assert width > 300 and height > 200 and distinct > 16, name
    text = page.read_text()
    assert text.count("data:image/png;base64,") == 3
    assert "http://" not in text and "https://" not in text and "<script" not in text  # offline, self-contained
    assert [h.stage for h in s.heldout] == ["base", "sft", "rl"] and s.heldout[0].stderr is None

    seen = _probe(page, tmp_path)
    assert set(seen["images"]) == {f"plot-{name}" for name in PLOTS}
    assert all(w > 300 for w in seen["images"].values()), seen["images"]  # every plot decoded and laid out
    rows = seen["rows"]
    # held-out success by stage: base n=1 has no standard error and says so; sft / rl: mean ± s.e., n, label
    assert "heldout|base\t1.000 (n < 2: no s.e.)\t1\tsmoke-sized n=1" in rows
    assert "heldout|sft\t0.333 ± 0.211\t6\tsmoke-sized n=6" in rows
    assert "heldout|rl\t0.500 ± 0.224\t6\tsmoke-sized n=6" in rows
    # GRPO reward: steps and what the band is
    assert "3 logged step(s)" in seen["text"] and "reward_std" in seen["text"]
    # benchmarks: each number with n, standard error where present, and its label
    assert any(r.startswith("benchmarks|vitabench.delivery\t0.500 ± 0.500\t2\torder-match (non-official)")
               for r in rows), rows
    assert any(r.startswith("benchmarks|bfcl.multi_turn_base\t0.000 (n < 2: no s.e.)\t1\tsmoke-sized n=1")
               for r in rows), rows
    assert any(r.startswith("benchmarks|bfcl.multi_turn\t0.000") and "partial: 1/4" in r for r in rows), rows
    assert any(r.startswith("benchmarks|bfcl.overall\t—") and "null: BFCL's overall needs" in r for r in rows)
    assert any(r.startswith("benchmarks|tau2\t—") and "unavailable: no user simulator" in r for r in rows)
    assert "benchmarks|vitabench.delta.sft\t0.500 ± 0.707\nbase 0.000 → sft 0.500\t2\tsft - base; order-match " \
           "(non-official); smoke-sized n=2" in rows
    assert "No paper numbers for this model" in seen["text"]  # smollm2-135m: none in config/paper_results.yaml
    # the environment funnel, as the sweep report counts it
    funnel = {r.split("|", 1)[1].split("\t")[0]: r.split("\t")[-1] for r in rows if r.startswith("funnel|")}
    assert funnel["admitted (all sources)"] == "3" and funnel["used for training"] == "2"
    assert funnel["verified, held back by envs.count"] == "1" and funnel["held out (evaluation only)"] == "1"
    assert "Synthesis: skipped: no LLM provider configured" in seen["text"]


def test_the_browser_check_fails_on_a_missing_or_broken_plot(experiment, tmp_path):
    """The probe is not vacuous: a plot that does not decode is seen with width 0; a missing one is absent."""
    from envfactory.experiment_report import render_html, render_plots, summarize_experiment

    s = summarize_experiment(experiment)
    plots = render_plots(s) | {"reward_curve": b"not a png"}
    page = tmp_path / "broken.html"
    page.write_text(render_html(s, plots))
    assert _probe(page, tmp_path)["images"]["plot-reward_curve"] == 0
    with pytest.raises(KeyError):
        render_html(s, {k: v for k, v in plots.items() if k != "funnel"})


def test_paper_numbers_get_their_column(experiment):
    from envfactory.experiment_report import render_html, summarize_experiment
    from evals.report import PaperNumber

    s = summarize_experiment(experiment)
    s = s.model_copy(update={"paper": {"vitabench.delivery": PaperNumber(base=0.1, trained=0.24, source="the test"),
                                       "mcp_atlas": PaperNumber(base=0.05, trained=0.14, source="paper page")}})
    page = render_html(s, {name: b"" for name in ("heldout", "reward_curve", "funnel")})
    assert "<th>paper EnvFactory</th>" in page and "No paper numbers" not in page
    row = next(r for r in page.split("<tr") if "<code>vitabench.delivery</code>" in r)
    assert "0.500 ± 0.500" in row and "<td>0.240</td>" in row and "the test" in row
    row = next(r for r in page.split("<tr") if "<code>mcp_atlas</code>" in r)
    assert "not measured in this experiment" in row and "<td>0.140</td>" in row


def test_no_rl_stage_and_undefined_errors_are_said(tmp_path):
    """train.stages: [] — base only: the reward plot says there was no RL, the held-out plot has no error bar."""
    from envfactory.experiment_report import plot_reward_curve, render_html, render_plots, summarize_experiment

    base_only = summarize_experiment(make_experiment(tmp_path / "a", stages=(), base_outcomes=(0.0,)))
    assert [h.stage for h in base_only.heldout] == ["base"] and not base_only.rl_ran and not base_only.reward
    plots = render_plots(base_only)
    assert png_info(plots["heldout"])[2] > 16
    page = render_html(base_only, plots)
    assert "n &lt; 2: no s.e." in page and "No RL stage" in page and "± 0.000" not in page
    with_rl = summarize_experiment(make_experiment(tmp_path / "b"))
    assert [(r.step, r.reward, r.reward_std) for r in with_rl.reward] == [(1, 0.2, 0.1), (2, 0.35, 0.15),
                                                                        (3, 0.5, 0.1)]
    silent = summarize_experiment(make_experiment(tmp_path / "c", rl_history=False))
    assert silent.rl_ran and not silent.reward
    assert len({plot_reward_curve(x) for x in (base_only, with_rl, silent)}) == 3


def test_cli_writes_the_page_and_its_plots(experiment):
    proc = subprocess.run([sys.executable, "-m", "envfactory.experiment_report", str(experiment)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "held-out base  1.000 n < 2: no error bar (n=1)" in proc.stdout
    assert (experiment / "report.html").is_file() and len(list((experiment / "plots").glob("*.png"))) == 3


def test_the_default_target_builds_the_page_first(tmp_path):
    """`snakemake -n results/smollm2-135m.json` (the README's command) schedules results/default/report.html."""
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-n", "-s", str(ROOT / "Snakefile"), "--directory",
                           str(tmp_path), "results/smollm2-135m.json", "--configfile",
                           str(ROOT / "config" / "config.yaml")], capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    job = next(b for b in re.split(r"\n(?=(?:local)?rule \w+:)", out) if b.startswith("rule experiment_report:"))
    assert "output: results/default/report.html" in job and "input: results/default/results.json" in job
    headline = next(b for b in re.split(r"\n(?=(?:local)?rule \w+:)", out) if b.startswith("rule headline:"))
    assert "results/default/report.html" in headline.split("output:")[0]


def test_a_long_reward_curve_gets_its_moving_mean(tmp_path):
    """Each GRPO step sees a few new prompts, so the curve is drawn with the mean of the last SMOOTH steps."""
    from envfactory.experiment_report import SMOOTH, RewardStep, reward_curves, summarize_experiment

    s = summarize_experiment(make_experiment(tmp_path))
    assert [c.label for c in reward_curves(s)] == ["mean reward"]  # 3 steps: too few to smooth
    s.reward = [RewardStep(step=i + 1, reward=float(i % 2)) for i in range(2 * SMOOTH)]  # 0, 1, 0, 1, ...
    raw, smooth = reward_curves(s)
    assert raw.spread is None and smooth.steps == list(range(SMOOTH, 2 * SMOOTH + 1))
    assert smooth.means == [0.5] * (SMOOTH + 1)
