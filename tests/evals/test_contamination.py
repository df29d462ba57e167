"""Contamination audit: planted tool/signature/value overlaps are found, numeric and date values are not,
benchmarks without a built venv are reported unchecked, and the vendored benchmark data audits cleanly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from envfactory.config import ExperimentConfig
from envfactory.env.manifest import admitted_packages, build_manifest
from evals import contamination, vitabench
from evals.contamination import (
    VENV_MISSING,
    BenchData,
    BenchTool,
    ContaminationReport,
    build_report,
    is_numeric_like,
    normalize_name,
    tau2_tools,
    write_report,
)
from evals.registry import BUILTIN, contamination_loaders

ENV = "hotel_reservations"


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("contam") / "envs" / "manifest.json"
    cfg = ExperimentConfig.model_validate({"experiment": "x", "tracking": {"enabled": False},
                                          "envs": {"catalog": [ENV]}})
    build_manifest(cfg, path, log=lambda _: None)
    return path


@pytest.fixture
def no_venvs(tmp_path, monkeypatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("ENVFACTORY_CACHE", str(cache))
    return cache


def _hotel(manifest: Path):
    return admitted_packages(manifest)[ENV]


def _a_scenario_value(manifest: Path) -> str:
    """A distinctive string value of the env's first scenario (a hotel or guest name)."""
    pkg = _hotel(manifest)
    values = [s for s in contamination.iter_strings(pkg.scenario(pkg.scenario_ids()[0]))
              if len(s) >= 8 and " " in s and not is_numeric_like(s.casefold())]
    return min(values)


def _planted(manifest: Path) -> tuple[BenchData, dict]:
    tool = next(t for t in _hotel(manifest).spec.tools if len(t.input_schema.get("properties", {})) >= 2)
    params = list(tool.input_schema["properties"])
    camel = [normalize_name(p).split("_")[0] + "".join(w.title() for w in normalize_name(p).split("_")[1:])
             for p in params]
    value = _a_scenario_value(manifest)
    pkg = _hotel(manifest)
    date = next(s for s in contamination.iter_strings(pkg.scenario(pkg.scenario_ids()[0]))
                if isinstance(s, str) and len(s) >= 8 and is_numeric_like(s.casefold()))
    bench = BenchData(
        tools=[BenchTool(tool.name.upper(), tuple(params), "planted"),                      # exact (any case)
               BenchTool(f"travel-server_{camel[0]}Tool", ("x",), "planted", f"{camel[0]}Tool"),
               BenchTool("acme-srv_" + "".join(w.title() for w in tool.name.split("_")), ("q",), "planted",
                         "".join(w.title() for w in tool.name.split("_"))),             # server prefix + camel
               BenchTool("book_something_else", tuple(reversed(camel)), "planted")],     # same signature
        docs=[("planted.json", {"tasks": [{"db": {"name": "  " + value.upper().replace(" ", "   ") + " "}},
                                          json.dumps({"nested": [value]}), date, "no match here at all"]})])
    return bench, {"tool": tool.name, "params": params, "value": value, "date": date}


def test_planted_overlaps_are_found(manifest):
    planted, want = _planted(manifest)
    stub = BenchData(tools=[BenchTool("unrelated_tool", ("alpha", "beta"), "stub")],
                     docs=[("stub.json", {"x": "nothing shared with the catalog"})])
    report = build_report(manifest, loaders={"stub": lambda: stub}, extra={"stub": planted})
    b = report.benchmarks["stub"]
    assert b.checked and b.reason == ""
    assert report.envs == [ENV] and report.train_tools == len(_hotel(manifest).spec.tools)

    exact = {(o.train_tool, o.bench_tool) for o in b.tool_name_overlaps}
    assert exact == {(want["tool"], want["tool"].upper())}
    normalized = {(o.train_tool, o.bench_tool) for o in b.normalized_name_overlaps}
    camel_name = "acme-srv_" + "".join(w.title() for w in want["tool"].split("_"))
    assert {(want["tool"], want["tool"].upper()), (want["tool"], camel_name)} <= normalized
    assert exact <= normalized

    sig = {(o.train_tool, o.bench_tool): o.params for o in b.same_signature_overlaps}
    assert sig[(want["tool"], "book_something_else")] == sorted(map(normalize_name, want["params"]))
    assert sig[(want["tool"], want["tool"].upper())] == sorted(map(normalize_name, want["params"]))
    assert not any(o.bench_tool == "unrelated_tool" for o in b.same_signature_overlaps)

    shared = {v.value: v for v in b.shared_values}
    assert want["value"] in shared, shared
    assert shared[want["value"]].train_envs == [ENV] and shared[want["value"]].bench_sources == ["planted.json"]
    assert want["date"] not in shared  # date-like strings are never evidence
    assert b.shared_values_total == len(b.shared_values)
    assert b.counts["shared_values"] == b.shared_values_total
    assert b.counts["tool_name_overlaps"] == 1 and b.counts["bench_tools"] == 5

    again = build_report(manifest, loaders={"stub": lambda: stub}, extra={"stub": _planted(manifest)[0]})
    assert again.model_dump() == report.model_dump()  # deterministic


