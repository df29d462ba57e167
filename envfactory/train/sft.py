"""Supervised fine-tuning on `sft.parquet` with TRL's SFTTrainer, assistant-only loss.

Rows are tokenized here with the model's chat template (the Qwen3-style tool template of
`agent/templates/qwen3_tools.jinja`, whose `{% generation %}` blocks mark assistant tokens),
so the trainer receives `input_ids` + `assistant_masks` and trains only on what the agent says:
tool calls and final answers, never the user, the system prompt or tool results.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from .. import faults
from .checkpoints import train_or_finish
from .rows import TrainView, called_tools, clean_messages, row_rng, select_tools
from .settings import SFTSettings


def deepspeed_file(name: str | None, gpu: bool) -> str | None:
    """The DeepSpeed JSON a run passes to the trainer: refuse, rather than silently drop, ZeRO without a GPU."""
    if name is None:
        return None
    if not gpu:
        raise RuntimeError(f"DeepSpeed {name!r} is configured (from the model card or the config) but no GPU is "
                           "visible; run on a GPU node, or set train.sft.deepspeed / train.rl.deepspeed to null")
    from .model_card import DEEPSPEED_DIR

    bundled = DEEPSPEED_DIR / f"{name}.json"
    path = bundled if bundled.is_file() else Path(name)
    if not path.is_file():
        raise FileNotFoundError(f"DeepSpeed config {name!r}: neither a bundled config (zero2, zero3) nor a file")
    return str(path)


def cpu_has_bf16() -> bool:
    """Native bf16 matmul instructions (AVX512-BF16 or AMX): there bf16 autocast runs a 135M model's forward and
    backward ~2.5x faster than f32 (measured on a 2-core EPYC); without them it is slower than f32."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def use_bf16(setting: bool | None, gpu: bool) -> bool:
    """bf16 mixed precision: the setting when given, else where the hardware runs it natively."""
    import torch

    if setting is not None:
        return setting
    return torch.cuda.is_bf16_supported() if gpu else cpu_has_bf16()


def sft_arguments(settings: SFTSettings, out_dir: Path, gpu: bool, bf16: bool) -> dict[str, Any]:
    """SFTConfig keyword arguments: the settings as the trainer gets them (tested without a GPU by passing gpu)."""
    steps = settings.max_steps
    return dict(output_dir=str(out_dir / "checkpoints"), max_steps=steps or -1,
                num_train_epochs=settings.num_train_epochs, learning_rate=settings.learning_rate,
                lr_scheduler_type=settings.lr_scheduler_type,
                per_device_train_batch_size=settings.per_device_train_batch_size,
                gradient_accumulation_steps=settings.gradient_accumulation_steps, warmup_steps=settings.warmup_steps,
                logging_steps=min(settings.logging_steps, steps) if steps else settings.logging_steps,
                save_strategy="no" if settings.save_steps == 0 else "steps",
                save_steps=settings.save_steps or (max(1, steps // 2) if steps else 500), save_total_limit=1,
                max_length=settings.max_length, report_to=[], seed=settings.seed,
                deepspeed=deepspeed_file(settings.deepspeed, gpu), use_cpu=not gpu, dataloader_num_workers=0,
                # Activation checkpointing only on GPUs: a 135M model on CPU does not need the memory and
                # would pay a second forward pass.
                bf16=bf16, gradient_checkpointing=gpu)


def tokenize_example(tokenizer, messages: list[dict], tools: list[dict], max_length: int,
                     loss_on: str = "assistant") -> dict[str, Any] | None:
    out = tokenizer.apply_chat_template(messages, tools=tools or None, return_dict=True,
                                        return_assistant_tokens_mask=True, tokenize=True)
    ids, mask = list(out["input_ids"]), list(out["assistant_masks"])
    if loss_on == "last_assistant" and any(mask):
        mask = last_span(mask)
    if len(ids) > max_length or not any(mask):
        return None  # too long to train on whole: dropping beats truncating away the answer
    return {"input_ids": ids, "assistant_masks": mask}


def last_span(mask: list[int]) -> list[int]:
    """Only the last run of 1s: each assistant message is one contiguous `{% generation %}` block."""
    end = len(mask) - mask[::-1].index(1)
    start = end
    while start > 0 and mask[start - 1]:
        start -= 1
    return [1 if start <= i < end else 0 for i in range(len(mask))]


def build_dataset(sft_path: Path, tokenizer, settings: SFTSettings, view: TrainView, split: str = "train"):
    import datasets
    import pyarrow.parquet as pq

    rows = [r for r in pq.read_table(sft_path).to_pylist() if r["split"] == split]
    random.Random(settings.seed).shuffle(rows)
    examples, dropped = [], 0
    for r in rows:
        messages = clean_messages(r["messages"], tokenizer, view)
        tools = select_tools(json.loads(r["tools"]), called_tools(messages), view.max_tools,
                             row_rng(settings.seed, r["chain_id"]))
        ex = tokenize_example(tokenizer, messages, tools, settings.max_length, settings.loss_on)
        if ex is None:
            dropped += 1
            continue
        examples.append(ex)
        if settings.max_examples and len(examples) >= settings.max_examples:
            break
    if not examples:
        raise ValueError(f"no {split} example of {sft_path} fits max_length={settings.max_length}")
    return datasets.Dataset.from_list(examples), dropped


def run_sft(settings: SFTSettings, model: str, view: TrainView, sft_path: Path, out_dir: Path, log=print) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from ..default_model import resolve_model_path

    path = resolve_model_path(model)
    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    dataset, dropped = build_dataset(sft_path, tokenizer, settings, view)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    peft_config = None
    if settings.lora:
        from peft import LoraConfig

        peft_config = LoraConfig(r=settings.lora_r, lora_alpha=2 * settings.lora_r, task_type="CAUSAL_LM",
                                 target_modules="all-linear")
    gpu = torch.cuda.is_available()
    args = SFTConfig(**sft_arguments(settings, out_dir, gpu, use_bf16(settings.bf16, gpu)))
    # Pre-tokenized rows with `assistant_masks`: TRL turns the mask into labels (-100 elsewhere).
    trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                         peft_config=peft_config)
    result = train_or_finish(trainer, out_dir / "checkpoints", settings.max_steps, "sft", log)
    faults.point("sft:checkpointed")  # crash tests: a checkpoint on disk, no final model or metrics.json
    final = out_dir / "model"
    trainer.save_model(str(final))
    tokenizer.save_pretrained(str(final))
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    metrics = {"train_examples": len(dataset), "dropped_too_long": dropped, "steps": trainer.state.global_step,
               "first_loss": losses[0] if losses else None, "last_loss": losses[-1] if losses else None,
               "train_runtime_s": result.metrics.get("train_runtime") if result else None,
               "train_tokens": int(sum(len(x) for x in dataset["input_ids"])),
               "history": [h for h in trainer.state.log_history if "loss" in h]}
    log(f"[sft] { {k: v for k, v in metrics.items() if k != 'history'} }")
    return metrics
