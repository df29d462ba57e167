"""Provider-neutral chat types: what every provider takes and returns (OpenAI-style messages)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class ToolCall(BaseModel):
    id: str = ""
    name: str
    arguments: dict[str, Any] | str = Field(default_factory=dict,
                                            description="parsed JSON object, or the raw string when it did not parse")


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["system", "user", "assistant", "tool"]
    content: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    tool_call_id: str | None = None
    name: str | None = None


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class ChatRequest(BaseModel):
    """Everything that determines a completion; its canonical JSON is the cache key (with the provider)."""
    model_config = ConfigDict(extra="forbid")
    model: str
    messages: list[Message]
    tools: list[dict[str, Any]] = Field(default_factory=list, description="OpenAI function-tool dicts")
    temperature: float = 0.0
    max_tokens: int = 4096
    seed: int | None = 0
    json_schema: dict[str, Any] | None = Field(None, description="ask for a JSON object matching this schema")
    metadata: dict[str, Any] = Field(default_factory=dict, exclude=True,
                                     description="labels for logs and scripted providers (step, env, round); "
                                                 "not part of the cache key")


class ChatResponse(BaseModel):
    content: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    cost_usd: float = 0.0
    model: str = ""
    finish_reason: str = ""
    cached: bool = False

    def as_message(self) -> Message:
        return Message(role="assistant", content=self.content, tool_calls=self.tool_calls)


class ProviderConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(description="registered provider: openai | anthropic | local | scripted")
    model: str = Field("", description="model id for the provider")
    base_url: str | None = Field(None, description="OpenAI-compatible endpoint (vLLM, SGLang, a local server)")
    engine: Literal["vllm", "sglang"] | None = Field(
        None, description="the server behind base_url when it is vLLM or SGLang (stated, never guessed from the URL): "
                          "lets a benchmark use its own handler for the model, e.g. BFCL's Qwen FC handler; "
                          "null = any OpenAI-compatible API")
    api_key_env: str | None = Field(None, description="environment variable holding the API key")
    timeout_s: float = 120.0
    max_retries: int = 5
    concurrency: int = 4
    responses: str | None = Field(None, description="scripted provider: JSON file of responses")
    price_per_mtok: tuple[float, float] | None = Field(
        None, description="(input, output) USD per million tokens, for cost accounting")
    options: dict = Field(default_factory=dict, description="provider-specific extras")