def test_shared_values_are_capped_with_a_total(manifest, monkeypatch):
    pkg = _hotel(manifest)
    values = [s for sid in pkg.scenario_ids() for s in contamination.iter_strings(pkg.scenario(sid))
              if len(s) >= 8 and not is_numeric_like(" ".join(s.split()).casefold())]
    monkeypatch.setattr(contamination, "MAX_SHARED_VALUES", 2)
    report = build_report(manifest, loaders={}, extra={"all": BenchData(docs=[("copy", values)])})
    b = report.benchmarks["all"]
    assert len(b.shared_values) == 2 and b.shared_values_total == report.train_values > 2
    assert [len(v.value) for v in b.shared_values] == sorted((len(v.value) for v in b.shared_values), reverse=True)


def test_monkeypatched_vitabench_source_is_audited(manifest, tmp_path, monkeypatch):
    """The real VitaBench loader, reading a patched tool list and data dir."""
    tool = next(t for t in _hotel(manifest).spec.tools if len(t.input_schema.get("properties", {})) >= 2)
    value = _a_scenario_value(manifest)
    fake = vitabench._tool(tool.name, "planted", {p: {"type": "string"} for p in tool.input_schema["properties"]})
    monkeypatch.setattr(vitabench, "TOOLS", {"delivery": [fake], "instore": []})
    monkeypatch.setattr(vitabench, "DATA_DIR", tmp_path / "vb")
    (tmp_path / "vb" / "delivery").mkdir(parents=True)
    (tmp_path / "vb" / "delivery" / "tasks_en.json").write_text(json.dumps([{"environment": {"store": value}}]))
    b = build_report(manifest, loaders={"vitabench": contamination_loaders()["vitabench"]}).benchmarks["vitabench"]
    assert [(o.train_tool, o.bench_tool, o.bench_source) for o in b.tool_name_overlaps] == \
        [(tool.name, tool.name, "vitabench/delivery")]
    assert [o.bench_tool for o in b.same_signature_overlaps] == [tool.name]
    assert [(v.value, v.bench_sources) for v in b.shared_values] == [(value, ["delivery/tasks_en.json"])]


def test_benchmarks_without_a_venv_are_unchecked(manifest, no_venvs):
    report = build_report(manifest, loaders={n: contamination_loaders()[n] for n in ("bfcl", "tau2")})
    for name in ("bfcl", "tau2"):
        b = report.benchmarks[name]
        assert not b.checked and b.reason == VENV_MISSING == "venv not built"
        assert b.data_paths and all(p.startswith(str(no_venvs)) for p in b.data_paths)
        assert b.tool_name_overlaps == [] and b.shared_values_total == 0
    assert not no_venvs.exists()  # never built from here


def test_real_catalog_against_vendored_data(manifest, no_venvs, tmp_path):
    report = build_report(manifest)
    assert list(report.benchmarks) == list(BUILTIN)
    for name in ("mcp_atlas", "vitabench"):
        b = report.benchmarks[name]
        assert b.checked, b.reason
        assert b.counts["bench_tools"] > 0 and b.counts["bench_strings_scanned"] > 0
        assert len(b.shared_values) <= contamination.MAX_SHARED_VALUES <= 50
        assert b.shared_values_total >= len(b.shared_values)
        assert {o.train_env for o in b.normalized_name_overlaps + b.same_signature_overlaps} <= {ENV}
    assert report.benchmarks["mcp_atlas"].counts["bench_tools"] >= 36  # local servers alone serve 36 tools
    assert {n: b.checked for n, b in report.benchmarks.items() if n in ("bfcl", "tau2")} == \
        {"bfcl": False, "tau2": False}
    out = write_report(report, tmp_path / "out" / "contamination.json")
    assert ContaminationReport.model_validate_json(out.read_text()) == report
    assert "mcp_atlas" in report.summary() and "venv not built" in report.summary()


def test_tau2_tools_are_read_statically():
    src = '''
from tau2.environment.toolkit import ToolKitBase, ToolType, is_tool
import tau2.environment.toolkit as tk

class Tools(ToolKitBase):
    def _helper(self, user_id: str): ...

    @is_tool(ToolType.WRITE)
    def cancel_reservation(self, reservation_id: str) -> dict: ...

    @is_tool
    def get_user_details(self, user_id, *, verbose: bool = False): ...

    @tk.is_tool(ToolType.READ)
    def search_direct_flight(self, origin: str, destination: str, date: str): ...

    # @is_tool(ToolType.THINK)
    def think(self, thought: str): ...
'''
    tools = {t.name: t.params for t in tau2_tools(src, "x")}
    assert tools == {"cancel_reservation": ("reservation_id",), "get_user_details": ("user_id", "verbose"),
                     "search_direct_flight": ("origin", "destination", "date")}


@pytest.mark.parametrize("name,want", [("getHotelDetails", "get_hotel_details"), ("get-hotel-details",
                                       "get_hotel_details"), ("Hotels.get_hotel_details", "get_hotel_details"),
                                      ("HTTPRequestSend", "http_request_send"), ("search_hotels", "search_hotels")])
def test_normalize_name(name, want):
    assert normalize_name(name) == want


@pytest.mark.parametrize("value,numeric", [("2026-03-02", True), ("2025-06-21 11:20:00", True),
                                           ("2025-06-21t11:20:00z", True), ("+1 (555) 010-2000", True),
                                           ("1,234,567.00", True), ("march 3, 2026", True), ("3 mar 2026", True),
                                           ("harbor lisbon lodge", False), ("rsv-00012", False),
                                           ("america/new_york", False)])
def test_numeric_and_date_like_values(value, numeric):
    assert is_numeric_like(value) is numeric
