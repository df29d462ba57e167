from __future__ import annotations

import json

import pytest

from envfactory.env.cases import Case, CaseSet, run_case, run_cases
from envfactory.env.catalog_check import load_class
from envfactory.env.package import EnvPackage
from envfactory.env.runtime import EnvRuntime
from envfactory.env.spec import spec_from_class


@pytest.fixture
def runtime(hotel_dir):
    rt = EnvRuntime.from_package(EnvPackage(hotel_dir))
    rt.reset("spring_iberia")
    return rt


def test_spec_from_typed_methods(hotel_dir):
    spec = spec_from_class(load_class(hotel_dir / "env.py"))
    tool = spec.tool("check_availability")
    assert tool.input_schema["required"] == ["hotel_id", "room_type", "check_in", "nights"]
    assert tool.input_schema["properties"]["room_type"]["enum"] == ["single", "double", "suite"]
    assert tool.input_schema["additionalProperties"] is False
    assert tool.output_schema["properties"]["total_price"]["type"] == "number"
    assert spec.tool("search_hotels").input_schema["properties"]["min_stars"]["default"] == 1
    assert "hotels" in spec.state_schema["properties"]
    assert "$ref" not in json.dumps(spec.model_dump())  # self-contained for LLM tool formats


@pytest.mark.parametrize("args,kind", [
    ({"hotel_id": "HTL-001"}, "invalid_arguments"),                                    # missing
    ({"hotel_id": "HTL-001", "room_type": "single", "check_in": "2026-04-01", "nights": 1, "x": 1},
     "invalid_arguments"),
    ({"hotel_id": "HTL-001", "room_type": "single", "check_in": "2026-04-01", "nights": "1"}, "invalid_arguments"),
    ({"hotel_id": "HTL-001", "room_type": "loft", "check_in": "2026-04-01", "nights": 1}, "invalid_arguments"),
    ({"hotel_id": "HTL-404", "room_type": "single", "check_in": "2026-04-01", "nights": 1}, "domain_error"),
    (["HTL-001"], "invalid_arguments"),
])
def test_bad_calls_are_structured_errors(runtime, args, kind):
    result = runtime.call("check_availability", args)
    assert result["error"]["kind"] == kind
    assert result["error"]["message"]


def test_unknown_tool(runtime):
    assert runtime.call("hack", {})["error"]["kind"] == "unknown_tool"


def test_failed_write_rolls_back(runtime):
    before = runtime.state_hash()
    # create_reservation mutates nothing before refusing; force a mid-call failure instead.
    env = runtime.env
    original = env.create_reservation

    def half_then_fail(**kw):
        env.state["next_reservation_number"] += 100
        env.state["guests"]["G-0001"]["loyalty_points"] = -1
        env.state = {"wiped": True}
        raise RuntimeError("crash after partial writes")

    runtime._methods["create_reservation"] = half_then_fail
    result = runtime.call("create_reservation", {"guest_id": "G-0001", "hotel_id": "HTL-002", "room_type": "suite",
                                                 "check_in": "2026-04-10", "nights": 2})
    assert result["error"]["kind"] == "exception"
    assert runtime.state_hash() == before
    runtime._methods["create_reservation"] = original


def test_reset_and_snapshot_restore(runtime):
    pristine = runtime.state_hash()
    runtime.call("cancel_reservation", {"reservation_id": "RSV-00001"})
    changed = runtime.state()
    assert runtime.state_hash() != pristine
    runtime.reset("spring_iberia")
    assert runtime.state_hash() == pristine
    runtime.reset(changed)  # restore an explicit snapshot
    assert runtime.state()["reservations"]["RSV-00001"]["status"] == "cancelled"
    runtime.reset("summer_central_europe")
    runtime.reset("spring_iberia")
    assert runtime.state_hash() == pristine


def test_signature_mismatch_is_rejected(hotel_dir):
    spec = EnvPackage(hotel_dir).spec.model_copy(deep=True)
    spec.tools[0].input_schema["properties"]["bogus"] = {"type": "string"}
    with pytest.raises(ImportError, match="bogus"):
        EnvRuntime(spec, load_class(hotel_dir / "env.py"))


def test_case_runner_detects_wrong_expectations(runtime, hotel_dir):
    wrong = Case.model_validate({"name": "wrong", "scenario": "spring_iberia", "steps": [
        {"tool": "get_hotel", "args": {"hotel_id": "HTL-002"}, "expect_subset": {"city": "Lisbon"}},
        {"tool": "get_hotel", "args": {"hotel_id": "HTL-404"}},
        {"tool": "find_guest", "args": {"email": "ana.schmidt1@example.com"}, "expect_error": "domain_error"},
        {"tool": "get_hotel", "args": {"hotel_id": {"$ref": "9.hotel_id"}}}],
        "expect_state": [{"path": ["next_reservation_number"], "equals": 99}]})
    result = run_case(runtime, wrong)
    assert not result.passed
    assert len(result.failures) == 5, result.failures
    good = CaseSet.model_validate(EnvPackage(hotel_dir).tests())
    assert all(r.passed for r in run_cases(runtime, good))
