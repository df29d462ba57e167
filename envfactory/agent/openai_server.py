"""An OpenAI-compatible chat-completions endpoint in front of any provider (usually the in-process model).

Benchmarks that run in their own virtualenv (BFCL-v3, tau2) reach the model under test through a URL, the
same way they would reach vLLM or a hosted API. This server gives the local transformers model (or a scripted
one, in tests) that URL: `POST /v1/chat/completions` with tools, `GET /v1/models`.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import uuid
from typing import Iterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ..llm import ChatRequest, Message, ToolCall
from ..llm.client import LLMClient


def _content_text(content) -> str:
    if content is None:
        return ""
    if isinstance(content, list):  # content parts: keep the text ones
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return str(content)


def request_from_openai(body: dict, default_model: str) -> ChatRequest:
    messages = []
    for m in body.get("messages", []):
        role = {"developer": "system"}.get(m.get("role"), m.get("role"))
        calls = []
        for c in m.get("tool_calls") or []:
            fn = c.get("function", {})
            args = fn.get("arguments", "{}")
            try:
                args = json.loads(args) if isinstance(args, str) else args
            except json.JSONDecodeError:
                pass  # keep the raw string: the model produced it, the transcript should show it
            calls.append(ToolCall(id=c.get("id", ""), name=fn.get("name", ""), arguments=args))
        messages.append(Message(role=role, content=_content_text(m.get("content")), tool_calls=calls,
                                tool_call_id=m.get("tool_call_id")))
    return ChatRequest(model=default_model, messages=messages, tools=body.get("tools") or [],
                       temperature=float(body.get("temperature") or 0.0),
                       max_tokens=int(body.get("max_tokens") or body.get("max_completion_tokens") or 1024),
                       seed=body.get("seed", 0))


def response_to_openai(resp, model: str) -> dict:
    calls = [{"id": c.id or f"call_{uuid.uuid4().hex[:8]}", "type": "function",
              "function": {"name": c.name,
                           "arguments": c.arguments if isinstance(c.arguments, str) else json.dumps(c.arguments)}}
             for c in resp.tool_calls]
    message = {"role": "assistant", "content": resp.content or ("" if calls else resp.content)}
    if calls:
        message["tool_calls"] = calls
    return {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": message,
                         "finish_reason": "tool_calls" if calls else (resp.finish_reason or "stop")}],
            "usage": {"prompt_tokens": resp.usage.prompt_tokens, "completion_tokens": resp.usage.completion_tokens,
                      "total_tokens": resp.usage.total}}


def apply_stop(resp, stop):
    """OpenAI's `stop`: the content ends before the first occurrence of any stop string. The provider layer has no
    stop parameter, so the server cuts what the model generated (the same text a server that stopped would send;
    lm-eval's generative tasks rely on it, e.g. `until: ["\\n"]`)."""
    stops = [stop] if isinstance(stop, str) else [s for s in stop or [] if isinstance(s, str)]
    hits = [i for i in (resp.content.find(s) for s in stops if s) if i >= 0] if resp.content else []
    if not hits:
        return resp
    return resp.model_copy(update={"content": resp.content[:min(hits)], "finish_reason": "stop"})


def build_app(client: LLMClient, served_name: str) -> Starlette:
    async def completions(request: Request):
        body = await request.json()
        req = request_from_openai(body, client.cfg.model)
        import anyio

        resp = await anyio.to_thread.run_sync(client.chat, req)  # generation blocks; keep the loop free
        resp = apply_stop(resp, body.get("stop"))
        return JSONResponse(response_to_openai(resp, body.get("model") or served_name))

    async def models(request: Request):
        return JSONResponse({"object": "list",
                             "data": [{"id": served_name, "object": "model", "owned_by": "envfactory"}]})

    return Starlette(routes=[Route("/v1/chat/completions", completions, methods=["POST"]),
                             Route("/v1/models", models, methods=["GET"])])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Client-side HTTP timeout for this server: the wrapped LLMClient already applies its provider's timeouts, and an
# in-process model on a busy CPU may need minutes for one long-prompt generation (BFCL multi-turn), which a
# network-sized timeout would turn into spurious inference errors.
SERVED_TIMEOUT_S = 3600.0


@contextlib.contextmanager
def serve(client: LLMClient, served_name: str = "policy", port: int | None = None) -> Iterator[str]:
    """Serve in a background thread; yields the base URL (`http://127.0.0.1:PORT/v1`)."""
    import uvicorn

    port = port or _free_port()
    server = uvicorn.Server(uvicorn.Config(build_app(client, served_name), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started:
        if time.time() > deadline or not thread.is_alive():
            raise RuntimeError("policy server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
