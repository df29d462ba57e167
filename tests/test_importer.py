"""Import an environment in the paper's released shape and run it in the sandbox."""

from __future__ import annotations

import json
import textwrap

from envfactory.env.importer import import_paper_env
from envfactory.env.package import EnvPackage
from envfactory.env.sandbox import SandboxedEnv
from envfactory.env.verify import verify_package

MODULE = textwrap.dedent('''
    class TodoBoard:
        """A to-do board (plain class, as in the paper's releases)."""

        def __init__(self):
            self.tasks = {}
            self.next_id = 1

        def load_scenario(self, scenario):
            self.tasks = {t["id"]: dict(t) for t in scenario["tasks"]}
            self.next_id = scenario["next_id"]

        def save_scenario(self):
            return {"tasks": sorted(self.tasks.values(), key=lambda t: t["id"]), "next_id": self.next_id}

        def add_task(self, title, priority=1):
            tid = f"T{self.next_id}"
            self.next_id += 1
            self.tasks[tid] = {"id": tid, "title": title, "priority": priority, "done": False}
            return {"success": True, "task_id": tid}

        def complete_task(self, task_id):
            self.tasks[task_id]["done"] = True     # KeyError for unknown ids: becomes a structured error
            return {"success": True}

        def flaky(self):
            self.next_id = 999
            raise RuntimeError("half-done write")
''')

META = {"class_name": "TodoBoard", "description": "A to-do board.", "tools": [
    {"name": "add_task", "description": "Add a task.",
     "input_schema": {"type": "object", "properties": {"title": {"type": "string"}, "priority": {"type": "integer"}},
                      "required": ["title"]},
     "output_schema": {"type": "object", "properties": {"task_id": {"type": "string"}}}},
    {"name": "complete_task", "description": "Complete a task.",
     "input_schema": {"type": "object", "properties": {"task_id": {"type": "string"}}, "required": ["task_id"]}},
    {"name": "flaky", "description": "Fails.", "input_schema": {"type": "object", "properties": {}}}]}

TESTS = {"cases": [{"name": "add then complete", "scenario": "start", "steps": [
    {"tool": "add_task", "args": {"title": "write paper"}, "expect_subset": {"task_id": "T3"}},
    {"tool": "complete_task", "args": {"task_id": {"$ref": "0.task_id"}}},
    {"tool": "complete_task", "args": {"task_id": "T404"}, "expect_error": "exception"},
    {"tool": "add_task", "args": {}, "expect_error": "invalid_arguments"}],
    "expect_state": [{"path": ["tasks", 2, "done"], "equals": True}]}]}


def test_import_and_run(tmp_path):
    (tmp_path / "meta.json").write_text(json.dumps(META))
    (tmp_path / "todo.py").write_text(MODULE)
    (tmp_path / "start.json").write_text(json.dumps({"tasks": [{"id": "T1", "title": "a", "priority": 1, "done": False},
                                                               {"id": "T2", "title": "b", "priority": 2, "done": True}],
                                                     "next_id": 3}))
    (tmp_path / "tests.json").write_text(json.dumps(TESTS))
    out = import_paper_env(tmp_path / "meta.json", tmp_path / "todo.py", tmp_path / "pkg",
                           scenarios=[tmp_path / "start.json"], tests=tmp_path / "tests.json", domain="productivity")
    package = EnvPackage(out)
    assert package.spec.name == "todo_board" and package.spec.domain == "productivity"
    report = verify_package(package)
    assert report.verified, report.problems
    with SandboxedEnv(package) as env:
        env.reset("start")
        before = env.state_hash()
        failed = env.call("flaky", {})
        assert failed["error"]["kind"] == "exception"
        assert env.state_hash() == before  # the adapter rolled the plain-class state back
        assert env.call("add_task", {"title": "x"}) == {"ok": {"success": True, "task_id": "T3"}}
