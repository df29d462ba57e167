"""`results/<experiment>/report.html`: one experiment's `results.json`, drawn and labelled (rule `experiment_report`).

Four parts, built from the sweep report's pieces (envfactory/sweep_report.py) for a single point: held-out success
per training stage with ± 1 standard error (none when n < 2, and the page says so), the GRPO reward per step (mean
± `reward_std` from the rl stage's metrics.json), every benchmark number with its label, n and standard error
(beside the paper's number where `config/paper_results.yaml` has one), and the environment funnel. The PNGs are
written to `plots/` beside the page and embedded in it, so it opens offline. Nothing volatile (times, git sha) is
shown: the same results give the same page.

    python -m envfactory.experiment_report results/default   # -> results/default/report.html
"""

from __future__ import annotations

import argparse
import html
import json
from pathlib import Path

from pydantic import BaseModel, Field

from evals.report import ModelResults, PaperNumber

from .io import atomic_write_bytes, atomic_write_text
from .sweep_report import (
    Curve,
    PointSummary,
    collect_point,
    empty_plot,
    figures_html,
    fmt_number,
    funnel_png,
    html_page,
    label_html,
    new_figure,
    reward_curves_png,
    to_png,
)

PLOTS = ("heldout", "reward_curve", "funnel")
SMOOTH = 4  # steps in the reward curve's moving mean
STAGE_ORDER = ("base", "sft", "rl")
NO_SE = "n < 2: no error bar"


class StageSuccess(BaseModel):
    stage: str
    success: float
    stderr: float | None = Field(description="`success_stderr` of eval_envs/<stage>.json; null when n < 2")
    n: int
    label: str = ""


class MetricRow(BaseModel):
    """One number of the benchmark table, keyed like the headline metrics (`bfcl.multi_turn_base`)."""
    key: str
    value: float | None
    stderr: float | None = None
    n: int | None = None
    label: str = ""
    note: str = Field("", description="why there is no number (unavailable, null aggregate), or the stage scores")


class RewardStep(BaseModel):
    step: int
    reward: float
    reward_std: float | None = None


class ExperimentSummary(BaseModel):
    experiment: str
    model: str
    out: str
    final_stage: str
    config_hash: str
    heldout: list[StageSuccess]
    reward: list[RewardStep] = Field(default_factory=list)
    rl_ran: bool = False
    rows: list[MetricRow]
    paper: dict[str, PaperNumber] = Field(default_factory=dict)
    point: PointSummary
    heldout_envs: int = 0


def heldout_by_stage(res: ModelResults, labels: dict[str, str]) -> list[StageSuccess]:
    """Held-out success per stage, base first (the stages that ran)."""
    order = sorted(res.heldout, key=lambda s: STAGE_ORDER.index(s) if s in STAGE_ORDER else len(STAGE_ORDER))
    return [StageSuccess(stage=s, success=float(res.heldout[s]["success_rate"]),
                         stderr=res.heldout[s].get("success_stderr"), n=int(res.heldout[s].get("episodes", 0)),
                         label=labels.get(f"heldout.{s}", "")) for s in order]


def benchmark_rows(res: ModelResults, labels: dict[str, str]) -> list[MetricRow]:
    """Every benchmark number of the final model, its categories and aggregates, then the per-stage deltas."""
    from evals.report import _weighted_stderr

    rows = []
    for name, b in res.benchmarks.items():
        if b.status != "scored" or b.score is None:
            rows.append(MetricRow(key=name, value=None, note=f"{b.status}: {b.reason}" if b.reason else b.status))
            continue
        rows.append(MetricRow(key=name, value=b.score, stderr=_weighted_stderr(b), n=sum(c.n for c in b.categories),
                              label=labels.get(name, "")))
        rows += [MetricRow(key=f"{name}.{c.category}", value=c.score, stderr=c.stderr, n=c.n,
                           label=labels.get(f"{name}.{c.category}", "")) for c in b.categories]
        for key, agg in b.aggregates.items():
            note = "" if agg.score is not None else "null: " + (agg.reason or f"missing {', '.join(agg.missing)}")
            rows.append(MetricRow(key=f"{name}.{key}", value=agg.score, n=agg.n or None, note=note,
                                  label=labels.get(f"{name}.{key}", agg.label if agg.score is None else "")))
    for name, ps in res.per_stage.items():
        for stage, d in ps.deltas.items():
            scores = f"base {fmt_number(d.base)} → {stage} {fmt_number(d.stage)}"
            rows.append(MetricRow(key=f"{name}.delta.{stage}", value=d.delta, stderr=d.stderr, n=d.n,
                                  label=labels.get(f"{name}.delta.{stage}", d.label),
                                  note=scores if d.delta is not None else f"{scores}: {d.label}"))
    return rows


