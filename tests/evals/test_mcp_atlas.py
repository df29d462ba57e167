"""MCP-Atlas adapter: gold/idle policies under a claim-containment judge, replay, and the local MCP servers."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from envfactory.llm import ChatResponse, ProviderConfig, register_provider
from evals.base import EvalContext, PolicySpec, get_benchmark
from evals.mcp_atlas import (SAMPLE_DIR, ReplayBook, ReplaySession, canonical_args, fetch_full_set, load_tasks,
                             resolve_data)
from evals.mcp_servers import LOCAL_SERVERS
from evals.mcp_servers.client import MCPServers, server_params

pytestmark = pytest.mark.skipif(not (SAMPLE_DIR / "sample_tasks.csv").is_file(),
                                reason="the MCP-Atlas sample (evals/data/mcp_atlas) is not present")


@register_provider("test-containment-judge")
class ContainmentJudge:
    """A judge that really reads the claims: a claim is fulfilled iff its text appears in the response."""

    def __init__(self, cfg):
        self.cfg = cfg

    def complete(self, request):
        assert request.json_schema is not None and request.metadata.get("step") == "judge"
        payload = json.loads(request.messages[-1].content)
        verdicts = [{"claim_index": c["index"], "justification": "substring check",
                     "coverage_outcome": "fulfilled" if c["claim"] in payload["response"] else "not_fulfilled"}
                    for c in payload["claims"]]
        return ChatResponse(content=json.dumps({"verdicts": verdicts}), model=request.model)


JUDGE = ProviderConfig(name="test-containment-judge", model="containment")


def _ctx(tmp_path: Path, kind: str, **kw) -> EvalContext:
    return EvalContext(policy=PolicySpec(kind=kind, name=kind), judge=JUDGE, work_dir=tmp_path, **kw)


def test_oracle_covers_every_claim(tmp_path):
    result = get_benchmark("mcp_atlas").run(_ctx(tmp_path, "oracle"))
    assert result.status == "scored" and result.score == 1.0
    (cat,) = result.categories
    assert cat.n == 10 and cat.label == "replay-based"
    assert cat.metrics["pass@0.5"] == 1.0 and cat.metrics["mean_coverage"] == 1.0
    # Every gold call either ran on a local MCP server without error or matched a recording.
    assert cat.metrics["replay_misses"] == 0 and cat.metrics["judge_errors"] == 0
    assert cat.metrics["local_calls"] >= 10 and cat.metrics["replay_hits"] >= 10
    episodes = [json.loads(line) for line in (tmp_path / "mcp_atlas" / "episodes.jsonl").read_text().splitlines()]
    local = [c for e in episodes for c in e["calls"] if c["env"] != "replay"]
    assert {c["env"] for c in local} >= {"filesystem", "calculator", "cli-mcp-server", "mcp-code-executor"}
    assert not any(c["error"] for c in local)
    assert result.judge_model == "containment" and result.data_checksum


def test_idle_scores_zero(tmp_path):
    result = get_benchmark("mcp_atlas").run(_ctx(tmp_path, "idle", limit=4))
    (cat,) = result.categories
    assert result.status == "scored" and result.score == 0.0 and cat.n == 4
    assert cat.metrics["mean_coverage"] == 0.0 and cat.metrics["pass@0.5"] == 0.0 and cat.metrics["tool_calls"] == 0


def test_unavailable_without_judge(tmp_path):
    ctx = EvalContext(policy=PolicySpec(kind="oracle", name="oracle"), work_dir=tmp_path)
    result = get_benchmark("mcp_atlas").run(ctx)
    assert result.status == "unavailable" and "judge" in result.reason and not result.categories


def test_replay_returns_recording_for_matching_call_else_offline_error():
    tasks = load_tasks(SAMPLE_DIR / "sample_tasks.csv")
    book = ReplayBook(tasks)
    task = next(t for t in tasks if "wikipedia_get_article" in t.enabled_tools)
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


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    run = tmp_path_factory.mktemp("mcp-run")
    (run / "data").mkdir()
    (run / "data" / "notes.txt").write_text("inside\n")
    (run / "secret.txt").write_text("outside the root\n")
    (run / "data" / "link").symlink_to(run / "secret.txt")
    env = {"ALLOWED_DIR": str(run / "data"), "SANDBOX_WRITE_ROOT": str(run / "data")}
    names = ["filesystem", "calculator", "mcp-code-executor"]
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
