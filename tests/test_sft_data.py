"""SFT tokenization: the Qwen3-style template masks exactly the assistant's tokens (tool calls + answers)."""

from __future__ import annotations

import json
import random

import pytest

from envfactory.train.rows import TrainView, called_tools, clean_messages, select_tools, truncate_tokens
from envfactory.train.sft import tokenize_example

pytestmark = pytest.mark.slow  # needs the converted default model's tokenizer

MESSAGES = [
    {"role": "system", "content": "You operate the hotel system."},
    {"role": "user", "content": "Book HTL-002 for ana@example.com"},
    {"role": "assistant", "content": "", "tool_calls": [{"id": "c0", "type": "function", "function": {
        "name": "find_guest", "arguments": json.dumps({"email": "ana@example.com"})}}]},
    {"role": "tool", "tool_call_id": "c0", "content": json.dumps({"ok": {"guest_id": "G-0001"}})},
    {"role": "assistant", "content": "Done: guest G-0001 found."},
]
TOOLS = [{"type": "function", "function": {"name": n, "description": n, "parameters": {"type": "object",
                                                                                      "properties": {}}}}
         for n in ("find_guest", "get_hotel", "search_hotels", "cancel_reservation", "get_reservation")]


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from envfactory.default_model import resolve_model_path

    return AutoTokenizer.from_pretrained(resolve_model_path("smollm2-135m"))


def test_only_assistant_tokens_are_trained(tokenizer):
    ex = tokenize_example(tokenizer, clean_messages(MESSAGES), TOOLS[:2], max_length=4096)
    ids, mask = ex["input_ids"], ex["assistant_masks"]
    trained = tokenizer.decode([i for i, m in zip(ids, mask) if m])
    context = tokenizer.decode([i for i, m in zip(ids, mask) if not m])
    assert '<tool_call>\n{"name": "find_guest", "arguments": {"email": "ana@example.com"}}\n</tool_call>' in trained
    assert "Done: guest G-0001 found." in trained
    assert "<tool_response>" in context and "G-0001" in context and "Book HTL-002" in context
    assert "<tools>" in context and "<tool_response>" not in trained and "Book HTL-002" not in trained


def test_too_long_examples_are_dropped_not_truncated(tokenizer):
    assert tokenize_example(tokenizer, clean_messages(MESSAGES), TOOLS, max_length=32) is None


def test_tool_subsampling_keeps_the_called_tools():
    chosen = select_tools(TOOLS, called_tools(MESSAGES), 2, random.Random(0))
    names = [t["function"]["name"] for t in chosen]
    assert "find_guest" in names and len(names) == 3  # max_tools 2, but at least 2 distractors beside 1 gold tool
    assert select_tools(TOOLS, called_tools(MESSAGES), None, random.Random(0)) == TOOLS


def test_tool_outputs_are_cut_to_a_token_budget(tokenizer):
    long = json.dumps({"ok": [{"id": f"R-{i:04d}", "name": "x" * 20} for i in range(50)]})
    cut = truncate_tokens(long, tokenizer, 40)
    assert cut.startswith(long[:20]) and "[truncated" in cut
    assert len(tokenizer(cut)["input_ids"]) < 60
    msgs = clean_messages(MESSAGES[:3] + [{**MESSAGES[3], "content": long}] + MESSAGES[4:], tokenizer,
                          TrainView(max_tool_tokens=40))
    assert "[truncated" in msgs[3]["content"] and msgs[4]["content"] == "Done: guest G-0001 found."
    assert msgs[2]["tool_calls"][0]["function"]["arguments"] == {"email": "ana@example.com"}


def test_a_finished_checkpoint_is_not_trained_again(tiny_rl_data, tmp_path):
    """Killed after the last step but before metrics.json: the re-run takes the final checkpoint as it is
    (transformers' resume would train one step past max_steps)."""
    from envfactory.train.rows import TrainView
    from envfactory.train.sft import SFTSettings, run_sft

    _, rl = tiny_rl_data
    settings = SFTSettings(max_steps=1, gradient_accumulation_steps=1, max_examples=2, max_length=1024,
                           save_steps=1, logging_steps=1)
    first = run_sft(settings, "smollm2-135m", TrainView(), rl.with_name("sft.parquet"), tmp_path, log=lambda _: None)
    assert first["steps"] == 1 and (tmp_path / "checkpoints" / "checkpoint-1").is_dir()
    again = run_sft(settings, "smollm2-135m", TrainView(), rl.with_name("sft.parquet"), tmp_path, log=lambda _: None)
    assert again["steps"] == 1 and again["last_loss"] == first["last_loss"]
    assert not (tmp_path / "checkpoints" / "checkpoint-2").exists()
