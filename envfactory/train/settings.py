"""Training settings models: what SFT, RL and held-out evaluation are configured with.

A light module on purpose: the experiment config imports these without loading the trainers, the sandbox or the
reward registry (`rewards.py`, imported only when a config names reward terms).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class TrainView(BaseModel):
    """What SFT, RL and held-out evaluation all show the model."""
    model_config = ConfigDict(extra="forbid")
    max_tools: int | None = Field(3, ge=1, description="offer the gold tools plus distractors up to this many "
                                                       "tools in all; at least 2 distractors (MIN_DISTRACTORS) are "
                                                       "always added when the environment has them, even beyond "
                                                       "this cap, so max_tools only caps the distractors beyond "
                                                       "that minimum; null = every tool of the environment "
                                                       "(paper scale)")
    max_tool_tokens: int | None = Field(96, ge=8, description="tool outputs (and answers echoing them) cut to this "
                                                               "many tokens, keeping the head")
    max_tool_chars: int | None = Field(None, ge=16, description="tool outputs cut to this many characters, keeping "
                                                                "head and tail (the paper: 512, a middle cut)")

    def shorten(self, text: str, tokenizer=None) -> str:
        """A tool output as the model sees it: the character budget (middle cut), then the token budget."""
        return truncate_tokens(truncate_middle(text, self.max_tool_chars), tokenizer, self.max_tool_tokens)


def truncate_tokens(text: str, tokenizer, budget: int | None) -> str:
    """Cut `text` to `budget` tokens of `tokenizer`, saying how much was cut (the agent should know it is partial)."""
    if budget is None or tokenizer is None:
        return text
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if len(ids) <= budget:
        return text
    return tokenizer.decode(ids[:budget]) + f" ...[truncated {len(ids) - budget} tokens]"


def truncate_middle(text: str, budget: int | None) -> str:
    """Keep the first and last `budget // 2` characters, saying how much was cut (the paper's tool-output cut)."""
    if budget is None or len(text) <= budget:
        return text
    half = budget // 2
    return f"{text[:half]} ...[truncated {len(text) - 2 * half} chars]... {text[len(text) - half:]}"


class RewardConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    disabled: list[str] = Field(default_factory=list, description="registered terms switched off (ablations)")
    weights: dict[str, float] = Field(default_factory=dict, description="multiplier on a term's weight (default 1)")
    partial_trace: bool = False
    tau: Literal["fixed", "linear"] = "fixed"
    tau_fixed: float = Field(0.5, ge=0, le=1)
    tau_start: float = 0.9
    tau_end: float = 0.1
    penalty_per_call: float = 0.05
    penalty_cap: float = 0.5
    masked_args: list[str] = Field(default_factory=list)
    trace_order: Literal["ordered", "any"] = Field("ordered", description="gold calls matched in order, or in any "
                                                                          "order (the paper)")
    extra_arguments: Literal["reject", "ignore"] = Field("reject", description="a predicted argument the gold call "
                                                                              "lacks fails the match, or is ignored "
                                                                              "(the paper)")
    tolerance: float = 1e-6

    @field_validator("disabled", "weights")
    @classmethod
    def _registered(cls, v):
        from .rewards import REWARD_TERMS  # the registry of terms; imported when a config names one

        unknown = sorted(set(v) - set(REWARD_TERMS))
        if unknown:
            raise ValueError(f"unknown reward terms {unknown}; registered: {sorted(REWARD_TERMS)}")
        return v

    def enabled(self) -> list[str]:
        from .rewards import REWARD_TERMS

        return [name for name in REWARD_TERMS if name not in self.disabled]


class SFTSettings(BaseModel):
    """SFT hyperparameters. Fields left unset take the model card's values (`ExperimentConfig` resolves them
    before `config.json` is written, so what a stage reads is what it runs with)."""
    model_config = ConfigDict(extra="forbid")
    max_length: int = 1536
    max_steps: int | None = Field(30, ge=1, description="optimizer steps; null = num_train_epochs over the data")
    num_train_epochs: float = Field(1.0, gt=0, description="used when max_steps is null (the paper: 1 epoch)")
    learning_rate: float = Field(1e-4, description="full fine-tuning of the tiny default; model cards set larger "
                                                   "models' rates")
    lr_scheduler_type: str = Field("linear", description="transformers scheduler name (the paper: cosine)")
    per_device_train_batch_size: int = 1
    gradient_accumulation_steps: int = 4
    warmup_steps: float = Field(2, ge=0, description="warm-up steps, or a fraction of all steps when < 1 "
                                                     "(the paper: 0.1)")
    max_examples: int | None = None
    loss_on: Literal["assistant", "last_assistant"] = Field(
        "assistant", description="train on every assistant turn, or only the last one of each record (the paper's "
                                 "LLaMA-Factory `mask_history`)")
    lora: bool = False
    lora_r: int = 16
    deepspeed: str | None = Field(None, description="DeepSpeed config for GPU runs: zero2 | zero3 (bundled) or a "
                                                    "JSON path")
    bf16: bool | None = Field(None, description="bf16 mixed precision (weights stay f32); null = where the "
                                                "hardware has it natively (GPU; CPU with AVX512-BF16/AMX)")
    seed: int = 0
    logging_steps: int = 5
    save_steps: int | None = Field(None, description="checkpoint interval for resuming (None = half-way; "
                                                     "0 = no intermediate checkpoint)")


class RLSettings(BaseModel):
    """GRPO hyperparameters. Fields left unset take the model card's values (resolved into `config.json`)."""
    model_config = ConfigDict(extra="forbid")
    max_steps: int | None = Field(4, ge=1, description="optimizer steps; null = num_train_epochs over the RL rows")
    num_train_epochs: float = Field(1.0, gt=0, description="used when max_steps is null (the paper: 10)")
    num_generations: int = Field(4, ge=2, description="rollouts per prompt (the GRPO group)")
    prompts_per_step: int = Field(2, ge=1, description="prompts rolled out per generation batch (the paper: 256)")
    mini_batch_prompts: int | None = Field(None, ge=1, description="prompts per optimizer step; a generation batch "
                                                                   "gives prompts_per_step / this many updates "
                                                                   "(the paper: 64); null = prompts_per_step")
    per_device_train_batch_size: int | None = Field(None, ge=1, description="rollouts per device per forward pass "
                                                                            "(the paper: 2); null = a whole "
                                                                            "mini-batch at once")
    max_completion_length: int = Field(160, description="tokens over all turns of one rollout (tool outputs included)")
    max_turns: int = Field(3, description="tool-calling iterations per rollout")
    learning_rate: float = 5e-6
    beta: float = Field(0.02, description="KL coefficient (0 skips the reference model)")
    temperature: float = 1.0
    max_examples: int | None = Field(None, description="train rows considered (None = all)")
    max_gold_calls: int | None = Field(None, ge=1, description="a curriculum by difficulty: only train rows whose gold "
                                                              "chain has at most this many calls (None = all)")
    reward: RewardConfig = Field(default_factory=RewardConfig)
    lora: bool = False
    lora_r: int = 16
    deepspeed: str | None = Field(None, description="DeepSpeed config for GPU runs: zero2 | zero3 (bundled) or a "
                                                    "JSON path")
    vllm_mode: Literal["colocate", "server"] = Field(
        "colocate", description="GPU rollouts with vLLM (generation.engine vllm): colocate = in the training "
                                "processes (default; works with environment_factory), server = `trl vllm-serve` "
                                "on other GPUs (TRL issue 4543: multi-turn tool rollouts mis-pair with "
                                "num_generations > 1 before TRL PR 6673)")
    bf16: bool | None = Field(None, description="bf16 mixed precision (weights stay f32); null = where the "
                                                "hardware has it natively (GPU; CPU with AVX512-BF16/AMX)")
    seed: int = 0
