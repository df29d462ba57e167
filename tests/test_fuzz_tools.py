"""Fuzz every catalog tool: schema-valid and garbage arguments never crash, never corrupt state."""

from __future__ import annotations

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from envfactory.catalog import catalog_packages
from envfactory.env.errors import ErrorKind
from envfactory.env.package import EnvPackage
from envfactory.env.runtime import EnvRuntime

PACKAGES = [EnvPackage(p) for p in catalog_packages()]
KINDS = {k.value for k in ErrorKind}

json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                           lambda inner: (st.lists(inner, max_size=3)
                                          | st.dictionaries(st.text(max_size=6), inner, max_size=3)),
                           max_leaves=6)


def _check(runtime: EnvRuntime, state_validator, tool: str, args, scenario: str) -> str:
    runtime.reset(scenario)
    before = runtime.state_hash()
    result = runtime.call(tool, args)
    assert set(result) in ({"ok"}, {"error"}), result
    if "error" in result:
        assert result["error"]["kind"] in KINDS
        assert runtime.state_hash() == before, f"failed call {tool}({args}) changed the state"
        return result["error"]["kind"]
    spec = runtime.spec.tool(tool)
    if spec.output_schema:
        jsonschema.validate(result["ok"], spec.output_schema)
    state_validator.validate(runtime.state())
    return "ok"


@pytest.mark.parametrize("package", PACKAGES, ids=[p.name for p in PACKAGES])
def test_fuzz_tools(package):
    runtime = EnvRuntime.from_package(package)
    scenario = package.scenario_ids()[0]
    state_validator = jsonschema.Draft202012Validator(package.spec.state_schema)
    seen: dict[str, int] = {}
    for tool in package.spec.tools:
        @settings(max_examples=15, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(args=from_schema(tool.input_schema) | st.dictionaries(st.text(max_size=10), json_values, max_size=4)
               | json_values)
        def fuzz(tool, args):
            outcome = _check(runtime, state_validator, tool.name, args, scenario)
            seen[outcome] = seen.get(outcome, 0) + 1

        fuzz(tool=tool)
    # Tools refuse bad input with ToolFailure; an unexpected exception is a bug in the environment.
    assert seen.get("exception", 0) == 0, seen
