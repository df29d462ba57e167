"""MCP-Atlas adapter: the benchmark's per-claim judge and aggregation, an oracle that answers from the tool outputs
it received (so a broken server lowers it), failed-call counts, replay and inferred schemas, and the local MCP
servers. Every judge here is scripted (no network)."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path

import pytest

from envfactory.llm import ChatResponse, LLMClient, ProviderConfig, register_provider
from envfactory.llm.providers.scripted import ScriptedProvider
from evals.base import EvalContext, PolicySpec, get_benchmark
from evals.mcp_atlas import (
    CLAIM_SCHEMA,
    JUDGE_PROMPT,
    SAMPLE_DIR,
    Harness,
    ReplayBook,
    ReplaySession,
    canonical_args,
    fetch_full_set,
    has_parameters,
    infer_input_schema,
    judge_coverage,
    judge_prompt,
    load_tasks,
    offer_tools,
    replay_tool_schema,
    resolve_data,
)
from evals.mcp_servers import LOCAL_SERVERS
from evals.mcp_servers.client import MCPServers, server_params

pytestmark = pytest.mark.skipif(not (SAMPLE_DIR / "sample_tasks.csv").is_file(),
                                reason="the MCP-Atlas sample (evals/data/mcp_atlas) is not present")

SAMPLE = load_tasks(SAMPLE_DIR / "sample_tasks.csv") if (SAMPLE_DIR / "sample_tasks.csv").is_file() else []
PROMPT_OF_CLAIM = {c: t.prompt for t in SAMPLE for c in t.claims}
_CLAIM_AT = "CLAIM TO EVALUATE:\n"
_RESPONSE_AT = "\nMODEL RESPONSE TO ANALYZE:\n"
_INSTRUCTIONS_AT = "\nINSTRUCTIONS:\n1. Determine if the core requirement"


def split_judge_prompt(prompt: str) -> tuple[str, str]:
    """(claim, response) out of the benchmark's judge prompt."""
    head, _, rest = prompt.partition(_CLAIM_AT)
    claim, _, rest = rest.partition(_RESPONSE_AT)
    return claim, rest[:rest.rindex(_INSTRUCTIONS_AT)]


# ---- a scripted judge that reads the claim's facts: its numbers (equal up to the claim's rounding), long
# identifiers and capitalized names, minus those the task prompt already states (no evidence of having found
# them); with none of those, its content words the prompt does not state. fulfilled = all in the response,
# partially = at least half, else not.
_NUM = r"[-+]?\d+(?:,\d{3})*(?:\.\d+)?"
_TOKEN = re.compile(_NUM + r"(?!\w)|\w+")
_STOP = {"the", "a", "an", "according", "in", "of", "on", "at", "to", "for", "and", "or", "is", "it", "this", "that"}


def _dec(text: str) -> Decimal | None:
    try:
        return Decimal(text.replace(",", "").lstrip("+"))
    except InvalidOperation:
        return None


def _facts(text: str) -> list[tuple[str, str]]:
    out = []
    for tok in _TOKEN.findall(text):
        if re.fullmatch(_NUM, tok):
            out.append(("num", tok))
        elif any(ch.isdigit() for ch in tok) and len(tok) >= 6:
            out.append(("id", tok.lower()))
        elif tok[0].isupper() and tok.lower() not in _STOP and len(tok) > 1:
            out.append(("name", tok.lower()))
    return out


def _number_in(claim_number: str, response: str) -> bool:
    want = _dec(claim_number)
    places = Decimal(1).scaleb(min(want.as_tuple().exponent, 0))
    return any(abs(got.quantize(places, ROUND_HALF_UP)) == abs(want)
               for got in map(_dec, re.findall(_NUM, response)) if got is not None and abs(got) < 10 ** 30)


def fact_verdict(claim: str, response: str, prompt: str = "") -> str:
    given = {v for _, v in _facts(prompt)} | set(re.findall(r"\w+", prompt.lower()))
    facts = [f for f in dict.fromkeys(_facts(claim)) if f[1] not in given] or [
        ("word", w) for w in dict.fromkeys(re.findall(r"\w+", claim.lower()))
        if len(w) > 2 and w not in given and w not in _STOP]
    low = response.lower()
    found = [_number_in(v, response) if k == "num" else v in low for k, v in facts]
    share = sum(found) / len(found) if found else 0.0
    return "fulfilled" if share == 1 else "partially_fulfilled" if share >= 0.5 else "not_fulfilled"


