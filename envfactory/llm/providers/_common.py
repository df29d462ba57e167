from __future__ import annotations

import json
import os

from ..types import ProviderConfig


class LLMConfigError(RuntimeError):
    """A provider cannot run as configured (missing key, missing package...)."""


class LLMCallError(RuntimeError):
    """A call failed for good: retries exhausted (timeouts, 5xx, a dropped connection), a refused request, or
    an answer that is not a chat completion (truncated JSON). Nothing is cached for it."""


def api_key(cfg: ProviderConfig, default_env: str, required: bool = True) -> str | None:
    env = cfg.api_key_env or default_env
    key = os.environ.get(env)
    if not key and required:
        raise LLMConfigError(f"provider {cfg.name!r} needs an API key in the environment variable {env} "
                             f"(set it, or set api_key_env to the variable that holds it)")
    return key


def cost(cfg: ProviderConfig, prompt_tokens: int, completion_tokens: int) -> float:
    if not cfg.price_per_mtok:
        return 0.0
    inp, out = cfg.price_per_mtok
    return round((prompt_tokens * inp + completion_tokens * out) / 1e6, 8)


def json_instruction(schema: dict) -> str:
    return ("Reply with a single JSON object and nothing else. It must match this JSON schema:\n"
            + json.dumps(schema, separators=(",", ":")))


def parse_json_arguments(text: str):
    try:
        value = json.loads(text or "{}")
        return value if isinstance(value, dict) else text
    except json.JSONDecodeError:
        return text
