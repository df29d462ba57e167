"""Sandbox limits: a light settings module (the experiment config imports it without loading the sandbox)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

LAYERS = ("netns", "landlock", "landlock_read", "rlimits", "seccomp", "audit_hook")  # what `lockdown.apply` reports


class SandboxLimits(BaseModel):
    model_config = ConfigDict(extra="forbid")
    memory_mb: int = Field(1024, ge=128, description="address-space limit of a worker")
    call_cpu_seconds: float = Field(10.0, gt=0, description="CPU budget of one call (or reset): over it the call is "
                                                            "`resource_limit` and the worker is restarted; whole "
                                                            "seconds, rounded up")
    cpu_seconds: int = Field(1000, ge=1, description="lifetime CPU backstop of a worker (kernel hard limit), far above "
                                                     "call_cpu_seconds; the driver recycles a worker at a reset once "
                                                     "it has used half of it")
    call_timeout_s: float = Field(5.0, gt=0, description="wall-clock limit of one tool call")
    start_timeout_s: float = Field(60.0, gt=0)
    require_layers: list[str] = Field(default_factory=list,
                                      description="refuse to run unless these lockdown layers are active "
                                                  "(netns, landlock, landlock_read, seccomp)")

    @field_validator("require_layers")
    @classmethod
    def _known_layers(cls, v: list[str]) -> list[str]:
        unknown = sorted(set(v) - set(LAYERS))
        if unknown:
            raise ValueError(f"unknown sandbox layers {unknown}; known: {list(LAYERS)}")
        return v

    @model_validator(mode="after")
    def _backstop_above_call_budget(self) -> "SandboxLimits":
        if self.cpu_seconds < self.call_cpu_seconds:
            raise ValueError(f"cpu_seconds (lifetime backstop, {self.cpu_seconds}) must be at least call_cpu_seconds "
                             f"({self.call_cpu_seconds:g}); keep it far above (e.g. 100x)")
        return self
