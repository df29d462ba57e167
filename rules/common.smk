# Shared paths, the resolved configs and the MLflow parent run of this invocation.
#
# Every stage rule is written once over the `{out}` wildcard: an experiment's output folder. `POINTS` maps each
# folder the DAG may build to its validated config: the invocation's experiment (results/<experiment>) and every
# point of every sweep in config/experiments/ (results/<sweep>/<variant>-s<seed>, envfactory/sweep.py).
import json
import re
import sys
from pathlib import Path

from envfactory.config import ExperimentConfig
from envfactory.sweep import expand_sweep, load_sweeps, merge_files
from evals.registry import benchmark_names
from envfactory.train.model_card import card_names, load_card
from envfactory import tracking

CFG = ExperimentConfig.model_validate(config)
OUT = str(CFG.out_dir())
ENVFACTORY = f"{sys.executable} -m envfactory"
# Sweeps shipped with the workflow and any in the working directory's own config/experiments/.
SWEEPS = load_sweeps([Path(workflow.basedir) / "config" / "experiments", Path("config") / "experiments"])
POINTS = {OUT: CFG}
SWEEP_POINTS = {}
for _name, (_spec, _path) in SWEEPS.items():
    SWEEP_POINTS[_name] = expand_sweep(_spec, config, _path.parent)
    POINTS.update(SWEEP_POINTS[_name])

MODEL = CFG.train.model
HEADLINE = f"{CFG.results_dir}/{MODEL}.json"


def model_experiment(model):
    """The experiment behind results/<model>.json: the invocation's when it names `model`, else the experiment
    the model card names (the paper's protocol at its scale), merged over config/config.yaml as Snakemake merges
    `--configfile`, so `snakemake results/qwen3-8b.json` works as written."""
    if model == MODEL:
        return CFG
    files = [Path(workflow.basedir) / f for f in load_card(model).experiment]
    raw = merge_files(files, merge_files([Path(workflow.basedir) / "config" / "config.yaml"]))
    raw["results_dir"] = CFG.results_dir
    return ExperimentConfig.model_validate(raw)


HEADLINES = {m: model_experiment(m) for m in card_names()}
for _cfg in HEADLINES.values():
    POINTS.setdefault(str(_cfg.out_dir()), _cfg)

wildcard_constraints:
    out="|".join(re.escape(o) for o in POINTS),
    sweep="|".join(re.escape(s) for s in SWEEPS) or "(?!)",
    stage="base|sft|rl",
    model="|".join(re.escape(m) for m in HEADLINES),
    bench="|".join(re.escape(b) for b in benchmark_names()),


def cfg_of(wc):
    return POINTS[wc.out]


def stage_metrics(out, stage):
    """A training stage's metrics.json (its model lives beside it); the base model has none."""
    return f"{out}/train/{stage}/metrics.json" if stage != "base" else []


def final_stage(cfg):
    return cfg.train.stages[-1] if cfg.train.stages else "base"


_PACKAGE_FILES = {}


def package_files(wc):
    """Files of the selected environment packages: editing one re-runs the envs stage."""
    from envfactory.env.manifest import selected_packages

    cfg = cfg_of(wc)
    key = json.dumps(cfg.envs.model_dump(mode="json", exclude={"count"}), sort_keys=True)
    if key not in _PACKAGE_FILES:
        _PACKAGE_FILES[key] = sorted(str(f) for _, pkg in selected_packages(cfg) for f in pkg.files())
    return _PACKAGE_FILES[key]


rule resolved_config:
    """The validated config as the stages see it; params make a config change re-run downstream rules."""
    output:
        "{out}/config.json",
    params:
        cfg=lambda wc: json.dumps(cfg_of(wc).model_dump(mode="json"), sort_keys=True),
    run:
        from envfactory.io import atomic_write_text

        atomic_write_text(output[0], params.cfg + "\n")


onstart:
    tracking.start_parent_run(CFG, targets=sys.argv[1:])

onsuccess:
    tracking.end_parent_run(CFG, "FINISHED")

onerror:
    tracking.end_parent_run(CFG, "FAILED")
