"""MCP-Atlas replay-only tools: each is offered with its published input schema (a saved `POST /list-tools` reply,
or a schema in the row's ENABLED_TOOLS), else one inferred from every recorded call, else without parameters
only when no recorded call of it has arguments; how many got each source is in the result. Offline, no judge
call (the idle policy answers nothing)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from envfactory.llm import ProviderConfig
from evals.base import EvalContext, PolicySpec, get_benchmark
from evals.mcp_atlas import (
    SAMPLE_DIR,
    TOOL_LIST_FILE,
    ReplayBook,
    _data_checksum,
    has_parameters,
    load_tasks,
    load_tool_list,
    offer_tools,
    parse_row,
    resolve_data,
    schema_source,
)

pytestmark = pytest.mark.skipif(not (SAMPLE_DIR / "sample_tasks.csv").is_file(),
                                reason="the MCP-Atlas sample (evals/data/mcp_atlas) is not present")

SAMPLE = load_tasks(SAMPLE_DIR / "sample_tasks.csv") if (SAMPLE_DIR / "sample_tasks.csv").is_file() else []
FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "mcp_atlas_tool_list" / "tool_schemas.json"
LISTED = {t["name"]: t for t in json.loads(FIXTURE.read_text())}
JUDGE = ProviderConfig(name="unused-judge", model="unused")  # idle answers are empty: scored without a judge call


class _NoLocalServers:  # every enabled tool is replayed
    down: dict = {}

    def local_tools(self, server):
        return {}


def _params(offer, name: str) -> dict:
    return next(t for t in offer.tools if t["function"]["name"] == name)["function"]["parameters"]


# ---- the published tool list

def test_a_list_tools_reply_loads_by_tool_name():
    tools = load_tool_list(FIXTURE)
    assert set(tools) == set(LISTED)
    assert tools["airtable_get_record"] == {"description": LISTED["airtable_get_record"]["description"],
                                            "input_schema": LISTED["airtable_get_record"]["inputSchema"]}


@pytest.mark.parametrize("shape", ["tools/list", "mapping"])
def test_other_tool_list_shapes_load_the_same(tmp_path, shape):
    listed = json.loads(FIXTURE.read_text())
    data = ({"tools": listed} if shape == "tools/list" else
            {t["name"]: {"description": t["description"], "input_schema": t["inputSchema"]} for t in listed})
    (tmp_path / TOOL_LIST_FILE).write_text(json.dumps(data))
    assert load_tool_list(tmp_path / TOOL_LIST_FILE) == load_tool_list(FIXTURE)


@pytest.mark.parametrize("text, says", [
    ("[{]", "not JSON"),
    ('"wikipedia_get_article"', "not a list of tools"),
    ('[{"description": "no name", "inputSchema": {}}]', "entry 0 is not a tool with a name"),
    ('[{"name": "wikipedia_get_summary", "inputSchema": "title"}]', "'wikipedia_get_summary' has no input schema"),
    ('{"wikipedia_get_summary": {"description": "no schema"}}', "'wikipedia_get_summary' has no input schema"),
])
def test_a_malformed_tool_list_is_refused_with_the_entry(tmp_path, text, says):
    path = tmp_path / TOOL_LIST_FILE
    path.write_text(text)
    with pytest.raises(ValueError, match=says):
        load_tool_list(path)


# ---- published > inferred > none

def test_published_schema_beats_the_inferred_one_and_inferred_beats_none():
    book, task = ReplayBook(SAMPLE), SAMPLE[0]  # offers get_article (recorded), get_summary (never called)
    listed = load_tool_list(FIXTURE)
    plain, published = offer_tools(task, _NoLocalServers(), book, {}), offer_tools(task, _NoLocalServers(), book,
                                                                                       listed)
    # Without the list: get_article's schema comes from its recorded calls, get_summary has nothing to go on.
    assert plain.sources["wikipedia_get_article"] == "inferred"
    assert _params(plain, "wikipedia_get_article") == {"type": "object", "properties": {"title": {"type": "string"}},
                                                       "required": ["title"]}
    assert plain.sources["wikipedia_get_summary"] == "none"
    assert _params(plain, "wikipedia_get_summary") == {"type": "object", "properties": {}}
    # With it: both take the published schema and description, whatever the recordings say.
    for name in ("wikipedia_get_article", "wikipedia_get_summary", "airtable_get_record"):
        assert published.sources[name] == "published"
        tool = next(t for t in published.tools if t["function"]["name"] == name)["function"]
        assert tool["parameters"] == LISTED[name]["inputSchema"]
        assert tool["description"] == LISTED[name]["description"]
    # A tool the list does not name keeps its inferred schema.
    assert published.sources["osm-mcp-server_find_nearby_places"] == "inferred"
    assert _params(published, "osm-mcp-server_find_nearby_places") == _params(
        plain, "osm-mcp-server_find_nearby_places")


def test_a_schema_in_the_rows_enabled_tools_counts_as_published():
    import csv

    csv.field_size_limit(1 << 30)
    with open(SAMPLE_DIR / "sample_tasks.csv", newline="", encoding="utf-8") as f:
        row = next(csv.DictReader(f))
    names = json.loads(row["ENABLED_TOOLS"])
    schema = {"type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"]}
    row["ENABLED_TOOLS"] = json.dumps([{"name": n, "description": "From the row.", "inputSchema": schema}
                                       if n == "wikipedia_get_summary" else n for n in names])
    task = parse_row(row)
    book = ReplayBook([task])
    assert schema_source("wikipedia_get_summary", book, {}) == "published"
    assert schema_source("wikipedia_get_article", book, {}) == "inferred"
    assert schema_source("airtable_get_record", book, {}) == "none"
    offer = offer_tools(task, _NoLocalServers(), book, {})
    assert _params(offer, "wikipedia_get_summary") == schema


# ---- the vendored sample

def test_on_the_sample_no_tool_with_recorded_arguments_is_offered_without_parameters():
    book, seen = ReplayBook(SAMPLE), {}
    for task in SAMPLE:
        offer = offer_tools(task, _NoLocalServers(), book, {})
        for tool in offer.tools:
            name = tool["function"]["name"]
            seen[name] = offer.sources[name]
            recorded_args = any(book.arg_samples.get(name, []))
            assert has_parameters(tool) == recorded_args, name  # no published list: recordings decide
            assert offer.sources[name] == ("inferred" if recorded_args else "none"), name
    with_args = {n for n in seen if any(book.arg_samples.get(n, []))}
    assert len(with_args) == 19 and all(seen[n] == "inferred" for n in with_args)
    # recorded, but only ever called without arguments: nothing to offer, and nothing missing
    assert {n for n in seen if n in book.arg_samples and n not in with_args} == {
        "met-museum_list-departments", "desktop-commander_get_config", "filesystem_list_allowed_directories",
        "cli-mcp-server_show_security_rules"}


def _run(tmp_path: Path, data_dir: Path | None):
    ctx = EvalContext(policy=PolicySpec(kind="idle", name="idle"), judge=JUDGE, work_dir=tmp_path / "w",
                      data_dir=data_dir)
    return get_benchmark("mcp_atlas").run(ctx)


def _sources(result) -> dict[str, float]:
    m = result.categories[0].metrics
    return {k: m[f"replay_tools{k}"] for k in ("", "_published_schema", "_inferred_schema", "_without_parameters")}


def test_the_result_counts_each_schema_source_on_the_sample(tmp_path):
    result = _run(tmp_path, None)
    assert result.status == "scored"
    assert _sources(result) == {"": 81, "_published_schema": 0, "_inferred_schema": 13, "_without_parameters": 68}
    assert ("input schemas of the 81 replayed tools: 0 published, 13 inferred from recorded calls, 68 without "
            "parameters") in result.reason
    assert "no published tool list: save the MCP-Atlas environment's POST /list-tools reply as" in result.reason


def test_a_saved_tool_list_is_used_and_counted(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    shutil.copyfile(SAMPLE_DIR / "sample_tasks.csv", data / "sample_tasks.csv")
    tasks_file, files, memory = resolve_data(data)
    without = _data_checksum(tasks_file, files, memory)
    shutil.copyfile(FIXTURE, data / TOOL_LIST_FILE)
    result = _run(tmp_path, data)
    # get_article moves from inferred to published; get_summary, get_record and list-departments from none;
    # calculator_calculate is served by the local server, whose own schema it keeps.
    assert _sources(result) == {"": 81, "_published_schema": 4, "_inferred_schema": 12, "_without_parameters": 65}
    assert "81 replayed tools: 4 published, 12 inferred" in result.reason
    assert "no published tool list" not in result.reason
    assert result.data_checksum == _data_checksum(tasks_file, files, memory) != without  # the schemas offered


def test_a_malformed_saved_tool_list_makes_the_run_unavailable(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    shutil.copyfile(SAMPLE_DIR / "sample_tasks.csv", data / "sample_tasks.csv")
    (data / TOOL_LIST_FILE).write_text('[{"name": "wikipedia_get_summary"}]')
    result = _run(tmp_path, data)
    assert result.status == "unavailable" and "'wikipedia_get_summary' has no input schema" in result.reason