def reward_history(metrics_file: Path | None) -> list[RewardStep]:
    """(step, reward, reward_std) of the rl stage's `history` (TRL's log entries that carry a reward)."""
    if metrics_file is None or not metrics_file.is_file():
        return []
    history = json.loads(metrics_file.read_text()).get("history", [])
    return [RewardStep(step=int(h.get("step", i + 1)), reward=float(h["reward"]),
                       reward_std=float(h["reward_std"]) if isinstance(h.get("reward_std"), (int, float)) else None)
            for i, h in enumerate(history) if isinstance(h.get("reward"), (int, float))]


def summarize_experiment(out: Path) -> ExperimentSummary:
    """What the page shows, from `{out}`'s results.json, config.json, envs/manifest.json, train/rl/metrics.json."""
    from evals.report import headline_labels

    res = ModelResults.model_validate_json((out / "results.json").read_text())
    labels = headline_labels(res)
    cfg = json.loads((out / "config.json").read_text())
    manifest = json.loads((out / "envs" / "manifest.json").read_text())
    rl_ran = "rl" in (cfg.get("train", {}).get("stages") or [])
    return ExperimentSummary(experiment=cfg["experiment"], model=res.model, out=str(out), final_stage=res.final_stage,
                             config_hash=res.provenance.config_hash, heldout=heldout_by_stage(res, labels),
                             reward=reward_history(out / "train" / "rl" / "metrics.json") if rl_ran else [],
                             rl_ran=rl_ran, rows=benchmark_rows(res, labels), paper=res.paper,
                             point=collect_point(out), heldout_envs=len(manifest.get("heldout", [])))


def plot_heldout(s: ExperimentSummary) -> bytes:
    """Held-out success per stage, ± 1 standard error; a stage with n < 2 gets no bar and says so."""
    plt, fig, ax = new_figure()
    if not s.heldout:
        empty_plot(ax, "no held-out evaluation")
    else:
        xs = list(range(len(s.heldout)))
        colors = ["#4c72b0", "#dd8452", "#55a868", "#8172b3"]
        ax.bar(xs, [h.success for h in s.heldout], 0.6, color=[colors[x % len(colors)] for x in xs])
        with_se = [(x, h) for x, h in zip(xs, s.heldout) if h.stderr is not None]
        if with_se:
            ax.errorbar([x for x, _ in with_se], [h.success for _, h in with_se],
                        yerr=[h.stderr for _, h in with_se], fmt="none", ecolor="#222", capsize=6)
        for x, h in zip(xs, s.heldout):
            text = f"{h.success:.2f}" + (f" ± {h.stderr:.2f}" if h.stderr is not None
                                         else f"\n({NO_SE if h.n < 2 else 'no s.e. recorded'})")
            ax.text(x, h.success + (h.stderr or 0.0) + 0.02, text, ha="center", va="bottom", fontsize=9)
        ax.set_xticks(xs, [f"{h.stage}\nn={h.n}" for h in s.heldout])
        ax.set_ylabel("held-out success")
        ax.set_ylim(0, max(1.0, max(h.success + (h.stderr or 0.0) for h in s.heldout)) * 1.2)
    ax.set_title(f"{s.model}: held-out success by stage, error bars = 1 s.e.")
    return to_png(plt, fig)


def reward_curves(s: ExperimentSummary) -> list[Curve]:
    """Mean GRPO reward per RL step with its within-group spread (± reward_std), and its moving mean."""
    curves = []
    if s.reward:
        spread = [r.reward_std for r in s.reward]
        curves.append(Curve("mean reward", [r.step for r in s.reward], [r.reward for r in s.reward],
                            None if None in spread else spread, "± reward_std (within a GRPO group)"))
        if len(s.reward) >= 2 * SMOOTH:  # a step sees a few new prompts: its mean is mostly their difficulty
            means = [r.reward for r in s.reward]
            curves.append(Curve(f"mean of the last {SMOOTH} steps", [r.step for r in s.reward[SMOOTH - 1:]],
                                [sum(means[i - SMOOTH + 1:i + 1]) / SMOOTH for i in range(SMOOTH - 1, len(means))]))
    return curves


def plot_reward_curve(s: ExperimentSummary) -> bytes:
    curves = reward_curves(s)
    return reward_curves_png(curves, "RL ran but logged no reward" if s.rl_ran else "no RL stage in this experiment")


def render_plots(s: ExperimentSummary) -> dict[str, bytes]:
    return {"heldout": plot_heldout(s), "reward_curve": plot_reward_curve(s),
            "funnel": funnel_png([s.point], train_label="used for training")}


def _value(mean: float | None, err: float | None, n: int | None) -> str:
    """`mean ± err`; a missing standard error is said (n < 2: undefined), never shown as ± 0."""
    if mean is None:
        return "—"
    if err is not None:
        return f"{mean:.3f} ± {err:.3f}"
    return f"{mean:.3f} <small class='nse'>({'n &lt; 2: no s.e.' if n is not None and n < 2 else 'no s.e.'})</small>"


