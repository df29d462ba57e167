"""`results/<sweep>/report.html`: one self-contained page per sweep, with matplotlib plots.

Reads each point's `results.json`, manifest and RL metrics; aggregates the plotted metrics per variant
(mean and standard error over seeds); draws the study's main plot (a curve against the number of training
environments, or bars per variant), reward curves over RL steps, and the synthesis funnel; and puts ours
next to the paper's reported numbers where `config/paper_results.yaml` has them. Images are written as PNG
files (for `snakemake --report`) and embedded in the HTML, so the page opens offline from anywhere.

The pieces `collect_point`, `funnel_png`, `reward_curves_png`, `html_page`, `figures_html`, `fmt_number` and
`label_html` also build one experiment's page (envfactory/experiment_report.py).
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import NamedTuple

from pydantic import BaseModel, Field

from evals.report import PaperNumber

from .io import atomic_write_bytes, atomic_write_json, atomic_write_text
from .sweep import SweepSpec

PLOTS = ("main", "reward_curves", "funnel")


class PointSummary(BaseModel):
    out: str
    variant: str
    seed: int
    metrics: dict[str, float]
    labels: dict[str, str] = Field(default_factory=dict, description="qualifiers of the metrics (same keys)")
    train_envs: int
    admitted: int
    rejected: int
    held_back: int
    synthesis: dict = Field(default_factory=dict)
    reward_curve: list[tuple[int, float]] = Field(default_factory=list, description="(RL step, mean reward)")


class VariantSummary(BaseModel):
    variant: str
    seeds: list[int]
    x: float | None = None
    mean: dict[str, float]
    stderr: dict[str, float | None]
    n: dict[str, int]
    labels: dict[str, str] = Field(default_factory=dict, description="qualifiers of the variant's numbers")


class SweepSummary(BaseModel):
    sweep: str
    description: str
    plot: str
    x: str | None
    metrics: list[str]
    model: str
    points: list[PointSummary]
    variants: list[VariantSummary]
    paper: dict[str, PaperNumber] = Field(default_factory=dict)


def collect_point(out: Path) -> PointSummary:
    """What the report needs from one finished sweep point (or experiment: variant = its name)."""
    from evals.report import ModelResults, headline_labels, headline_metrics

    cfg = json.loads((out / "config.json").read_text())
    res = ModelResults.model_validate_json((out / "results.json").read_text())
    manifest = json.loads((out / "envs" / "manifest.json").read_text())
    curve = []
    rl = out / "train" / "rl" / "metrics.json"
    if rl.is_file():
        curve = [(int(h.get("step", i + 1)), float(h["reward"]))
                 for i, h in enumerate(json.loads(rl.read_text()).get("history", [])) if "reward" in h]
    member = cfg.get("sweep") or {"variant": cfg["experiment"], "seed": cfg.get("seed", 0)}
    return PointSummary(out=str(out), variant=member["variant"], seed=member["seed"],
                        metrics=headline_metrics(res), labels=headline_labels(res),
                        train_envs=manifest["train_envs"],  # held out by name and by domain
                        admitted=len(manifest["envs"]), rejected=len(manifest.get("rejected", [])),
                        held_back=len(manifest.get("held_back", [])), synthesis=manifest.get("synthesis", {}),
                        reward_curve=curve)


def summarize(spec: SweepSpec, points: list[PointSummary], model: str,
              paper: dict[str, float] | None = None) -> SweepSummary:
    """Per-variant aggregates in the sweep file's variant order (pure)."""
    from evals.base import mean_stderr

    variants = []
    for name in spec.variants:
        mine = [p for p in points if p.variant == name]
        if not mine:
            raise ValueError(f"sweep {spec.sweep!r}: no finished point for variant {name!r}")
        mean, err, n = {}, {}, {}
        for key in sorted({k for p in mine for k in p.metrics}):
            vals = [p.metrics[key] for p in mine if key in p.metrics]
            mean[key], err[key] = mean_stderr(vals)
            n[key] = len(vals)
        x = sum(p.train_envs for p in mine) / len(mine) if spec.x == "train_envs" else None
        labels = {k: "; ".join(sorted({lab for p in mine for lab in p.labels.get(k, "").split("; ") if lab}))
                  for k in mean}
        variants.append(VariantSummary(variant=name, seeds=sorted(p.seed for p in mine), x=x, mean=mean,
                                       stderr=err, n=n, labels={k: v for k, v in labels.items() if v}))
    return SweepSummary(sweep=spec.sweep, description=spec.description, plot=spec.plot, x=spec.x,
                        metrics=spec.metrics, model=model, points=points, variants=variants, paper=paper or {})


def new_figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    return plt, fig, ax


def to_png(plt, fig) -> bytes:
    import io

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def empty_plot(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=11, color="#555")
    ax.set_xticks([])
    ax.set_yticks([])