@register_provider("test-fact-judge")
class FactJudge:
    """Answers the benchmark's per-claim judge request with `fact_verdict`; asserts it got that request."""

    def __init__(self, cfg):
        self.cfg = cfg

    def complete(self, request):
        assert request.json_schema == CLAIM_SCHEMA and request.metadata.get("step") == "judge"
        assert request.temperature == 0.0 and [m.role for m in request.messages] == ["user"]
        claim, response = split_judge_prompt(request.messages[0].content)
        assert request.messages[0].content == judge_prompt(claim, response)
        outcome = fact_verdict(claim, response, PROMPT_OF_CLAIM.get(claim, ""))
        return ChatResponse(content=json.dumps({"claim_text": claim, "coverage_outcome": outcome,
                                                "justification": "facts checked", "confidence_level": 0.9}),
                            model=request.model)


JUDGE = ProviderConfig(name="test-fact-judge", model="facts")


def _ctx(tmp_path: Path, kind: str, **kw) -> EvalContext:
    return EvalContext(policy=PolicySpec(kind=kind, name=kind), judge=kw.pop("judge", JUDGE), work_dir=tmp_path,
                       **kw)


def _episodes(tmp_path: Path) -> list[dict]:
    return [json.loads(x) for x in (tmp_path / "mcp_atlas" / "episodes.jsonl").read_text().splitlines()]


def test_oracle_answers_from_tool_outputs_and_reaches_the_benchmark_maximum(tmp_path):
    result = get_benchmark("mcp_atlas").run(_ctx(tmp_path, "oracle"))
    assert result.status == "scored" and result.score == 1.0 and result.adapter_version == "2"
    (cat,) = result.categories
    assert cat.n == 10 and cat.label == "replay-based" and cat.metrics["pass@0.5"] == 1.0
    assert 0.9 < cat.metrics["mean_coverage"] < 1.0  # some claims are only partly in the raw outputs
    # Every gold call either ran on a local MCP server without error or matched a recording.
    for k in ("local_tool_errors", "unknown_tools", "format_errors", "replay_misses", "judge_errors", "skipped_rows"):
        assert cat.metrics[k] == 0, k
    assert cat.metrics["local_calls"] >= 10 and cat.metrics["replay_hits"] >= 10
    assert cat.metrics["replay_tools_without_parameters"] == 68  # no recorded call in the sample: nothing to infer
    episodes = _episodes(tmp_path)
    local = [c for e in episodes for c in e["calls"] if c["env"] != "replay"]
    assert {c["env"] for c in local} >= {"filesystem", "calculator", "cli-mcp-server", "mcp-code-executor"}
    assert not any(c["error"] for c in local)
    for e, task in zip(episodes, SAMPLE):
        assert e["task"] == task.id and e["passed"] and e["answer"].startswith("What the tools returned")
        # per-claim verdicts, one judge call each; the answer is not the claims pasted together
        assert [v["claim"] for v in e["claims"]] == task.claims
        assert all(v["justification"] == "facts checked" and v["score"] == {
            "fulfilled": 1.0, "partially_fulfilled": 0.5, "not_fulfilled": 0.0}[v["outcome"]] for v in e["claims"])
        assert e["coverage"] == round(sum(v["score"] for v in e["claims"]) / len(e["claims"]), 3)
        assert sum(c in e["answer"] for c in task.claims) < len(task.claims)
    assert result.judge_model == "facts" and result.data_checksum


def _remove_data_root(monkeypatch):
    reset = Harness.reset

    def broken(self):
        reset(self)
        shutil.rmtree(self.data)  # the files every task reads (the filesystem server's root) are gone

    monkeypatch.setattr(Harness, "reset", broken)


def _calculator_down(monkeypatch):
    monkeypatch.setitem(LOCAL_SERVERS, "calculator", "evals.mcp_servers.no_such_server")


@pytest.mark.parametrize("breakage,hit", [(_remove_data_root, {"689af4e653c3905e7b5b25b8", "689bd255c0422b257e7dfcc5"}),
                                          (_calculator_down, {"6888e207a34beb25cfedda3b"})])
