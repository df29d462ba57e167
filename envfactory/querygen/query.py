"""QueryGen: a chain becomes (a) an explicit instruction-list query and (b) a calibrated refinement.

The refinement reads like a person: implicit intent, merged steps, derivable values
dropped, ids replaced by references, at an ambiguity level 0-2 — but it must still
*determine* the chain: every value only the user can provide must be stated. A
check (`determines`) rejects refinements that lose one.

Two refiners: an LLM (when `data.refiner` is configured) and an offline
rule-based one, documented as the weaker baseline: its text is templated.
"""

from __future__ import annotations

import json
import random
from typing import Any

from pydantic import BaseModel

from ..env.spec import EnvSpec
from ..llm import ChatRequest, LLMClient, Message
from .execute import ExecutedChain
from .records import QueryRecord


def words(name: str) -> str:
    return name.replace("_", " ")


def show(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(show(v) for v in value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def user_values(chain: ExecutedChain) -> list[tuple[int, str, Any]]:
    """(step, param, value) the user must provide: arguments not taken from an earlier output."""
    return [(i, p, c.arguments[p]) for i, c in enumerate(chain.calls) for p in c.user_args]


def _first_sentence(text: str) -> str:
    s = text.strip().split(". ")[0].rstrip(".")
    return s[:1].lower() + s[1:] if s else s


def explicit_query(chain: ExecutedChain, specs: dict[str, EnvSpec]) -> str:
    lines = ["Please do the following, in order:"]
    for i, call in enumerate(chain.calls):
        tool = specs[call.env].tool(call.tool)
        parts = []
        for k, v in call.arguments.items():
            parts.append(f"{words(k)} {show(v)}" if k in call.user_args else f"the {words(k)} from the previous result")
        detail = f" ({'; '.join(parts)})" if parts else ""
        lines.append(f"{i + 1}. {words(call.tool).capitalize()}: {_first_sentence(tool.description if tool else '')}"
                     f"{detail}.")
    return "\n".join(lines)


def _value_phrase(items: list[tuple[int, str, Any]]) -> str:
    return ", ".join(f"{words(p)} {show(v)}" for _, p, v in items)


def refine_rule(chain: ExecutedChain, level: int, rng: random.Random) -> str:
    """Rule-based calibrated refinement (the offline baseline)."""
    values = user_values(chain)
    target = chain.calls[-1]
    goal = words(target.tool)
    openers = ["I'd like to", "Could you help me", "I need to", "Can you"]
    opener = rng.choice(openers)
    if level == 0:  # merged steps, every user value stated, intermediate steps named
        steps = [words(c.tool) for c in chain.calls]
        flow = ", then ".join(steps)
        return f"{opener} {flow}? Use {_value_phrase(values)}." if values else f"{opener} {flow}?"
    if level == 1:  # derivable values dropped: only the goal and the values the user knows
        context = f" The details: {_value_phrase(values)}." if values else ""
        return f"{opener} {goal}?{context} Work out anything else you need yourself."
    # level 2: implicit intent: the goal phrased as a need, values woven in without parameter names
    facts = "; ".join(f"{words(p)} {'yes' if v else 'no'}" if isinstance(v, bool) else show(v) for _, p, v in values)
    return f"Something I have to sort out: {goal}. What I know: {facts}." if facts else \
        f"Something I have to sort out: {goal}."


def determines(text: str, chain: ExecutedChain) -> tuple[bool, list[str]]:
    """Every user-provided value must appear in the text (booleans: the parameter must be mentioned)."""
    lowered = text.lower()
    missing = []
    for _, param, value in user_values(chain):
        if isinstance(value, bool):
            ok = words(param).lower() in lowered
        elif isinstance(value, list):
            ok = all(show(v).lower() in lowered for v in value)
        else:
            ok = show(value).lower() in lowered
        if not ok:
            missing.append(f"{param}={show(value)}")
    return not missing, missing


class _Refined(BaseModel):
    query: str


def refine_llm(client: LLMClient, chain: ExecutedChain, explicit: str, level: int) -> str:
    values = {f"{p}": v for _, p, v in user_values(chain)}
    styles = {0: "clear and complete, but in one natural paragraph instead of a list",
              1: "natural, dropping every value the assistant can look up itself and merging steps",
              2: "implicit: state the underlying need rather than the steps, like a busy person would"}
    prompt = (f"Rewrite this tool-use task as the message a real user would send. Style: {styles[level]}. "
              f"It must still contain every one of these values verbatim: {json.dumps(values)}. "
              "Do not mention tool or function names.\n\nTask:\n" + explicit)
    req = ChatRequest(model=client.cfg.model, temperature=0.7, json_schema=_Refined.model_json_schema(),
                      messages=[Message(role="user", content=prompt)],
                      metadata={"step": "refine", "chain": chain.chain_id, "level": level})
    return _Refined.model_validate_json(client.chat(req).content).query


def make_query(chain: ExecutedChain, specs: dict[str, EnvSpec], level: int, rng: random.Random,
               client: LLMClient | None, refine: bool) -> QueryRecord:
    explicit = explicit_query(chain, specs)
    if not refine:
        refined, refiner = explicit, "none"
    elif client is None:
        refined, refiner = refine_rule(chain, level, rng), "rule"
    else:
        try:
            refined = refine_llm(client, chain, explicit, level)
        except ValueError:
            refined = ""  # an unparseable reply is a rejected refinement
        refiner = f"llm:{client.cfg.model}"
    ok, _ = determines(refined, chain)
    return QueryRecord(chain_id=chain.chain_id, explicit=explicit, refined=refined, ambiguity=level if refine else 0,
                       refiner=refiner, determined=ok,
                       user_values={f"{i}.{p}": v for i, p, v in user_values(chain)})
