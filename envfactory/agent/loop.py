"""The one agent loop, shared by teacher rollouts, RL and evaluation.

A policy maps the conversation so far (and the offered tools) to the next
assistant message. Tool calls run in sandboxed environments; a malformed call
(arguments that did not parse) is answered with a `format_error` and counted,
never raised. With a user simulator the loop continues when the assistant
speaks without calling tools, until the simulator ends the conversation.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Protocol

from pydantic import BaseModel, Field

from ..env.sandbox import SandboxedEnv
from ..llm import ChatRequest, LLMClient, Message, ToolCall

STOP = "###STOP###"


class Policy(Protocol):
    def __call__(self, messages: list[Message], tools: list[dict]) -> Message: ...


class ExecutedCall(BaseModel):
    env: str
    tool: str
    arguments: dict[str, Any]
    result: dict[str, Any]


class Episode(BaseModel):
    messages: list[Message]
    calls: list[ExecutedCall] = Field(default_factory=list)
    format_errors: int = 0
    turns: int = 0
    stopped_by: str = ""


def llm_policy(client: LLMClient, temperature: float = 0.0, max_tokens: int = 1024, seed: int | None = None) -> Policy:
    """`seed` makes a sampled episode reproducible (one seed per trial, so trials differ from each other)."""
    def act(messages: list[Message], tools: list[dict]) -> Message:
        req = ChatRequest(model=client.cfg.model, messages=messages, tools=tools, temperature=temperature,
                          max_tokens=max_tokens, seed=seed, metadata={"step": "agent"})
        return client.chat(req).as_message()

    return act


def tool_message(call_id: str, result: dict, max_chars: int | None = None,
                 shorten: Callable[[str], str] | None = None) -> Message:
    text = json.dumps(result, ensure_ascii=False)
    if shorten is not None:  # e.g. a token budget (the one training used)
        text = shorten(text)
    if max_chars is not None and len(text) > max_chars:  # keep the context within a small model's budget
        text = text[:max_chars] + f"... [truncated {len(text) - max_chars} chars]"
    return Message(role="tool", tool_call_id=call_id, content=text)


def run_episode(policy: Policy, sessions: dict[str, SandboxedEnv], routes: dict[str, tuple[str, str]],
                tools: list[dict], messages: list[Message], max_turns: int,
                user_reply: Callable[[list[Message]], str] | None = None,
                max_tool_chars: int | None = None, shorten: Callable[[str], str] | None = None) -> Episode:
    """`routes` maps an offered tool name to (env, tool) — names may be prefixed when environments collide."""
    ep = Episode(messages=list(messages))
    for _ in range(max_turns):
        ep.turns += 1
        reply = policy(ep.messages, tools)
        calls = [c if c.id else ToolCall(id=f"call_{ep.turns}_{i}", name=c.name, arguments=c.arguments)
                 for i, c in enumerate(reply.tool_calls)]
        ep.messages.append(Message(role="assistant", content=reply.content, tool_calls=calls))
        if not calls:
            if user_reply is None:
                ep.stopped_by = "assistant"
                return ep
            answer = user_reply(ep.messages)
            if STOP in answer:
                ep.stopped_by = "user"
                return ep
            ep.messages.append(Message(role="user", content=answer))
            continue
        for call in calls:
            if not isinstance(call.arguments, dict):
                ep.format_errors += 1
                result = {"error": {"kind": "format_error", "message": "arguments are not a JSON object"}}
            elif call.name not in routes:
                result = {"error": {"kind": "unknown_tool", "message": f"unknown tool {call.name!r}"}}
            else:
                env, tool = routes[call.name]
                result = sessions[env].call(tool, call.arguments)
                ep.calls.append(ExecutedCall(env=env, tool=tool, arguments=call.arguments, result=result))
            ep.messages.append(tool_message(call.id, result, max_tool_chars, shorten))
    ep.stopped_by = "max_turns"
    return ep
