"""The protocol reaches the trainer: model cards and the paper's settings, through the config.json the DAG writes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from envfactory.config import ExperimentConfig, load_config
from envfactory.sweep import SweepSpec, expand_sweep
from envfactory.train.model_card import card_names, load_card
from envfactory.train.rl import rl_arguments
from envfactory.train.sft import deepspeed_file, last_span, sft_arguments

ROOT = Path(__file__).resolve().parents[1]
PAPER_MD = ROOT.parent / "shared" / "PAPER.md"


def _resolve(workdir: Path, *targets: str, configfiles: tuple[Path, ...] = ()) -> None:
    """Run Snakemake's `resolved_config` rule, as every DAG run does before its stages."""
    files = [ROOT / "config" / "config.yaml", *configfiles]
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory",
                           str(workdir), "--cores", "1", "--configfile", *map(str, files), "--", *targets],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "ENVFACTORY_CACHE": str(workdir / "cache")})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> dict[str, ExperimentConfig]:
    """config.json of the default, of every card's paper experiment, and of a card the config does not tune."""
    work = tmp_path_factory.mktemp("dag")
    exps = {"smollm2-135m": "default",
            **{m: "paper_" + m.replace("-", "_") for m in card_names() if m != "smollm2-135m"}}
    _resolve(work, *(f"results/{e}/config.json" for e in exps.values()))
    plain = work / "plain4b.yaml"
    plain.write_text(yaml.safe_dump({"experiment": "plain4b", "train": {"model": "qwen3-4b"}}))
    _resolve(work, "results/plain4b/config.json", configfiles=(plain,))
    out = {m: load_config(work / "results" / e / "config.json") for m, e in exps.items()}
    out["plain4b"] = load_config(work / "results" / "plain4b" / "config.json")
    return out


def test_default_card_values_reach_sft_after_the_round_trip(written, tmp_path):
    """config/config.yaml sets only max_steps: the smollm2 card's batch shape and length must be trained with."""
    cfg = written["smollm2-135m"]
    card = load_card("smollm2-135m")
    args = sft_arguments(cfg.train.sft, tmp_path, gpu=False, bf16=False)
    assert args["gradient_accumulation_steps"] == card.gradient_accumulation_steps == 2
    assert args["max_length"] == card.max_length == 1024
    assert args["learning_rate"] == card.sft_learning_rate and args["deepspeed"] is None
    assert args["max_steps"] == 10  # the config's own value wins
    assert rl_arguments(cfg.train.rl, tmp_path, gpu=False, bf16=False)["learning_rate"] == card.rl_learning_rate


def test_a_card_fills_every_training_field_the_config_leaves_unset(written, tmp_path):
    cfg, card = written["plain4b"], load_card("qwen3-4b")
    sft = sft_arguments(cfg.train.sft, tmp_path, gpu=True, bf16=True)  # a machine that reports a GPU
    assert (sft["per_device_train_batch_size"], sft["gradient_accumulation_steps"], sft["max_length"],
            sft["learning_rate"]) == (card.per_device_train_batch_size, card.gradient_accumulation_steps,
                                      card.max_length, card.sft_learning_rate)
    assert Path(sft["deepspeed"]) == card.deepspeed_config()
    rl = rl_arguments(cfg.train.rl, tmp_path, gpu=True, bf16=True)
    assert rl["learning_rate"] == card.rl_learning_rate and Path(rl["deepspeed"]) == card.deepspeed_config()
    # transformers accepts the ZeRO config with the batch shape the trainer gets
    from transformers import TrainingArguments

    ta = TrainingArguments(output_dir=str(tmp_path), deepspeed=sft["deepspeed"],
                           per_device_train_batch_size=sft["per_device_train_batch_size"],
                           gradient_accumulation_steps=sft["gradient_accumulation_steps"])
    assert ta.hf_deepspeed_config.config["zero_optimization"]["stage"] == card.deepspeed_stage


def test_zero_without_a_gpu_is_refused_not_dropped(written, tmp_path):
    with pytest.raises(RuntimeError, match="no GPU is visible"):
        sft_arguments(written["qwen3-8b"].train.sft, tmp_path, gpu=False, bf16=False)
    assert deepspeed_file(None, gpu=False) is None


