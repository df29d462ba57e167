"""MCP-Atlas rows are validated: each malformed row of a corpus (tests/fixtures/mcp_atlas_malformed, one row per
way a row breaks) is reported with its task id and skipped, or fails the run under `evaluation.strict`; no row
crashes the loader or becomes a task that scores silently. Claims are parsed the benchmark's way."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from envfactory.config import ExperimentConfig
from envfactory.llm import ProviderConfig
from evals.base import EvalContext, PolicySpec, get_benchmark
from evals.mcp_atlas import REQUIRED_COLUMNS, SAMPLE_DIR, MalformedRows, RowError, load_rows, parse_claims, parse_row
from evals.run import context_for

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "mcp_atlas_malformed"
VALID = ["6888e207a34beb25cfedda3b", "689bd255c0422b257e7dfcc5"]
EXPECTED = {  # task id -> what the report says
    "no-function": "TRAJECTORY[0].tool_calls[0] has no `function`",
    "trajectory-strings": "TRAJECTORY[0] is a str, not a message with a role",
    "trajectory-broken-json": "TRAJECTORY is not valid JSON",
    "enabled-tools-broken-json": "ENABLED_TOOLS is not valid JSON",
    "empty-claims": "GTFA_CLAIMS holds no claims",
    "arguments-not-object": "TRAJECTORY[0].tool_calls[0].function.arguments is not a JSON object",
    "no-tool-calls": "TRAJECTORY has no tool calls",
    "enabled-tools-not-list": "ENABLED_TOOLS is a str, not a list of tool names",
    "empty-prompt": "empty PROMPT",
    "689bd255c0422b257e7dfcc5": "duplicate TASK id",
    "truncated-row": "truncated row: no PROMPT, TRAJECTORY, GTFA_CLAIMS",
}
FULFILLED = {"content": json.dumps({"claim_text": "", "coverage_outcome": "fulfilled", "justification": "",
                                    "confidence_level": 1.0})}


def _judge(tmp_path: Path) -> ProviderConfig:
    path = tmp_path / "judge.json"
    path.write_text(json.dumps([{"match": {"step": "judge"}, "response": FULFILLED, "repeat": True}]))
    return ProviderConfig(name="scripted", model="yes", responses=str(path))


def _ctx(tmp_path: Path, kind: str = "idle", **kw) -> EvalContext:
    return EvalContext(policy=PolicySpec(kind=kind, name=kind), judge=_judge(tmp_path), work_dir=tmp_path / "w",
                       data_dir=CORPUS, **kw)


def test_each_malformed_row_is_reported_with_its_task_id_and_reason():
    tasks, skipped = load_rows(CORPUS / "tasks.csv")
    assert [t.id for t in tasks] == VALID
    assert [s.task for s in skipped] == list(EXPECTED)
    for s in skipped:
        assert s.reason.startswith(EXPECTED[s.task]), s
    assert tasks[0].prompt.startswith("Hi!") and len(tasks[0].claims) == 2 and tasks[0].gold_calls()


def test_the_run_skips_malformed_rows_and_says_which(tmp_path):
    result = get_benchmark("mcp_atlas").run(_ctx(tmp_path, "oracle"))
    (cat,) = result.categories
    assert result.status == "scored" and cat.n == 2 and result.score == 1.0  # the valid rows still run
    assert cat.metrics["skipped_rows"] == len(EXPECTED) == 11
    assert f"skipped {len(EXPECTED)} malformed rows" in result.reason
    for task, reason in EXPECTED.items():
        assert f"{task}: {reason}" in result.reason
    episodes = [json.loads(x) for x in (tmp_path / "w/mcp_atlas/episodes.jsonl").read_text().splitlines()]
    assert [e["task"] for e in episodes] == VALID
    assert result.data_version == f"tasks.csv:{2 + len(EXPECTED)}"


def test_strict_fails_the_run_on_malformed_rows(tmp_path):
    with pytest.raises(MalformedRows) as err:
        get_benchmark("mcp_atlas").run(_ctx(tmp_path, strict=True))
    assert [s.task for s in err.value.skipped] == list(EXPECTED)
    assert all(task in str(err.value) for task in EXPECTED) and "evaluation.strict" in str(err.value)
    # the sample itself is clean: strict runs it
    clean = EvalContext(policy=PolicySpec(kind="idle", name="idle"), judge=_judge(tmp_path), work_dir=tmp_path / "c",
                        strict=True, limit=1)
    assert get_benchmark("mcp_atlas").run(clean).categories[0].metrics["skipped_rows"] == 0


def test_evaluation_strict_reaches_the_context(tmp_path):
    policy = PolicySpec(kind="oracle", name="o")
    assert context_for(ExperimentConfig(), "mcp_atlas", policy, tmp_path).strict is False
    strict = ExperimentConfig.model_validate({"evaluation": {"strict": True}})
    assert context_for(strict, "mcp_atlas", policy, tmp_path).strict is True


def test_a_file_of_only_malformed_rows_is_unavailable_not_a_crash(tmp_path):
    data = tmp_path / "bad"
    data.mkdir()
    lines = (CORPUS / "tasks.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    (data / "tasks.csv").write_text(lines[0] + lines[-1], encoding="utf-8")  # header + the truncated row
    result = get_benchmark("mcp_atlas").run(EvalContext(policy=PolicySpec(kind="idle", name="idle"),
                                                        judge=_judge(tmp_path), work_dir=tmp_path / "w", data_dir=data))
    assert result.status == "unavailable" and "truncated-row: truncated row" in result.reason


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=6),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
                         st.sampled_from(["role", "tool_calls", "function", "name", "arguments", "id", "content",
                                          "claim"]), inner, max_size=3), max_leaves=10)
_cell = st.none() | st.text(max_size=20) | _json.map(json.dumps) | _json.map(lambda v: json.dumps(v)[:-1])


@settings(max_examples=300, deadline=None)
@given(row=st.fixed_dictionaries({c: _cell for c in REQUIRED_COLUMNS}))
def test_no_row_crashes_the_loader_or_passes_half_parsed(row):
    try:
        task = parse_row(row)
    except RowError:
        return
    assert task.prompt.strip() and task.claims and task.enabled_tools and task.gold_calls()
    assert all(isinstance(c.arguments, dict) for c in task.gold_calls())
    tools = row["ENABLED_TOOLS"]
    try:
        tools = json.loads(tools)
    except ValueError:
        tools = ast.literal_eval(tools)  # the loader accepts Python literals too
    assert isinstance(tools, list)  # never a string split into one-character tools


def test_claims_are_parsed_the_benchmarks_way():
    assert parse_claims('["\u201cQuoted\u201d claim \u2013 one.", "ok", "  Second claim  "]') == [
        '"Quoted" claim - one.', "Second claim"]  # quotes and dashes plain; 3 characters or fewer dropped
    assert parse_claims("- First claim\n- Second claim") == ["First claim", "Second claim"]
    assert parse_claims("1. First claim\n2. Second claim") == ["First claim", "Second claim"]
    assert parse_claims("One claim; another claim") == ["One claim", "another claim"]
    assert parse_claims("['python', 'list literal']") == ["python", "list literal"]
    assert parse_claims("He said 'hi'.") == ["He said 'hi"]  # a trailing quote goes, as in the benchmark
    assert parse_claims("") == [] and parse_claims(None) == [] and parse_claims("[]") == []
    assert all(parse_claims(t.claims) == t.claims for t in load_rows(SAMPLE_DIR / "sample_tasks.csv")[0])
