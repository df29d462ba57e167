"""Qwen3 / Hermes tool-call text format: render and parse robustly.

    <tool_call>
    {"name": "get_order", "arguments": {"order_id": "O-1"}}
    </tool_call>

A malformed call never raises: it becomes a `ParsedCall` with `error` set, so an
agent loop can score it as a format error instead of crashing a rollout.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel

_BLOCK = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.S)


class ParsedCall(BaseModel):
    name: str = ""
    arguments: dict[str, Any] = {}
    raw: str = ""
    error: str | None = None


def render_tool_call(name: str, arguments: dict[str, Any]) -> str:
    return "<tool_call>\n" + json.dumps({"name": name, "arguments": arguments}, ensure_ascii=False) + "\n</tool_call>"


def _loads_lenient(text: str) -> Any:
    text = text.strip()
    if text.startswith("```"):
        text = re.sub(r"^```(?:json)?\s*|\s*```$", "", text)
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        # A trailing garbage tail is common in small models: take the longest valid prefix object.
        decoder = json.JSONDecoder()
        start = text.find("{")
        if start < 0:
            raise
        obj, _ = decoder.raw_decode(text[start:])
        return obj


def parse_tool_calls(text: str) -> tuple[str, list[ParsedCall]]:
    """Split assistant text into (content outside tool calls, calls)."""
    calls: list[ParsedCall] = []
    for block in _BLOCK.findall(text):
        try:
            obj = _loads_lenient(block)
        except (json.JSONDecodeError, ValueError) as exc:
            calls.append(ParsedCall(raw=block, error=f"tool call is not valid JSON: {exc}"))
            continue
        if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
            calls.append(ParsedCall(raw=block, error='tool call must be {"name": str, "arguments": {...}}'))
            continue
        args = obj.get("arguments", obj.get("parameters", {}))
        if isinstance(args, str):
            try:
                args = json.loads(args)
            except json.JSONDecodeError:
                calls.append(ParsedCall(name=obj["name"], raw=block, error="arguments are not a JSON object"))
                continue
        if not isinstance(args, dict):
            calls.append(ParsedCall(name=obj["name"], raw=block, error="arguments must be a JSON object"))
            continue
        calls.append(ParsedCall(name=obj["name"], arguments=args, raw=block))
    content = _BLOCK.sub("", text).strip()
    return content, calls