@pytest.mark.parametrize("model", ["qwen3-1.7b", "qwen3-4b", "qwen3-8b"])
def test_paper_experiment_has_the_papers_settings(written, model, tmp_path):
    """Each number below is the paper's (../shared/PAPER.md, quoted); the deviations are the README's table."""
    cfg, card = written[model], load_card(model)
    assert cfg.train.model == model and cfg.experiment == "paper_" + model.replace("-", "_")
    sft = sft_arguments(cfg.train.sft, tmp_path, gpu=True, bf16=True)
    assert sft["learning_rate"] == 1e-6                      # "lr 1e-6"
    assert sft["num_train_epochs"] == 1 and sft["max_steps"] == -1   # "1 epoch"
    assert sft["lr_scheduler_type"] == "cosine" and sft["warmup_steps"] == 0.1  # "cosine schedule, warmup ratio 0.1"
    assert (sft["per_device_train_batch_size"], sft["gradient_accumulation_steps"]) == (1, 32)  # "1 x ... 32"
    assert sft["max_length"] == 16384                        # "cutoff 16,384 tokens"
    assert cfg.train.sft.loss_on == "last_assistant"         # "history masked"
    assert Path(sft["deepspeed"]) == card.deepspeed_config()
    rl = rl_arguments(cfg.train.rl, tmp_path, gpu=True, bf16=True, world_size=8)
    assert rl["num_generations"] == 8 and rl["temperature"] == 0.7 and rl["learning_rate"] == 1e-6
    # "train batch 256, PPO mini-batch 64, micro-batch 2 per GPU" on "1 node x 8 GPUs"
    assert rl["per_device_train_batch_size"] == 2
    assert rl["per_device_train_batch_size"] * 8 * rl["gradient_accumulation_steps"] == 64 * 8
    assert rl["per_device_train_batch_size"] * 8 * rl["steps_per_generation"] == 256 * 8
    assert rl["beta"] == 0.001 and rl["max_completion_length"] == 8192 and rl["num_train_epochs"] == 10
    assert rl["max_tool_calling_iterations"] == 10 and cfg.train.heldout.max_turns == 10 and cfg.data.max_turns == 10
    r = cfg.train.rl.reward
    assert (r.tau, r.tau_fixed, r.penalty_per_call, r.penalty_cap) == ("fixed", 0.5, 0.05, 0.5)
    assert (r.trace_order, r.extra_arguments, r.tolerance) == ("any", "ignore", 1e-6)
    v = cfg.train.view
    assert (v.max_tools, v.max_tool_chars, v.max_tool_tokens) == (None, 512, None)  # "512 characters (middle cut)"
    d = cfg.data
    assert (d.max_envs, d.max_depth, d.max_calls, d.p_optional, d.p_chain) == (3, 5, 15, 0.4, 0.1)
    assert (cfg.evaluation.num_trials, cfg.evaluation.trial_temperature) == (1, 0.7)  # inferred, see PAPER.md


@pytest.mark.skipif(not PAPER_MD.is_file(), reason="../shared/PAPER.md not present")
def test_the_quoted_settings_are_still_the_papers():
    text = " ".join(PAPER_MD.read_text().split())
    for phrase in ["lr 1e-6", "1 epoch", "cosine schedule", "warmup ratio 0.1", "gradient accumulation 32",
                   "cutoff 16,384 tokens", "rollouts n = 8 per prompt, temperature 0.7", "train batch 256, PPO",
                   "mini-batch 64, micro-batch 2 per GPU", "KL loss coefficient 0.001", "max response 8,192",
                   "10 epochs", "multi-turn <= 10 assistant turns", "512 characters", "tau = 0.5 fixed",
                   "at most 15 tools per chain, at most 3 servers, recursion depth <= 5",
                   "optional inputs skipped with p = 0.6", "inputs already satisfiable skipped with p = 0.9"]:
        assert phrase in text, phrase


def test_sweep_seeds_reach_sft_and_rl():
    spec = SweepSpec(sweep="s", variants={"a": {}}, seeds=[3, 4])
    points = expand_sweep(spec, yaml.safe_load((ROOT / "config" / "config.yaml").read_text()))
    assert sorted((c.seed, c.train.sft.seed, c.train.rl.seed) for c in points.values()) == [(3, 3, 3), (4, 4, 4)]
    pinned = expand_sweep(spec, {"train": {"sft": {"seed": 9}}})
    assert {c.train.sft.seed for c in pinned.values()} == {9}  # an explicit seed is kept


def test_unknown_model_card_is_a_config_error():
    with pytest.raises(ValueError, match="no model card 'nope'"):
        ExperimentConfig.model_validate({"train": {"model": "nope"}})


def test_loss_on_the_last_assistant_turn_only():
    assert last_span([0, 1, 1, 0, 0, 1, 1, 1, 0]) == [0, 0, 0, 0, 0, 1, 1, 1, 0]
    assert last_span([1, 1, 0]) == [1, 1, 0]


def test_rl_batch_shape_that_does_not_divide_is_refused(tmp_path):
    from envfactory.train.rl import RLSettings

    with pytest.raises(ValueError, match="does not divide"):
        rl_arguments(RLSettings(prompts_per_step=6, mini_batch_prompts=4), tmp_path, gpu=False, bf16=False)


def test_paper_numbers_carry_their_source_and_use_our_metric_keys():
    from evals.report import paper_numbers

    for model in card_names():
        for key, number in paper_numbers(model).items():
            assert key.split(".")[0] in {"bfcl", "tau2", "mcp_atlas", "vitabench", "heldout"}, key
            assert number.source and (number.base is None or number.base < number.trained)
    assert paper_numbers("qwen3-8b")["mcp_atlas"].trained == pytest.approx(0.1375)
    assert paper_numbers("qwen3-4b")["bfcl.multi_turn"].base == pytest.approx(0.335)
