"""Model cards and DeepSpeed configs are valid and consistent with each other."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from transformers import TrainingArguments

from envfactory.train.model_card import CARDS_DIR, ModelCard, load_card, load_deepspeed

NAMES = ["smollm2-135m", "qwen3-1.7b", "qwen3-4b", "qwen3-8b"]


@pytest.mark.parametrize("name", NAMES)
def test_cards_load(name):
    card = load_card(name)
    assert card.name == name
    if card.gpus:
        assert card.deepspeed_config().is_file() and card.source == "hub" and card.hub_id.startswith("Qwen/")
    else:
        assert card.deepspeed_config() is None


def test_every_card_file_is_known():
    assert sorted(p.stem for p in CARDS_DIR.glob("*.yaml")) == sorted(NAMES)


def test_inconsistent_cards_are_refused():
    with pytest.raises(ValidationError, match="hub_id"):
        ModelCard(name="x", source="hub", params_b=1)
    with pytest.raises(ValidationError, match="gpus"):
        ModelCard(name="x", source="local-gguf", params_b=1, deepspeed_stage=3)
    with pytest.raises(ValidationError, match="template"):
        ModelCard(name="x", source="local-gguf", params_b=1, chat_template="nope")


@pytest.mark.parametrize("stage", [2, 3])
def test_deepspeed_configs_are_accepted_by_transformers(stage, tmp_path):
    ds = load_deepspeed(stage)
    assert ds["zero_optimization"]["stage"] == stage
    # transformers parses the JSON into its HF DeepSpeed config (the path accelerate takes on a cluster);
    # "auto" values must be resolvable from the training arguments.
    args = TrainingArguments(output_dir=str(tmp_path), deepspeed=ds, per_device_train_batch_size=2,
                             gradient_accumulation_steps=4)
    assert args.hf_deepspeed_config.config["zero_optimization"]["stage"] == stage
