"""Provider layer: cache modes, accounting, real SDK clients against local fake servers, tool-call parsing."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from envfactory.llm import CacheMiss, ChatRequest, LLMClient, Message, ProviderConfig, make_provider
from envfactory.llm.cache import cache_key
from envfactory.llm.providers._common import LLMConfigError
from envfactory.llm.providers.anthropic_provider import to_anthropic
from envfactory.llm.providers.scripted import ScriptedProvider
from envfactory.llm.toolcall import parse_tool_calls, render_tool_call

TOOLS = [{"type": "function", "function": {"name": "get_order", "description": "Get an order",
                                           "parameters": {"type": "object",
                                                          "properties": {"order_id": {"type": "string"}},
                                                          "required": ["order_id"]}}}]


def request(text="hi", **kw) -> ChatRequest:
    return ChatRequest(model="m", messages=[Message(role="user", content=text)], **kw)


def test_cache_key_ignores_metadata_but_not_content():
    a = cache_key("openai", None, request(metadata={"step": "x"}))
    assert a == cache_key("openai", None, request(metadata={"step": "y"}))
    assert a != cache_key("openai", None, request("other"))
    assert a != cache_key("anthropic", None, request())
    assert a != cache_key("openai", "http://localhost:8000/v1", request())
    assert a != cache_key("openai", None, request(temperature=0.7))


@pytest.mark.parametrize("mode,calls_to_provider", [("use", 1), ("refresh", 2), ("off", 2)])
def test_cache_modes(tmp_path, mode, calls_to_provider):
    cfg = ProviderConfig(name="scripted", model="m", price_per_mtok=(1.0, 2.0))
    provider = ScriptedProvider(cfg, lambda r: {"content": "hello",
                                                "usage": {"prompt_tokens": 10, "completion_tokens": 5},
                                                "cost_usd": 0.5})
    client = LLMClient(cfg, tmp_path, mode, provider=provider)
    first = client.chat(request())
    second = client.chat(request())
    assert first.content == second.content == "hello"
    assert len(provider.requests) == calls_to_provider
    assert client.totals.calls == 2 and client.totals.cached_calls == 2 - calls_to_provider
    assert client.totals.tokens == 15 * calls_to_provider  # cached answers cost no tokens
    assert client.totals.cost_usd == pytest.approx(0.5 * calls_to_provider)
    replay = LLMClient(cfg, tmp_path, "replay", provider=provider)
    if mode == "off":
        with pytest.raises(CacheMiss):
            replay.chat(request())
    else:
        assert replay.chat(request()).cached


class FakeAPI(BaseHTTPRequestHandler):
    """A local stand-in for the OpenAI / Anthropic HTTP APIs: fails the first `fail_first` calls."""
    replies: dict = {}
    seen: list = []
    fail_first = 0

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        FakeAPI.seen.append((self.path, body, dict(self.headers)))
        if len(FakeAPI.seen) <= FakeAPI.fail_first:
            self.send_response(429 if "chat" in self.path else 503)
            self.send_header("retry-after-ms", "10")
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"error": {"message": "slow down"}}')
            return
        payload = json.dumps(FakeAPI.replies[self.path]).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_api():
    FakeAPI.seen, FakeAPI.fail_first = [], 0
    server = HTTPServer(("127.0.0.1", 0), FakeAPI)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_openai_compatible_endpoint_with_retry(fake_api, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)  # a local server needs no key
    FakeAPI.fail_first = 2
    FakeAPI.replies = {"/v1/chat/completions": {
        "id": "x", "object": "chat.completion", "created": 0, "model": "qwen3-8b",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
            "role": "assistant", "content": None,
            "tool_calls": [{"id": "c1", "type": "function",
                            "function": {"name": "get_order", "arguments": "{\"order_id\": \"O-7\"}"}}]}}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}}}
    cfg = ProviderConfig(name="openai", model="qwen3-8b", base_url=f"{fake_api}/v1", max_retries=3,
                         price_per_mtok=(0.5, 1.5))
    resp = make_provider(cfg).complete(request(tools=TOOLS, json_schema=None))
    assert len(FakeAPI.seen) == 3  # two 429s retried by the SDK, then success
    assert resp.tool_calls[0].name == "get_order" and resp.tool_calls[0].arguments == {"order_id": "O-7"}
    assert resp.usage.prompt_tokens == 100 and resp.cost_usd == pytest.approx((100 * 0.5 + 20 * 1.5) / 1e6)
    body = FakeAPI.seen[-1][1]
    assert body["tools"] == TOOLS and body["messages"] == [{"role": "user", "content": "hi"}]


def test_anthropic_provider_with_retry(fake_api, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test-not-logged")
    FakeAPI.fail_first = 1
    FakeAPI.replies = {"/v1/messages": {
        "id": "msg", "type": "message", "role": "assistant", "model": "claude-x", "stop_reason": "tool_use",
        "content": [{"type": "text", "text": "Looking it up."},
                    {"type": "tool_use", "id": "tu1", "name": "get_order", "input": {"order_id": "O-7"}}],
        "usage": {"input_tokens": 50, "output_tokens": 10}}}
    cfg = ProviderConfig(name="anthropic", model="claude-x", base_url=fake_api, max_retries=2)
    req = ChatRequest(model="claude-x", tools=TOOLS, messages=[Message(role="system", content="Be brief."),
                                                               Message(role="user", content="order O-7?")])
    resp = make_provider(cfg).complete(req)
    assert len(FakeAPI.seen) == 2
    assert resp.content == "Looking it up." and resp.tool_calls[0].arguments == {"order_id": "O-7"}
    sent = FakeAPI.seen[-1][1]
    assert sent["system"] == "Be brief." and sent["tools"][0]["input_schema"]["required"] == ["order_id"]


def test_missing_key_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(LLMConfigError, match="OPENAI_API_KEY"):
        make_provider(ProviderConfig(name="openai", model="gpt-x"))
    with pytest.raises(LLMConfigError, match="MY_KEY"):
        make_provider(ProviderConfig(name="anthropic", model="c", api_key_env="MY_KEY"))
    with pytest.raises(ValueError, match="unknown LLM provider"):
        make_provider(ProviderConfig(name="nope"))


def test_anthropic_message_conversion_groups_tool_results():
    from envfactory.llm import ToolCall

    msgs = [Message(role="system", content="sys"), Message(role="user", content="u"),
            Message(role="assistant", content="", tool_calls=[ToolCall(id="a", name="f", arguments={}),
                                                              ToolCall(id="b", name="g", arguments={"x": 1})]),
            Message(role="tool", tool_call_id="a", content="1"), Message(role="tool", tool_call_id="b", content="2")]
    system, out = to_anthropic(msgs)
    assert system == "sys"
    assert [m["role"] for m in out] == ["user", "assistant", "user"]
    assert [b["tool_use_id"] for b in out[2]["content"]] == ["a", "b"]


@pytest.mark.parametrize("text,names,errors", [
    (render_tool_call("get_order", {"order_id": "O-1"}), ["get_order"], [None]),
    ("Sure.\n<tool_call>\n{\"name\": \"a\", \"arguments\": {}}\n</tool_call>\n<tool_call>{\"name\": \"b\", "
     "\"arguments\": \"{\\\"k\\\": 1}\"}</tool_call>", ["a", "b"], [None, None]),
    ("<tool_call>{\"name\": \"a\", \"arguments\": {\"x\": 1}} trailing junk</tool_call>", ["a"], [None]),
    ("<tool_call>{not json}</tool_call>", [""], ["not valid JSON"]),
    ("<tool_call>{\"arguments\": {}}</tool_call>", [""], ["must be"]),
    ("<tool_call>{\"name\": \"a\", \"arguments\": [1]}</tool_call>", ["a"], ["JSON object"]),
    ("<tool_call>{\"name\": \"a\", \"arguments\": {\"x\": 1}}", ["a"], [None]),  # unclosed at the end
    ("no calls here", [], []),
])
def test_tool_call_parser_never_raises(text, names, errors):
    content, calls = parse_tool_calls(text)
    assert [c.name for c in calls] == names
    for call, err in zip(calls, errors):
        assert (call.error is None) if err is None else (err in call.error)
    assert "<tool_call>" not in content