def render_html(s: ExperimentSummary, plots: dict[str, bytes]) -> str:
    e = html.escape
    p = s.point
    heldout = "".join(
        f"<tr class='stage'><td>{e(h.stage)}</td><td>{_value(h.success, h.stderr, h.n)}</td><td>{h.n}</td>"
        f"<td>{e(h.label)}</td></tr>" for h in s.heldout)
    keys = [r.key for r in s.rows]
    paper_keys = [k for k in s.paper if k not in keys]
    rows = [*s.rows, *(MetricRow(key=k, value=None, note="not measured in this experiment") for k in paper_keys)]
    paper_head = "<th>paper base</th><th>paper EnvFactory</th><th>source</th>" if s.paper else ""

    def paper_cells(key: str) -> str:
        if not s.paper:
            return ""
        if key not in s.paper:
            return "<td>—</td><td>—</td><td></td>"
        n = s.paper[key]
        return f"<td>{fmt_number(n.base)}</td><td>{fmt_number(n.trained)}</td><td>{e(n.source)}</td>"

    table = "".join(
        f"<tr class='metric'><td><code>{e(r.key)}</code></td><td>{_value(r.value, r.stderr, r.n)}"
        f"{label_html(r.note)}</td><td>{'' if r.n is None else r.n}</td><td class='label'>{e(r.label)}</td>"
        f"{paper_cells(r.key)}</tr>" for r in rows)
    paper_note = ("" if s.paper else "<p class='note'>No paper numbers for this model in config/paper_results.yaml "
                  "(only verified numbers are listed there).</p>")
    syn = p.synthesis
    funnel = [("synthesized: proposed", syn.get("proposed") or 0), ("synthesized: verified", syn.get("verified") or 0),
              ("admitted (all sources)", p.admitted), ("verified, held back by envs.count", p.held_back),
              ("rejected", p.rejected), ("used for training", p.train_envs), ("held out (evaluation only)",
                                                                              s.heldout_envs)]
    funnel_rows = "".join(f"<tr><td>{e(k)}</td><td>{v}</td></tr>" for k, v in funnel)
    synthesis = e(str(syn.get("status", "unknown"))) + (f": {e(str(syn['reason']))}" if syn.get("reason") else "")
    steps = (f"{len(s.reward)} logged step(s); the line is the mean reward of a step, the band ± <code>reward_std"
             "</code> (the spread of rewards within a GRPO group), not a standard error." if s.reward else
             "The rl stage logged no reward." if s.rl_ran else "No RL stage in this experiment (train.stages).")
    body = f"""<h1>Experiment <code>{e(s.experiment)}</code></h1>
<p>Model <code>{e(s.model)}</code>; final stage <code>{e(s.final_stage)}</code>; config hash
<code>{e(s.config_hash)}</code>; from <code>{e(s.out)}/results.json</code>. Values are mean ± one standard error over
tasks; a number's qualifiers (smoke-sized n, non-official metric, replay-based...) are printed beside it.</p>
<h2>Held-out success by stage</h2>
{figures_html(plots, ["heldout"])}
<table id="heldout"><tr><th>stage</th><th>success</th><th>n</th><th>label</th></tr>{heldout}</table>
<h2>GRPO reward</h2>
{figures_html(plots, ["reward_curve"])}
<p id="reward-note">{steps}</p>
<h2>Benchmarks</h2>
<table id="benchmarks"><tr><th>metric</th><th>ours ({e(s.final_stage)})</th><th>n</th><th>label</th>{paper_head}</tr>
{table}</table>{paper_note}
<h2>Environments</h2>
{figures_html(plots, ["funnel"])}
<p>Synthesis: {synthesis}</p>
<table id="funnel">{funnel_rows}</table>
"""
    return html_page(f"EnvFactory experiment: {e(s.experiment)}", body,
                     css=".nse { color: #a33; } td.label { color: #555; font-size: 90%; }\n")


def write_report(out: Path, out_html: Path | None = None, plots_dir: Path | None = None) -> ExperimentSummary:
    """`{out}/report.html` and `{out}/plots/<name>.png` from the experiment folder `out`."""
    out = Path(out)
    out_html = out_html or out / "report.html"
    s = summarize_experiment(out)
    plots = render_plots(s)
    for name, data in plots.items():
        atomic_write_bytes((plots_dir or out_html.parent / "plots") / f"{name}.png", data)
    atomic_write_text(out_html, render_html(s, plots))  # last: the page exists only with its plots
    return s


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m envfactory.experiment_report", description=__doc__.split("\n")[0])
    ap.add_argument("out", help="the experiment folder (results/<experiment>) holding results.json")
    ap.add_argument("--html", help="the page (default: <out>/report.html); its plots go to plots/ beside it")
    args = ap.parse_args(argv)
    html_path = Path(args.html) if args.html else None
    s = write_report(Path(args.out), html_path)
    for h in s.heldout:
        print(f"held-out {h.stage:5s} {h.success:.3f} " + (f"± {h.stderr:.3f}" if h.stderr is not None else NO_SE)
              + f" (n={h.n})")
    print(f"report written to {html_path or Path(args.out) / 'report.html'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
