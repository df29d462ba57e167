"""GRPO with the environment in the loop: TRL's GRPOTrainer + `environment_factory` + the composite reward.

Each RL row becomes one TRL "environment" (its name = the row's chain id): a generated `TaskEnvironment`
subclass whose methods are exactly the tools that row offers, reset to the row's scenario, scored by the
registered reward terms (`rewards.py`) once the rollout ends. Tool schemas are rendered from the spec's JSON
dicts (the same text SFT and evaluation show the model), not re-derived from the generated signatures.
"""

from __future__ import annotations

import importlib.util
import json
import os
from collections import defaultdict
from pathlib import Path

from .. import faults
from ..env.package import EnvPackage
from ..querygen.rollouts import offered_tools
from .checkpoints import train_or_finish
from .rewards import REWARD_TERMS, RewardConfig, composite_reward
from .rl_env import SessionPool, environment_class
from .rl_rollout import EngineRollouts, PolicySnapshot, rollout_rows_trainer
from .rows import TrainView, row_rng, select_tools
from .settings import RLSettings
from .sft import deepspeed_file, use_bf16


def rl_arguments(settings: RLSettings, out_dir: Path, gpu: bool, bf16: bool, world_size: int = 1,
                 engine: str | None = None, gpu_memory_utilization: float | None = None) -> dict:
    """GRPOConfig keyword arguments: the paper's batch shape (generation batch, mini-batch, micro-batch) in
    TRL's terms, and vLLM rollouts on GPUs when the engine is vllm; tested without a GPU by passing gpu."""
    g = settings.num_generations
    generation = settings.prompts_per_step * g
    mini = (settings.mini_batch_prompts or settings.prompts_per_step) * g
    micro = settings.per_device_train_batch_size or max(1, mini // world_size)
    if generation % mini or mini % (micro * world_size):
        raise ValueError(f"RL batch shape does not divide: {generation} rollouts per generation batch, {mini} per "
                         f"optimizer step, {micro} per device x {world_size} devices")
    steps = settings.max_steps
    return dict(output_dir=str(out_dir / "checkpoints"), max_steps=steps or -1,
                num_train_epochs=settings.num_train_epochs, learning_rate=settings.learning_rate,
                per_device_train_batch_size=micro, gradient_accumulation_steps=mini // (micro * world_size),
                steps_per_generation=generation // (micro * world_size), num_generations=g,
                max_completion_length=settings.max_completion_length,
                max_tool_calling_iterations=settings.max_turns, beta=settings.beta,
                temperature=settings.temperature, logging_steps=1,
                save_steps=max(1, steps // 2) if steps else 100, save_total_limit=1, report_to=[],
                seed=settings.seed, use_cpu=not gpu, deepspeed=deepspeed_file(settings.deepspeed, gpu),
                bf16=bf16, gradient_checkpointing=gpu, dataloader_num_workers=0,
                **vllm_arguments(settings, gpu, engine, gpu_memory_utilization))


def vllm_arguments(settings: RLSettings, gpu: bool, engine: str | None, gpu_memory_utilization: float | None) -> dict:
    """TRL's vLLM rollout settings: only on a GPU with engine vllm (on CPU, TRL generates with transformers)."""
    if not (gpu and engine == "vllm"):
        return {}
    args = {"use_vllm": True, "vllm_mode": settings.vllm_mode}
    if settings.vllm_mode == "colocate" and gpu_memory_utilization:
        args["vllm_gpu_memory_utilization"] = gpu_memory_utilization
    return args


def rollouts_by_engine(gpu: bool, engine: str | None) -> bool:
    """Who generates GRPO rollouts: on CPU with engine llama_cpp, our engine (`rl_rollout.py`); otherwise TRL
    (vLLM on a GPU with engine vllm, else transformers' generate)."""
    return not gpu and engine == "llama_cpp"


def task_rows(rl_path: Path, split: str = "train", limit: int | None = None) -> list[dict]:
    import pyarrow.parquet as pq

    rows = [r for r in pq.read_table(rl_path).to_pylist() if r["split"] == split]
    rows.sort(key=lambda r: r["chain_id"])
    return rows[:limit] if limit else rows


def row_tools(row: dict, packages: dict[str, EnvPackage], max_tools: int | None, seed: int):
    """The tools a row offers (gold tools + seeded distractors) and their routes to (env, tool)."""
    envs = list(row["envs"])
    tools, routes = offered_tools({e: packages[e].spec for e in envs}, envs)
    gold = {g["name"] for g in json.loads(row["gold_calls"])}
    chosen = select_tools(tools, gold, max_tools, row_rng(seed, row["chain_id"]))
    names = {t["function"]["name"] for t in chosen}
    return chosen, {n: r for n, r in routes.items() if n in names}


def count_format_errors(completion: list[dict]) -> int:
    """Tool-call blocks the parser could not turn into a call stay in the text: each one is a format error."""
    return sum(str(m.get("content") or "").count("<tool_call>") for m in completion if m.get("role") == "assistant")


def make_reward_fn(cfg: RewardConfig):
    def envfactory_reward(completions, environments=None, outcome=None, trainer_state=None, log_metric=None, **_):
        """Scores TRL's tool-loop rollouts (`environments`) or the engine's (`outcome`, from `rl_rollout.py`)."""
        progress = trainer_state.global_step / max(1, trainer_state.max_steps) if trainer_state else 0.0
        if outcome is None:
            outcome = [env.outcome(count_format_errors(c)) for c, env in zip(completions, environments, strict=True)]
        totals, parts = [], defaultdict(list)
        for o in outcome:
            r = composite_reward(o, cfg, progress)
            totals.append(r["reward"])
            for k in REWARD_TERMS:
                parts[k].append(r[k])
        if log_metric is not None:  # each term logged separately, beside TRL's reward/KL/entropy
            for k, v in parts.items():
                log_metric(f"reward_{k}", sum(v) / len(v))
        return totals

    return envfactory_reward


def run_rl(settings: RLSettings, model_path: str, view: TrainView, rl_path: Path, packages: dict[str, EnvPackage],
           out_dir: Path, sandbox=None, log=print, generation=None) -> dict:
    """`generation` (GenerationSettings): engine vllm on a GPU makes TRL roll out with vLLM."""
    import datasets
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer
    from trl.chat_template_utils import qwen3_template

    from ..default_model import resolve_model_path

    path = resolve_model_path(model_path)
    tokenizer = AutoTokenizer.from_pretrained(path, padding_side="left")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token

    rows = task_rows(rl_path, "train")
    if settings.max_gold_calls is not None:
        rows = [r for r in rows if len(json.loads(r["gold_calls"])) <= settings.max_gold_calls]
    rows = rows[:settings.max_examples] if settings.max_examples else rows
    pool = SessionPool(packages, sandbox)
    classes, schemas, records = {}, {}, []
    for row in rows:
        tools, routes = row_tools(row, packages, view.max_tools, settings.seed)
        name = row["chain_id"]
        classes[name] = environment_class(list(row["envs"]), tools, routes)
        schemas[name] = tools
        prompt = [{"role": m["role"], "content": m["content"] or ""} for m in row["prompt"]]
        records.append({"prompt": prompt, "environment": name, "scenarios": row["scenarios"],
                        "gold_calls": row["gold_calls"], "expected_state_hash": row["expected_state_hash"]})
    dataset = datasets.Dataset.from_list(records)

    gpu = torch.cuda.is_available()
    engine = generation.engine if generation is not None else None
    if gpu and engine == "vllm" and importlib.util.find_spec("vllm") is None:
        raise RuntimeError("engine vllm: GRPO rollouts need vllm importable in the training environment "
                           "(TRL 1.16 supports vllm 0.22-0.31, which pin transformers<5.18: install a GPU "
                           "environment with those pins), or set generation.engine: transformers")
    engine_rollouts = rollouts_by_engine(gpu, engine)
    if engine_rollouts and settings.lora:
        raise ValueError("engine llama_cpp rollouts export the full policy weights each step; with lora: true use "
                         "generation.engine: transformers (TRL's own rollouts)")
    args = GRPOConfig(**rl_arguments(settings, out_dir, gpu, use_bf16(settings.bf16, gpu),
                                     int(os.environ.get("WORLD_SIZE", "1")), engine,
                                     generation.gpu_memory_utilization if generation is not None else None))
    peft_config = None
    if settings.lora:
        from peft import LoraConfig

        peft_config = LoraConfig(r=settings.lora_r, lora_alpha=2 * settings.lora_r, task_type="CAUSAL_LM",
                                 target_modules="all-linear")
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    reward_fn = make_reward_fn(settings.reward)
    snapshot = None
    if engine_rollouts:  # llama.cpp generates from the live weights; we run the tool loop (rl_rollout.py)
        snapshot = PolicySnapshot(path, out_dir, generation.workers)
        rollout = EngineRollouts(snapshot, tokenizer, classes, schemas, pool, view,
                                 settings.max_completion_length, settings.max_turns, settings.temperature,
                                 generation.concurrency, settings.seed)
        trainer = rollout_rows_trainer(GRPOTrainer)(model=model, reward_funcs=[reward_fn], args=args,
                                                    train_dataset=dataset, processing_class=tokenizer,
                                                    rollout_func=rollout)
    else:
        # Our template writes Qwen3's <tool_call> format; TRL parses completions with the matching response template.
        tokenizer.response_template = qwen3_template
        factories = {name: (lambda c=cls: c(pool, tokenizer, view)) for name, cls in classes.items()}
        trainer = GRPOTrainer(model=model, reward_funcs=[reward_fn], args=args, train_dataset=dataset,
                              processing_class=tokenizer, environment_factory=factories, peft_config=peft_config)
        # Render each row's tools from the spec's own JSON schemas (TRL would re-derive them from the signatures).
        if not hasattr(trainer, "_env_tools"):
            raise RuntimeError("this TRL version no longer exposes per-environment tool schemas; pin trl==1.16.0")
        trainer._env_tools = {name: schemas[name] for name in schemas}
    try:
        result = train_or_finish(trainer, out_dir / "checkpoints", settings.max_steps, "rl", log)
    finally:
        pool.close()
        if snapshot is not None:
            snapshot.close(remove=True)
    faults.point("rl:checkpointed")  # crash tests: a checkpoint on disk, no final model or metrics.json
    final = out_dir / "model"
    trainer.save_model(str(final))
    tokenizer.save_pretrained(str(final))
    history = [h for h in trainer.state.log_history if "reward" in h]
    metrics = {"steps": trainer.state.global_step, "train_rows": len(rows),
               "train_runtime_s": result.metrics.get("train_runtime") if result else None,
               "sandbox_workers": pool.created, "rollouts": "llama_cpp" if engine_rollouts else
               ("vllm" if args.use_vllm else "transformers"),
               "history": history}
    log(f"[rl] steps={metrics['steps']} runtime={metrics['train_runtime_s']}")
    return metrics
