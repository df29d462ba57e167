"""`LLMClient`: a provider behind the response cache, a concurrency limit and token/cost accounting."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from pathlib import Path

from pydantic import BaseModel, Field

from .cache import CacheMiss, CacheMode, ResponseCache, cache_key
from .registry import Provider, ProviderConfig, cache_identity, make_provider
from .types import ChatRequest, ChatResponse


class UsageTotals(BaseModel):
    calls: int = 0
    cached_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    seconds: float = 0.0
    by_step: dict[str, dict[str, float]] = Field(default_factory=dict)
    by_env: dict[str, dict[str, float]] = Field(default_factory=dict)

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class LLMClient:
    def __init__(self, cfg: ProviderConfig, cache_dir: str | Path | None = None, cache_mode: CacheMode = "use",
                 provider: Provider | None = None):
        self.cfg = cfg
        self.cache_mode = cache_mode
        self.cache = ResponseCache(cache_dir) if cache_dir and cache_mode != "off" else None
        if cache_mode == "replay" and self.cache is None:
            raise ValueError("cache_mode 'replay' needs a cache_dir")
        self._provider = provider  # built lazily: a fully cached replay needs no key and no model
        self._sem = threading.BoundedSemaphore(max(1, cfg.concurrency))
        self._lock = threading.Lock()
        self.totals = UsageTotals()
        self.keys_used: set[str] = set()

    @property
    def provider(self) -> Provider:
        if self._provider is None:
            self._provider = make_provider(self.cfg)
        return self._provider

    def chat(self, request: ChatRequest) -> ChatResponse:
        if not request.model:
            request = request.model_copy(update={"model": self.cfg.model})
        key = cache_key(self.cfg.name, cache_identity(self.cfg, request), request) if self.cache else None
        if key is not None:
            with self._lock:
                self.keys_used.add(key)
        if self.cache is not None and self.cache_mode in ("use", "replay"):
            hit = self.cache.get(key)
            if hit is not None:
                self._account(request, hit, cached=True, seconds=0.0)
                return hit.model_copy(update={"cached": True})
            if self.cache_mode == "replay":
                raise CacheMiss(f"replay mode: no cached response for step {request.metadata.get('step')!r} "
                                f"(key {key[:12]}); run with cache_mode 'use' to compute it")
        t0 = time.perf_counter()
        with self._sem:
            response = self.provider.complete(request)
        seconds = time.perf_counter() - t0
        if self.cache is not None:
            self.cache.put(key, response)
        self._account(request, response, cached=False, seconds=seconds)
        return response

    def _account(self, request: ChatRequest, response: ChatResponse, cached: bool, seconds: float) -> None:
        step = str(request.metadata.get("step", "other"))
        with self._lock:
            t = self.totals
            t.calls += 1
            if cached:  # a cached answer costs nothing now
                t.cached_calls += 1
            else:
                t.prompt_tokens += response.usage.prompt_tokens
                t.completion_tokens += response.usage.completion_tokens
                t.cost_usd += response.cost_usd
                t.seconds += seconds
            groups = [t.by_step.setdefault(step, defaultdict(float))]
            if request.metadata.get("env"):
                groups.append(t.by_env.setdefault(str(request.metadata["env"]), defaultdict(float)))
            for g in groups:
                g["calls"] += 1
                if not cached:
                    g["tokens"] += response.usage.prompt_tokens + response.usage.completion_tokens
                    g["cost_usd"] += response.cost_usd
