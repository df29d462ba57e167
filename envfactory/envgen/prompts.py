"""Prompts of the synthesis agents. Kept together so their wording is reviewed as one."""

from __future__ import annotations

import json

CONTRACT = '''Environment contract (Python, module env.py):

from pydantic import BaseModel
from envfactory.env import Environment, ToolFailure

class State(BaseModel):            # schema of the scenario JSON
    orders: dict[str, Order]       # main entity keyed by id
    next_order_number: int = 1

class ShopEnv(Environment):
    """Environment description."""
    name = "shop"; domain = "retail"; State = State

    def get_order(self, order_id: str) -> dict:
        """Docstring = tool description."""
        order = self.state["orders"].get(order_id)   # self.state is plain JSON dicts/lists
        if order is None:
            raise ToolFailure(f"order {order_id} not found")   # refusals: ToolFailure
        return order

Rules: public methods are exactly the tools of the spec, with exactly the spec's parameters (required ones
without defaults); deterministic (no clock, no randomness; ids from counters in the state; "today" from the
scenario); only these imports: __future__, typing, dataclasses, enum, datetime, math, re, json, collections,
itertools, functools, decimal, statistics, string, copy, pydantic, envfactory.env; no I/O, no open/eval/exec,
no dunder attributes. Return JSON-serializable values.'''

CASES = '''Validation cases (tests.json): {"cases": [{"name", "scenario": <scenario id>, "steps": [{"tool", "args",
"expect_output" | "expect_subset" | "expect_error": "domain_error"|"invalid_arguments"|"unknown_tool",
"expect_len"}], "expect_state": [{"path": [...], "equals": ...} | {"path": [...], "absent": true}],
"expect_unchanged": bool}]}. An argument can reuse an earlier step's output: {"$ref": "<step>.<key>"}.'''


def propose(topics: list[str], documents: list[str], n: int) -> str:
    parts = [f"Propose {n} distinct, realistic tool-use environments for training LLM agents: stateful "
             "back-ends (a small database) that an assistant operates through 6-10 tools with real "
             "dependencies (ids returned by one tool are inputs of another), mixing reads and writes with "
             "business rules that can refuse requests."]
    if topics:
        parts.append("Seed topics: " + "; ".join(topics))
    for i, doc in enumerate(documents):
        parts.append(f"Document {i + 1} (API docs or OpenAPI, ground the proposals in it):\n{doc[:6000]}")
    parts.append("Do not reproduce benchmark back-ends (BFCL, tau-bench airline/retail/telecom).")
    return "\n\n".join(parts)


def specify(proposal_json: str) -> str:
    return ("Write the specification of this environment: class_name, description, tools (name, description, "
            "input_schema and output_schema as JSON Schema; input schemas are objects with properties, required "
            "and additionalProperties false) and state_schema (JSON Schema of the scenario state).\n\n"
            f"Environment:\n{proposal_json}")


def implement(proposal_json: str, spec_json: str) -> str:
    return (f"{CONTRACT}\n\nImplement this environment as env.py (field `code`) and write at least 2 "
            "scenarios (field `scenarios`: id -> initial state matching State) with realistic data, "
            ">= 20 rows of the main entity each.\n\n"
            f"Environment:\n{proposal_json}\n\nSpecification (tools must match exactly):\n{spec_json}")


def write_tests(spec_json: str, code: str, scenario_ids: list[str], excerpt: str) -> str:
    return (f"{CASES}\n\nWrite validation cases for this environment: every tool at least once, multi-step "
            "flows that chain ids, state assertions after writes, and failure cases (domain_error, "
            "invalid_arguments, unknown_tool). Compute expected values from the scenario data.\n\n"
            f"Specification:\n{spec_json}\n\nCode:\n{code}\n\nScenario ids: {scenario_ids}\n"
            f"Scenario excerpt:\n{excerpt}")


def revise(code: str, problems: list[str]) -> str:
    listed = "\n".join(f"- {p}" for p in problems[:30])
    return (f"{CONTRACT}\n\nThe environment failed verification in the sandbox. Fix the code (field `code`, the "
            "complete module). If a validation case itself is wrong, you may also return corrected `cases`; "
            "you may return corrected `scenarios`.\n\n"
            f"Problems:\n{listed}\n\nCurrent code:\n{code}")


def dumps(model) -> str:
    return json.dumps(model.model_dump(mode="json"), indent=1)