def plot_main(s: SweepSummary) -> bytes:
    """The study's plot: metric vs training environments (line) or per variant (bars), ± 1 standard error."""
    plt, fig, ax = new_figure()
    metrics = [m for m in s.metrics if any(m in v.mean for v in s.variants)]
    if not metrics:
        empty_plot(ax, f"none of {s.metrics} was measured (benchmarks unavailable?)")
    elif s.plot == "line":
        order = sorted(s.variants, key=lambda v: v.x or 0.0)
        for m in metrics:
            pts = [(v.x, v.mean[m], v.stderr[m] or 0.0) for v in order if m in v.mean]
            ax.errorbar([p[0] for p in pts], [p[1] for p in pts], yerr=[p[2] for p in pts], marker="o",
                        capsize=4, label=m)
        ax.set_xlabel("training environments" if s.x == "train_envs" else (s.x or "variant"))
        ax.set_ylabel("success / score")
        ax.legend()
    else:
        width = 0.8 / len(metrics)
        for i, m in enumerate(metrics):
            xs = [j + i * width for j in range(len(s.variants))]
            ax.bar(xs, [v.mean.get(m, 0.0) for v in s.variants], width,
                   yerr=[v.stderr.get(m) or 0.0 for v in s.variants], capsize=4, label=m)
        ax.set_xticks([j + width * (len(metrics) - 1) / 2 for j in range(len(s.variants))],
                      [v.variant for v in s.variants], rotation=20)
        ax.set_ylabel("success / score")
        ax.legend()
    seeds = max((len(v.seeds) for v in s.variants), default=0)
    ax.set_title(f"{s.sweep}: {s.model}, {seeds} seed(s) per point, error bars = 1 s.e.")
    ax.set_ylim(bottom=0)
    return to_png(plt, fig)


class Curve(NamedTuple):
    """One line of a reward plot: mean reward per RL step, and optionally a ± band around it."""
    label: str
    steps: list[int]
    means: list[float]
    spread: list[float] | None = None
    spread_label: str = ""


def reward_curves_png(curves: list[Curve], empty_text: str) -> bytes:
    """GRPO reward over RL steps, one line per curve (the sweep's variants, or one experiment's run)."""
    plt, fig, ax = new_figure()
    for c in curves:
        (line,) = ax.plot(c.steps, c.means, marker="o", label=c.label)
        if c.spread is not None:
            ax.fill_between(c.steps, [m - d for m, d in zip(c.means, c.spread)],
                            [m + d for m, d in zip(c.means, c.spread)], color=line.get_color(), alpha=0.2,
                            label=c.spread_label or None)
    if curves:
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("RL step")
        ax.set_ylabel("mean reward")
        ax.legend()
    else:
        empty_plot(ax, empty_text)
    ax.set_title("GRPO reward over steps")
    return to_png(plt, fig)


def plot_reward_curves(s: SweepSummary) -> bytes:
    """Mean RL reward per step, averaged over a variant's seeds."""
    curves = []
    for v in s.variants:
        by_step: dict[int, list[float]] = {}
        for p in s.points:
            if p.variant == v.variant:
                for step, r in p.reward_curve:
                    by_step.setdefault(step, []).append(r)
        if by_step:
            steps = sorted(by_step)
            curves.append(Curve(v.variant, steps, [sum(by_step[k]) / len(by_step[k]) for k in steps]))
    return reward_curves_png(curves, "no RL stage in this sweep")


def funnel_png(points: list[PointSummary], train_label: str = "used for training (mean)") -> bytes:
    """Environments from proposal to training: synthesized proposed -> verified, then all sources admitted
    (means over `points`: a sweep's, or one experiment's)."""
    plt, fig, ax = new_figure()
    p0 = points[0]
    proposed = sum(int(p.synthesis.get("proposed") or 0) for p in points) / len(points)
    synth_ok = sum(int(p.synthesis.get("verified") or 0) for p in points) / len(points)
    verified = sum(p.admitted + p.held_back for p in points) / len(points)
    rejected = sum(p.rejected for p in points) / len(points)
    train = sum(p.train_envs for p in points) / len(points)
    labels = ["synth. proposed", "synth. verified", "all verified", "rejected", train_label]
    values = [proposed, synth_ok, verified, rejected, train]
    bars = ax.barh(labels[::-1], values[::-1], color=["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3"][::-1])
    ax.bar_label(bars, fmt="%.1f")
    status = p0.synthesis.get("status", "unknown")
    ax.set_title("environment funnel" + (f" (synthesis {status})" if status != "ran" else ""))
    ax.set_xlabel("environments")
    return to_png(plt, fig)


def plot_funnel(s: SweepSummary) -> bytes:
    """The funnel averaged over the sweep's points."""
    return funnel_png(s.points)


def render_plots(s: SweepSummary) -> dict[str, bytes]:
    return {"main": plot_main(s), "reward_curves": plot_reward_curves(s), "funnel": plot_funnel(s)}


def fmt_number(mean: float | None, err: float | None = None, with_err: bool = False) -> str:
    """`mean ± err`; with_err and no err: the standard error is undefined (n < 2), said rather than shown as 0."""
    if mean is None:
        return "—"
    if err is None:
        return f"{mean:.3f}" + (" (n&lt;2: no s.e.)" if with_err else "")
    return f"{mean:.3f} ± {err:.3f}"


