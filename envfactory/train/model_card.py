"""Model cards (`envfactory/train/cards/<name>.yaml`): where a model comes from and how to train it at its scale."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

CARDS_DIR = Path(__file__).resolve().parent / "cards"  # package data: a wheel install has them too
DEEPSPEED_DIR = Path(__file__).resolve().parent / "deepspeed"


class ModelCard(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    source: Literal["hub", "local-gguf"] = Field(
        description="hub: loaded by id; local-gguf: converted from a PyPI wheel")
    hub_id: str | None = None
    chat_template: str = Field("qwen3_tools", description="template in envfactory/agent/templates/")
    params_b: float
    gpus: int = Field(0, ge=0, description="GPUs per training job (0 = CPU)")
    deepspeed_stage: Literal[0, 2, 3] = 0
    per_device_train_batch_size: int = 1
    gradient_accumulation_steps: int = 1
    max_length: int = 2048
    sft_learning_rate: float = 1e-5
    rl_learning_rate: float = 1e-6
    lora: bool = False
    engine: Literal["transformers", "llama_cpp", "vllm"] = Field(
        "transformers", description="generation engine for evaluation and the local provider (envfactory/generation)")
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1, description="vLLM's share of GPU memory")
    experiment: list[str] = Field(
        default_factory=lambda: ["config/config.yaml"],
        description="config files (relative to the workflow, merged in order over config/config.yaml) of the "
                    "experiment that `snakemake results/<name>.json` runs when the invocation's config names "
                    "another model: the paper's protocol at this model's scale")
    notes: str = ""

    @model_validator(mode="after")
    def _consistent(self):
        if self.source == "hub" and not self.hub_id:
            raise ValueError("a hub model needs hub_id")
        if self.deepspeed_stage and self.gpus == 0:
            raise ValueError("DeepSpeed ZeRO needs gpus > 0")
        if not (Path(__file__).resolve().parents[1] / "agent" / "templates" / f"{self.chat_template}.jinja").is_file():
            raise ValueError(f"unknown chat template {self.chat_template!r}")
        return self

    def deepspeed_config(self) -> Path | None:
        return DEEPSPEED_DIR / f"zero{self.deepspeed_stage}.json" if self.deepspeed_stage else None


@lru_cache(maxsize=None)
def load_card(name: str) -> ModelCard:
    path = CARDS_DIR / f"{name}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"no model card {name!r}; have {card_names()}")
    return ModelCard.model_validate(yaml.safe_load(path.read_text()))


def card_names() -> list[str]:
    return sorted(p.stem for p in CARDS_DIR.glob("*.yaml"))


def load_deepspeed(stage: int) -> dict:
    return json.loads((DEEPSPEED_DIR / f"zero{stage}.json").read_text())
