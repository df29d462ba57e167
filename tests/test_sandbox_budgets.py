"""Per-call CPU budgets: a long-lived worker is never blamed for the CPU its earlier calls used."""

from __future__ import annotations

import pytest

from envfactory.env.sandbox import SandboxedEnv, SandboxLimits
from tests.conftest import make_package

# `run` burns `state["spin"]` seconds of CPU (default 0.3) and reports the worker's CPU time so far.
SPIN = """
import time
start = time.process_time()
while time.process_time() - start < self.state.get("spin", 0.3):
    pass
return {"cpu": time.process_time()}
"""
OLD_LIFETIME_S = 2  # what `cpu_seconds` meant before: the worker's whole life, here scaled down


@pytest.fixture(scope="module")
def spinner(tmp_path_factory):
    return make_package(tmp_path_factory.mktemp("budget") / "spin", SPIN)


def test_many_calls_over_the_old_lifetime_budget_are_not_resource_limits(spinner):
    limits = SandboxLimits(call_cpu_seconds=1, cpu_seconds=100, call_timeout_s=30)
    with SandboxedEnv(spinner, limits) as env:
        env.reset("default")
        results = [env.call("run", {}) for _ in range(11)]  # one long episode, no reset in between
        assert all("ok" in r for r in results), results
        assert results[-1]["ok"]["cpu"] > OLD_LIFETIME_S + limits.call_cpu_seconds
        assert env.restarts == 0


def test_long_lived_worker_is_recycled_at_a_reset_before_the_backstop(spinner):
    """The lifetime backstop (here as low as the old budget) never aborts an innocent call: the driver
    replaces the worker at an episode boundary once it has used half of it."""
    limits = SandboxLimits(call_cpu_seconds=1, cpu_seconds=OLD_LIFETIME_S, call_timeout_s=30)
    with SandboxedEnv(spinner, limits) as env:
        used = 0.0
        for _ in range(8):
            env.reset("default")
            for _ in range(2):
                r = env.call("run", {})
                assert "ok" in r, r
                used += 0.3
        assert used > 2 * OLD_LIFETIME_S
        assert env.restarts == 0 and env.recycles >= 1


def test_a_call_over_its_cpu_budget_is_a_resource_limit(spinner):
    limits = SandboxLimits(call_cpu_seconds=1, cpu_seconds=100, call_timeout_s=30)
    with SandboxedEnv(spinner, limits) as env:
        env.reset({"counter": 0, "spin": 0.2})
        assert env.call("bump", {}) == {"ok": {"counter": 1}}
        assert "ok" in env.call("run", {})
        env.reset({"counter": 5, "spin": 4.0})
        assert env.call("bump", {}) == {"ok": {"counter": 6}}
        r = env.call("run", {})
        assert r["error"]["kind"] == "resource_limit" and "CPU budget" in r["error"]["message"], r
        assert env.restarts == 1
        assert env.call("bump", {}) == {"ok": {"counter": 7}}  # state restored by replay


def test_backstop_must_stay_above_the_call_budget():
    with pytest.raises(ValueError, match="cpu_seconds"):
        SandboxLimits(call_cpu_seconds=10, cpu_seconds=5)