def label_html(text: str | None) -> str:
    """A number's qualifiers, shown under it (never dropped: smoke-sized n, replay-based, non-official...)."""
    return f"<br><small class='label'>{html.escape(text)}</small>" if text else ""


PAGE_CSS = """body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; } td, th { border: 1px solid #ccc; padding: 4px 8px; }
th { background: #f3f3f3; } figure { display: inline-block; margin: 0 1em 1em 0; }
img.plot { max-width: 760px; border: 1px solid #ddd; } .note { color: #666; }
"""


def html_page(title: str, body: str, css: str = "") -> str:
    """A self-contained page (no external resource): `title` is HTML already, `css` adds to the shared style."""
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title>
<style>
{PAGE_CSS}{css}</style></head><body>
{body}</body></html>
"""


def figures_html(plots: dict[str, bytes], names) -> str:
    """The plots as embedded PNGs (`<img class='plot' id='plot-<name>'>`), captioned by name, in `names` order."""
    return "".join(
        f"<figure><img class='plot' id='plot-{name}' alt='{name}' src='data:image/png;base64,"
        f"{base64.b64encode(plots[name]).decode()}'><figcaption>{html.escape(name.replace('_', ' '))}</figcaption>"
        "</figure>" for name in names)


def render_html(s: SweepSummary, plots: dict[str, bytes]) -> str:
    e = html.escape
    keys = [k for k in s.metrics] + sorted({k for v in s.variants for k in v.mean} - set(s.metrics))
    head = "".join(f"<th>{e(k)}</th>" for k in keys)
    rows = "".join(
        f"<tr><td>{e(v.variant)}</td><td>{'' if v.x is None else f'{v.x:g}'}</td><td>{len(v.seeds)}</td>"
        + "".join(f"<td>{fmt_number(v.mean.get(k), v.stderr.get(k), with_err=k in v.mean)}"
                  f"{label_html(v.labels.get(k))}</td>" for k in keys) + "</tr>"
        for v in s.variants)
    def best(k):
        return max((v for v in s.variants if k in v.mean), key=lambda v: v.mean[k], default=None)

    paper_rows = "".join(
        f"<tr><td>{e(k)}</td><td>{fmt_number(best(k).mean[k]) if best(k) else '—'}"
        f"{label_html(best(k).labels.get(k)) if best(k) else ''}</td>"
        f"<td>{fmt_number(s.paper[k].base) if k in s.paper else '—'}</td>"
        f"<td>{fmt_number(s.paper[k].trained) if k in s.paper else '—'}"
        f"</td><td>{e(s.paper[k].source) if k in s.paper else ''}</td></tr>"
        for k in s.metrics + sorted(set(s.paper) - set(s.metrics)))
    paper_note = ("" if s.paper else "<p class='note'>No paper numbers for this model in config/paper_results.yaml "
                  "(only verified numbers are listed there).</p>")
    points = "".join(
        f"<tr><td>{e(p.variant)}</td><td>{p.seed}</td><td>{p.train_envs}</td><td><code>{e(p.out)}</code></td>"
        + "".join(f"<td>{fmt_number(p.metrics.get(k))}</td>" for k in s.metrics) + "</tr>" for p in s.points)
    return html_page(f"EnvFactory sweep: {e(s.sweep)}", f"""<h1>Sweep <code>{e(s.sweep)}</code></h1>
<p>{e(s.description)}</p>
<p>Model <code>{e(s.model)}</code>; {len(s.variants)} variants × {len(s.points) // max(len(s.variants), 1)} seeds;
values are mean ± standard error over seeds.</p>
<section id="plots">{figures_html(plots, PLOTS)}</section>
<h2>Per variant</h2>
<table id="variants"><tr><th>variant</th><th>x</th><th>seeds</th>{head}</tr>{rows}</table>
<h2>Ours vs the paper</h2>
<table id="paper"><tr><th>metric</th><th>ours (best variant)</th><th>paper base</th><th>paper EnvFactory</th><th>source</th></tr>{paper_rows}</table>{paper_note}
<h2>Points</h2>
<table id="points"><tr><th>variant</th><th>seed</th><th>training envs</th><th>folder</th>
{''.join(f'<th>{e(k)}</th>' for k in s.metrics)}</tr>{points}</table>
""")  # noqa: E501 - the page's HTML, byte for byte: not wrapped


def write_report(spec: SweepSpec, point_dirs: list[Path], out_html: Path, plots_dir: Path) -> SweepSummary:
    from evals.report import paper_numbers

    points = [collect_point(Path(d)) for d in point_dirs]
    model = json.loads((Path(point_dirs[0]) / "config.json").read_text())["train"]["model"]
    summary = summarize(spec, points, model, paper_numbers(model))
    plots = render_plots(summary)
    for name, data in plots.items():
        atomic_write_bytes(plots_dir / f"{name}.png", data)
    atomic_write_json(out_html.with_name("summary.json"), summary.model_dump(mode="json"))
    atomic_write_text(out_html, render_html(summary, plots))
    return summary