def test_a_broken_local_server_lowers_the_oracle(tmp_path, monkeypatch, breakage, hit):
    breakage(monkeypatch)
    result = get_benchmark("mcp_atlas").run(_ctx(tmp_path, "oracle"))
    (cat,) = result.categories
    assert result.status == "scored" and cat.n == 10 and result.score < 1.0
    assert cat.metrics["local_tool_errors"] > 0 and "local tool errors" in result.reason
    failed = {e["task"] for e in _episodes(tmp_path) if not e["passed"]}
    assert failed and failed >= hit
    if breakage is _calculator_down:
        assert "calculator" in result.reason and "down" in result.reason


def _task(claims: list[str]):
    from evals.mcp_atlas import Task

    return Task("t1", "What is it?", ["calculator_calculate"], [], claims)


def test_judge_is_the_benchmarks_per_claim_procedure():
    # the prompt is the benchmark's, unchanged (services/scoring/score_claims.py at 5b6220c)
    assert hashlib.sha256(JUDGE_PROMPT.encode()).hexdigest() == (
        "87e98017c03361bee3f792c0e92fdeb2484abaa04131bd1b2f8477ac86e6d434")
    replies = {0: "fulfilled", 1: "partially_fulfilled", 2: "not_fulfilled", 3: "mostly"}
    seen = []

    def judge(request):
        seen.append(request)
        i = request.metadata["claim_index"]
        if i == 4:
            return {"content": "I cannot tell"}
        return {"content": json.dumps({"claim_text": "x", "coverage_outcome": replies[i], "justification": f"j{i}",
                                       "confidence_level": 0.8})}

    client = LLMClient(ProviderConfig(name="scripted", model="j"), provider=ScriptedProvider.from_callable(judge),
                       cache_mode="off")
    claims = ["Claim zero.", "Claim one.", "Claim two.", "Claim three.", "Claim four."]
    coverage, verdicts = judge_coverage(client, _task(claims), "The answer.")
    assert coverage == round(1.5 / 5, 3) == 0.3
    assert [v["score"] for v in verdicts] == [1.0, 0.5, 0.0, 0.0, 0.0]  # an unknown outcome scores 0
    assert [v["error"] for v in verdicts] == [False] * 4 + [True]  # an unreadable reply: not fulfilled, flagged
    assert [r.messages[0].content for r in seen] == [judge_prompt(c, "The answer.") for c in claims]
    assert all(r.json_schema == CLAIM_SCHEMA and r.temperature == 0.0 and len(r.messages) == 1 for r in seen)
    seen.clear()
    assert judge_coverage(client, _task(claims), "  ")[0] == 0.0 and not seen  # empty answer: no judge call
    coverage, _ = judge_coverage(client, _task(claims[:3]), "x")
    assert coverage == 0.5


def _rules(tmp_path: Path, name: str, rules: list[dict]) -> ProviderConfig:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(rules))
    return ProviderConfig(name="scripted", model=name, responses=str(path))


def _verdict(outcome: str) -> dict:
    return {"content": json.dumps({"claim_text": "", "coverage_outcome": outcome, "justification": "",
                                   "confidence_level": 1.0})}


def test_a_task_passes_at_three_quarters_coverage(tmp_path):
    # claim 0 of every task not fulfilled, the rest fulfilled: coverage (n-1)/n for the first five tasks'
    # 5, 3, 7, 6, 4 claims; 4 claims -> exactly 0.75, which passes
    judge = _rules(tmp_path, "judge", [
        {"match": {"step": "judge", "claim_index": 0}, "response": _verdict("not_fulfilled"), "repeat": True},
        {"match": {"step": "judge"}, "response": _verdict("fulfilled"), "repeat": True}])
    result = get_benchmark("mcp_atlas").run(_ctx(tmp_path, "oracle", judge=judge, limit=5))
    (cat,) = result.categories
    assert [e["coverage"] for e in _episodes(tmp_path)] == [0.8, 0.667, 0.857, 0.833, 0.75]
    assert result.score == pytest.approx(0.8) and cat.metrics["pass@0.5"] == 1.0
    assert cat.metrics["mean_coverage"] == pytest.approx((0.8 + 0.667 + 0.857 + 0.833 + 0.75) / 5)
    half = _rules(tmp_path, "half", [{"match": {"step": "judge"}, "response": _verdict("partially_fulfilled"),
                                      "repeat": True}])
    result = get_benchmark("mcp_atlas").run(_ctx(tmp_path, "oracle", judge=half, limit=2))
    assert result.score == 0.0 and result.categories[0].metrics["pass@0.5"] == 1.0


