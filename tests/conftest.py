from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from envfactory.catalog import CATALOG_DIR


@pytest.fixture
def hotel_dir() -> Path:
    return CATALOG_DIR / "hotel_reservations"


def make_package(root: Path, run_body: str, prelude: str = "") -> Path:
    """An environment package whose single tool `run` executes `run_body` (hostile-code corpus)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "scenarios").mkdir(exist_ok=True)
    code = f'''
from envfactory.env import Environment, ToolFailure
{prelude}

class Probe(Environment):
    name = "probe"
    domain = "test"

    def bump(self) -> dict:
        self.state["counter"] += 1
        return {{"counter": self.state["counter"]}}

    def run(self) -> dict:
{textwrap.indent(textwrap.dedent(run_body), " " * 8)}
        return {{"done": True}}
'''
    (root / "env.py").write_text(code)
    empty = {"type": "object", "properties": {}, "required": [], "additionalProperties": False}
    spec = {"name": "probe", "domain": "test", "description": "probe", "class_name": "Probe",
            "tools": [{"name": "bump", "description": "b", "input_schema": empty},
                      {"name": "run", "description": "r", "input_schema": empty}]}
    (root / "spec.json").write_text(json.dumps(spec))
    (root / "scenarios" / "default.json").write_text(json.dumps({"counter": 0}))
    return root
