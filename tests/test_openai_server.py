"""The OpenAI-compatible endpoint in front of a provider: the official openai SDK talks to it."""

import json

import openai

from envfactory.agent.openai_server import serve
from envfactory.llm import LLMClient
from envfactory.llm.providers.scripted import ScriptedProvider


def test_openai_sdk_round_trip_with_tools():
    seen = []

    def answer(req):
        seen.append(req)
        if req.messages[-1].role == "tool":
            return {"content": "Booked: " + req.messages[-1].content}
        return {"tool_calls": [{"id": "c1", "name": "book", "arguments": {"room": 12}}]}

    provider = ScriptedProvider.from_callable(answer, model="scripted-policy")
    client = LLMClient(provider.cfg, provider=provider, cache_mode="off")
    tools = [{"type": "function", "function": {"name": "book", "parameters": {"type": "object"}}}]
    with serve(client, "my-model") as url:
        api = openai.OpenAI(base_url=url, api_key="none", max_retries=0)
        assert [m.id for m in api.models.list().data] == ["my-model"]
        r = api.chat.completions.create(model="my-model", messages=[{"role": "user", "content": "book 12"}],
                                        tools=tools)
        call = r.choices[0].message.tool_calls[0]
        assert r.choices[0].finish_reason == "tool_calls"
        assert call.function.name == "book" and json.loads(call.function.arguments) == {"room": 12}
        r2 = api.chat.completions.create(model="my-model", tools=tools, messages=[
            {"role": "user", "content": "book 12"},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": call.id, "type": "function", "function": {"name": "book", "arguments": '{"room": 12}'}}]},
            {"role": "tool", "tool_call_id": call.id, "content": '{"ok": true}'}])
        assert r2.choices[0].message.content == 'Booked: {"ok": true}'
    assert seen[0].tools == tools
    assert seen[1].messages[1].tool_calls[0].arguments == {"room": 12}
    assert seen[1].messages[2].tool_call_id == call.id
