"""The training rules' bodies (`rules/train.smk`): SFT, RL and held-out evaluation, each logged to MLflow.

A stage writes its model to `<dir>/model` and, last and atomically, `<dir>/metrics.json` (the rule's output),
so an interrupted stage is re-run and a finished one never is. Downstream stages name a model by that file.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ..env.manifest import admitted_packages
from ..io import atomic_write_text
from ..tracking import rule_run
from .model_card import load_card
from .rewards import REWARD_TERMS

if TYPE_CHECKING:  # the stages read the config they are given; `envfactory.config` imports `train.settings`
    from ..config import ExperimentConfig


def base_model_ref(cfg: ExperimentConfig) -> str:
    """What `from_pretrained` gets for the base model: the local default's name, or the card's hub id."""
    card = load_card(cfg.train.model)
    return card.hub_id if card.source == "hub" else card.name


def model_ref(ref: str) -> str:
    """A stage's metrics.json -> its saved model dir; anything else is already a model name/path."""
    if ref.endswith(".json"):
        return str(Path(json.loads(Path(ref).read_text())["model_dir"]).resolve())
    return ref


def _history_metrics(run, history: list[dict], keys: tuple[str, ...]) -> None:
    for h in history:
        step = int(h.get("step", 0))
        run.metrics({k.replace("/", "_"): h[k] for k in keys if isinstance(h.get(k), (int, float))}, step=step)


def run_sft_stage(cfg: ExperimentConfig, sft_data: Path, out: Path) -> dict:
    from .sft import run_sft

    out_dir = out.parent
    with rule_run("sft", cfg) as run:
        settings = cfg.train.sft  # the model card is already resolved into it (config.py)
        run.params({"model": cfg.train.model, **{f"sft.{k}": v for k, v in settings.model_dump().items()},
                    **{f"view.{k}": v for k, v in cfg.train.view.model_dump().items()}})
        m = run_sft(settings, base_model_ref(cfg), cfg.train.view, sft_data, out_dir)
        _history_metrics(run, m.get("history", []), ("loss", "grad_norm", "learning_rate"))
        m["model_dir"] = str(out_dir / "model")  # relative: the results folder can move
        run.metrics({k: v for k, v in m.items() if isinstance(v, (int, float)) and v is not None})
        atomic_write_text(out, json.dumps(m, indent=2))  # history kept: sweep reports plot the curves
    return m


def run_rl_stage(cfg: ExperimentConfig, manifest: Path, rl_data: Path, init_model: str, out: Path) -> dict:
    from .rl import run_rl

    out_dir = out.parent
    with rule_run("rl", cfg) as run:
        settings = cfg.train.rl
        run.params({"model": cfg.train.model, "init": init_model,
                    **{f"rl.{k}": v for k, v in settings.model_dump().items() if k != "reward"},
                    **{f"reward.{k}": v for k, v in settings.reward.model_dump().items()}})
        m = run_rl(settings, model_ref(init_model) if init_model else base_model_ref(cfg), cfg.train.view, rl_data,
                   admitted_packages(manifest),
                   out_dir, sandbox=cfg.envs.sandbox, generation=cfg.generation)
        _history_metrics(run, m.get("history", []), ("loss", "reward", "reward_std", "kl", "entropy",
                                                  *(f"reward_{t}" for t in REWARD_TERMS), "tools/call_frequency",
                                                  "tools/failure_frequency", "completions/mean_length"))
        m["model_dir"] = str(out_dir / "model")  # relative: the results folder can move
        run.metrics({k: v for k, v in m.items() if isinstance(v, (int, float)) and v is not None})
        atomic_write_text(out, json.dumps(m, indent=2))  # history kept: sweep reports plot reward curves
    return m


def run_eval_envs_stage(cfg: ExperimentConfig, manifest: Path, rl_data: Path, model: str, stage: str,
                        out: Path, split: str = "heldout", max_gold_calls: int | None = None,
                        sample: int | None = None) -> dict:
    """Success of one model on the held-out split (the rule), or on another split of the RL rows: `max_gold_calls`
    keeps tasks of at most that many gold calls, `sample` takes that many spread evenly over the sorted rows
    (else the first `train.heldout.limit`)."""
    from ..agent.loop import llm_policy
    from ..generation.serving import served_policy
    from ..llm import LLMClient
    from .eval_envs import evaluate
    from .rl import task_rows

    h = cfg.train.heldout
    ref = model_ref(model)
    tokenizer = _tokenizer(ref)
    rows = task_rows(rl_data, split)
    if max_gold_calls is not None:
        rows = [r for r in rows if len(json.loads(r["gold_calls"])) <= max_gold_calls]
    rows = rows[::max(1, len(rows) // sample)][:sample] if sample else rows[:h.limit] if h.limit else rows
    gen = cfg.generation
    with rule_run(f"eval_envs_{stage}", cfg) as run, \
            served_policy(gen, ref, h.max_new_tokens, out.parent / "vllm.log", seed=cfg.seed) as provider:
        client = LLMClient(provider, cache_mode="off")
        run.params({"model": cfg.train.model, "stage": stage, "heldout_limit": h.limit, "max_turns": h.max_turns,
                    "engine": gen.engine, "concurrency": gen.concurrency, "workers": gen.workers})
        t0 = time.time()
        report = evaluate(llm_policy(client, max_tokens=h.max_new_tokens), rows, admitted_packages(manifest),
                          max_turns=h.max_turns, max_tool_chars=None, split=split,
                          max_tools=cfg.train.view.max_tools, seed=cfg.train.rl.seed,
                          shorten=lambda text: cfg.train.view.shorten(text, tokenizer),
                          concurrency=gen.concurrency)
        result = {"stage": stage, "model_dir": ref, "engine": gen.engine, "wall_s": round(time.time() - t0, 1),
                  **report.model_dump()}
        run.metrics({f"heldout_{k}": v for k, v in result.items() if isinstance(v, (int, float))})
        atomic_write_text(out, json.dumps(result, indent=2))
    return result


def _tokenizer(ref: str):
    from transformers import AutoTokenizer

    from ..default_model import resolve_model_path

    return AutoTokenizer.from_pretrained(resolve_model_path(ref))