def test_failed_calls_are_counted(tmp_path):
    task = next(t for t in SAMPLE if t.id == "689cd6f8522029b7ad7b2017")  # fetch + filesystem + code executor
    data = tmp_path / "one"
    data.mkdir()
    import csv

    with open(SAMPLE_DIR / "sample_tasks.csv", newline="", encoding="utf-8") as f:
        csv.field_size_limit(1 << 30)
        reader = csv.DictReader(f)
        row = next(r for r in reader if r["TASK"] == task.id)
    with open(data / "tasks.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(row))
        writer.writeheader()
        writer.writerow(row)
    calls = [{"id": "a", "name": "nope_tool", "arguments": {}},  # never offered
             {"id": "b", "name": "filesystem_read_text_file", "arguments": "{not json"},  # format error
             {"id": "c", "name": "filesystem_read_text_file", "arguments": {"path": "/data/missing.csv"}},  # ENOENT
             {"id": "d", "name": "fetch_fetch", "arguments": {"url": "https://example.com/"}},  # no recording
             {"id": "e", "name": "filesystem_list_allowed_directories", "arguments": {}}]  # fine
    agent = _rules(tmp_path, "agent", [{"content": "", "tool_calls": calls}, {"content": "I could not find it."}])
    ctx = EvalContext(policy=PolicySpec(kind="model", name="scripted", provider=agent), judge=JUDGE,
                      work_dir=tmp_path, data_dir=data)
    result = get_benchmark("mcp_atlas").run(ctx)
    m = result.categories[0].metrics
    assert {k: m[k] for k in ("tool_calls", "local_calls", "local_tool_errors", "unknown_tools", "format_errors",
                              "replay_misses", "replay_hits")} == {
        "tool_calls": 5, "local_calls": 2, "local_tool_errors": 1, "unknown_tools": 1, "format_errors": 1,
        "replay_misses": 1, "replay_hits": 0}
    (e,) = _episodes(tmp_path)
    assert e["counts"]["local_tool_errors"] == 1 and e["counts"]["unknown_tools"] == 1
    assert "1 local tool errors, 1 unknown tools, 1 format errors" in result.reason


def test_idle_scores_zero(tmp_path):
    result = get_benchmark("mcp_atlas").run(_ctx(tmp_path, "idle", limit=4))
    (cat,) = result.categories
    assert result.status == "scored" and result.score == 0.0 and cat.n == 4
    assert cat.metrics["mean_coverage"] == 0.0 and cat.metrics["pass@0.5"] == 0.0 and cat.metrics["tool_calls"] == 0
    assert all(v["justification"] == "Empty or error response" for e in _episodes(tmp_path) for v in e["claims"])


def test_unavailable_without_judge(tmp_path):
    ctx = EvalContext(policy=PolicySpec(kind="oracle", name="oracle"), work_dir=tmp_path)
    result = get_benchmark("mcp_atlas").run(ctx)
    assert result.status == "unavailable" and "judge" in result.reason and not result.categories


# ---- replay and the schemas of replayed tools

def test_replay_returns_recording_for_matching_call_else_offline_error():
    book = ReplayBook(SAMPLE)
    task = next(t for t in SAMPLE if "wikipedia_get_article" in t.enabled_tools)
    session = ReplaySession(book, task.id)
    hit = session.call("wikipedia_get_article", {"title": "Guggenheim Museum Bilbao"})
    assert hit["isError"] is False and json.loads(hit["content"][0]["text"])["title"] == "Guggenheim Museum Bilbao"
    # Normalized JSON: key order and integral floats do not matter.
    near = session.call("osm-mcp-server_find_nearby_places",
                        {"radius": 200.0, "categories": ["subway"], "longitude": -79.3866663, "latitude": 43.6718771})
    assert "Bloor-Yonge" in near["content"][0]["text"]
    miss = session.call("wikipedia_get_article", {"title": "Frank Lloyd Wright"})
    assert miss["error"]["kind"] == "unavailable_offline"
    assert (session.hits, session.misses) == (2, 1)
    assert canonical_args({"b": 1.0, "a": [2.5, {"c": 3.0}]}) == '{"a":[2.5,{"c":3}],"b":1}'


def test_schema_inferred_from_every_recorded_call():
    schema = infer_input_schema([{"q": "x", "n": 1, "tags": ["a"], "opt": {"k": True}},
                                 {"q": "y", "n": 2.5, "tags": [], "extra": None}])
    assert schema == {"type": "object", "required": ["q", "n", "tags"], "properties": {
        "q": {"type": "string"}, "n": {"type": "number"}, "tags": {"type": "array", "items": {"type": "string"}},
        "opt": {"type": "object", "properties": {"k": {"type": "boolean"}}, "required": ["k"]},
        "extra": {"type": "null"}}}
    assert infer_input_schema([{"n": 1}, {"n": "one"}])["properties"]["n"] == {"type": ["integer", "string"]}
    book = ReplayBook(SAMPLE)
    nearby = replay_tool_schema("osm-mcp-server_find_nearby_places", book, {})["function"]["parameters"]
    assert set(nearby["required"]) == {"latitude", "longitude", "radius", "categories"}
    assert nearby["properties"]["categories"] == {"type": "array", "items": {"type": "string"}}
    published = {"osm-mcp-server_find_nearby_places": {"description": "Nearby places.", "input_schema": {
        "type": "object", "properties": {"latitude": {"type": "number"}}}}}
    assert replay_tool_schema("osm-mcp-server_find_nearby_places", book, published)["function"] == {
        "name": "osm-mcp-server_find_nearby_places", "description": "Nearby places.",
        "parameters": published["osm-mcp-server_find_nearby_places"]["input_schema"]}


class _NoLocalServers:
    down: dict = {}

    def local_tools(self, server):
        return {}


def test_no_tool_is_offered_without_parameters_when_its_recorded_calls_have_arguments():
    book, bare, checked = ReplayBook(SAMPLE), set(), 0
    for task in SAMPLE:
        for tool in offer_tools(task, _NoLocalServers(), book, {}).tools:
            name = tool["function"]["name"]
            if any(book.arg_samples.get(name, [])):
                checked += 1
                assert has_parameters(tool), name
                assert set(tool["function"]["parameters"]["required"]) <= set(
                    tool["function"]["parameters"]["properties"])
            elif not has_parameters(tool):
                bare.add(name)
    assert checked >= 25 and not any(any(book.arg_samples.get(n, [])) for n in bare)


# ---- the local MCP servers

@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    run = tmp_path_factory.mktemp("mcp-run")
    (run / "data").mkdir()
    (run / "data" / "notes.txt").write_text("inside\n")
    (run / "secret.txt").write_text("outside the root\n")
    (run / "data" / "link").symlink_to(run / "secret.txt")
    shutil.copyfile(SAMPLE_DIR / "memory" / "memories-for-mcp.json", run / "memory.jsonl")
    env = {"ALLOWED_DIR": str(run / "data"), "SANDBOX_WRITE_ROOT": str(run / "data"),
           "MEMORY_FILE_PATH": str(run / "memory.jsonl")}
    names = ["filesystem", "calculator", "mcp-code-executor", "memory"]
    with MCPServers({n: server_params(LOCAL_SERVERS[n], env, cwd=str(run)) for n in names}) as s:
        s.start(names)
        yield s, run


def _text(result: dict) -> str:
    return "".join(c.get("text", "") for c in result["content"])


def test_filesystem_server_cannot_read_outside_its_root(servers):
    s, run = servers
    ok = s.call("filesystem", "read_text_file", {"path": "/data/notes.txt"})
    assert not ok["isError"] and _text(ok) == "inside\n"
    assert _text(s.call("filesystem", "list_allowed_directories", {})) == "Allowed directories:\n/data"
    for path in ["/etc/passwd", "/data/../secret.txt", "../secret.txt", "/data/link", str(run / "secret.txt")]:
        denied = s.call("filesystem", "read_text_file", {"path": path})
        assert denied["isError"] and "Access denied" in _text(denied), path
        assert "outside the root" not in _text(denied)
    wrote = s.call("filesystem", "write_file", {"path": "/data/../escape.txt", "content": "x"})
    assert wrote["isError"] and not (run / "escape.txt").exists()
    listing = _text(s.call("filesystem", "search_files", {"path": "/data", "pattern": "**/*.txt"}))
    assert listing == "/data/notes.txt" and str(run) not in listing


def test_calculator_server_computes(servers):
    s, _ = servers
    assert _text(s.call("calculator", "calculate", {"expression": "(4 + 4.2 + 4.4 + 4.1) / 4"})) == "4.175"
    assert _text(s.call("calculator", "calculate", {"expression": "2^10 + sqrt(16)"})) == "1028.0"
    for bad in ["1/0", "9**9**9", "__import__('os')"]:
        assert s.call("calculator", "calculate", {"expression": bad})["isError"], bad


def test_code_executor_is_sandboxed(servers):
    s, run = servers
    code = ("import socket\ntry:\n    socket.create_connection(('1.1.1.1', 53), timeout=3)\n    print('online')\n"
            "except OSError:\n    print('offline')\ntry:\n    open(%r, 'w')\n    print('wrote')\nexcept OSError:\n"
            "    print('write denied')\nprint(open('/data/notes.txt').read().strip())\n") % str(run / "escape2.txt")
    out = json.loads(_text(s.call("mcp-code-executor", "execute_code", {"code": code})))
    assert out["status"] == "success" and out["output"].split() == ["offline", "write", "denied", "inside"]
    assert out["file_path"].startswith("/data/repos/mcp_code_executor_workspace/code_")
    assert not (run / "escape2.txt").exists()


def test_memory_server_output_has_the_reference_shape(servers):
    """The reference server (@modelcontextprotocol/server-memory 2025.8.4, as MCP-Atlas pins it) keeps each loaded
    line whole: every entity and relation it returns starts with its "type" key, exactly as the file has it."""
    s, run = servers
    seed = [json.loads(x) for x in (SAMPLE_DIR / "memory" / "memories-for-mcp.json").read_text().splitlines()
            if x.strip()]
    entities = [x for x in seed if x["type"] == "entity"]
    relations = [x for x in seed if x["type"] == "relation"]
    graph = _text(s.call("memory", "read_graph", {}))
    assert graph == json.dumps({"entities": entities, "relations": relations}, indent=2, ensure_ascii=False)
    assert all(list(e)[0] == "type" for e in json.loads(graph)["entities"] + json.loads(graph)["relations"])
    name = entities[1]["name"]
    found = json.loads(_text(s.call("memory", "search_nodes", {"query": name})))
    assert found["entities"] and all(e["type"] == "entity" for e in found["entities"])
    names = {e["name"] for e in found["entities"]}
    assert found["relations"] == [r for r in relations if r["from"] in names and r["to"] in names]
    both = [relations[0]["from"], relations[0]["to"]]
    opened = json.loads(_text(s.call("memory", "open_nodes", {"names": both})))
    assert [e["name"] for e in opened["entities"]] == [e["name"] for e in entities if e["name"] in both]
    assert relations[0] in opened["relations"] and all(r["type"] == "relation" for r in opened["relations"])
    new = {"name": "Zed Test", "entityType": "Person", "observations": ["added"]}
    assert json.loads(_text(s.call("memory", "create_entities", {"entities": [new]}))) == [new]
    assert json.loads(_text(s.call("memory", "open_nodes", {"names": ["Zed Test"]}))) == {
        "entities": [{"type": "entity", **new}], "relations": []}


def test_full_set_loader_verifies_checksum(tmp_path):
    src = SAMPLE_DIR / "sample_tasks.csv"
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    url = src.resolve().as_uri()  # a local URL: the loader's download path without any network
    with pytest.raises(ValueError, match="checksum mismatch"):
        fetch_full_set(tmp_path / "bad", url, "0" * 64)
    with pytest.raises(ValueError, match="sha256"):
        fetch_full_set(tmp_path / "none", url, "")
    target = fetch_full_set(tmp_path / "full", url, digest)
    tasks_file, files, _ = resolve_data(tmp_path / "full")
    assert tasks_file == target and len(load_tasks(tasks_file)) == 10 and files == SAMPLE_DIR / "files"
    target.write_text(target.read_text() + "\n")  # a tampered file is refused
    with pytest.raises(ValueError, match="does not match"):
        resolve_data(tmp_path / "full")
