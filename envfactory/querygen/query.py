"""QueryGen: a chain becomes (a) an explicit instruction-list query and (b) a calibrated refinement.

The refinement reads like a person: implicit intent, merged steps, derivable values
dropped, ids replaced by references, at an ambiguity level 0-2 — but it must still
*determine* the chain: every value only the user can provide must be stated. A
check (`determines`) rejects refinements that lose one.

Two refiners: an LLM (when `data.refiner` is configured) and an offline
rule-based one, documented as the weaker baseline: its text is templated.

Neither the explicit query nor a rule-based refinement names a tool: requests are worded from the
tools' and the environment's descriptions (what is wanted, in which system) plus the user-provided
values, and `scrub_tool_names` rewrites any remaining tool name — of *every* tool of the chain's
environments, called or not — so no name, nor its words in order ("get_book", "get book", "Get-Book"),
survives outside a user-provided value.
"""

from __future__ import annotations

import json
import random
import re
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


# -- tool names stay out of requests ------------------------------------------------------------------

def name_tokens(name: str) -> list[str]:
    """The words of an identifier: snake_case, kebab-case, dotted and camelCase all split, lowercased."""
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    return [t.lower() for t in re.split(r"[^A-Za-z0-9]+", name) if t]


def _name_regex(name: str) -> re.Pattern | None:
    """A tool name or its words in order, whole words, joined by nothing, spaces, `_`, `-`, `.` or `/`."""
    tokens = name_tokens(name)
    if not tokens:
        return None
    return re.compile(r"(?<![A-Za-z0-9])" + r"[\s_\-./]*".join(map(re.escape, tokens)) + r"(?![A-Za-z0-9])",
                      re.IGNORECASE)


def env_tool_names(specs: dict[str, EnvSpec], envs: list[str]) -> list[str]:
    """Every tool name of the given environments (not just the ones a chain calls)."""
    return sorted({t.name for e in envs if e in specs for t in specs[e].tools})


def named_tools(text: str, names: list[str]) -> list[str]:
    """The tool names that `text` contains (as identifiers or as their words in order)."""
    return [n for n in names if (rx := _name_regex(n)) is not None and rx.search(text)]


def _protected_spans(text: str, keep: list[str]) -> list[tuple[int, int]]:
    lowered, spans = text.lower(), []
    for k in keep:
        k = k.lower()
        if not k:
            continue
        start = lowered.find(k)
        while start >= 0:
            spans.append((start, start + len(k)))
            start = lowered.find(k, start + 1)
    return spans


def _reword(match: str) -> str:
    """A tool-name occurrence reworded so its words are no longer adjacent: `Search emails` -> `Search the
    emails`, `get_thread` -> `get the thread`; a one-word name becomes `that`."""
    words_ = [w for w in re.split(r"[^A-Za-z0-9]+", re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", match)) if w]
    if len(words_) < 2:
        return "that"
    return f"{words_[0]} the {' '.join(w.lower() for w in words_[1:])}"


def scrub_tool_names(text: str, names: list[str], keep: list[str] = ()) -> str:
    """`text` with every tool name of `names` (and its words in order) reworded, except inside the strings of
    `keep` (user-provided values must survive verbatim: `determines`)."""
    patterns = [rx for n in sorted(set(names), key=lambda n: -len(name_tokens(n))) if (rx := _name_regex(n))]
    for _ in range(8):  # a rewording could, in principle, form another name: repeat to a fixed point
        changed = False
        for rx in patterns:
            protected = _protected_spans(text, list(keep))
            out, last = [], 0
            for m in rx.finditer(text):
                if any(a < m.end() and m.start() < b for a, b in protected):
                    continue
                out.append(text[last:m.start()] + _reword(m.group(0)))
                last = m.end()
            if out:
                text = "".join(out) + text[last:]
                changed = True
        if not changed:
            break
    return text


def _keep(chain: ExecutedChain) -> list[str]:
    """What a rewording must not touch: the user-provided values (booleans: the parameter's words)."""
    keep = []
    for _, p, v in user_values(chain):
        if isinstance(v, bool):
            keep.append(words(p))
        elif isinstance(v, list):
            keep += [show(x) for x in v]
        else:
            keep.append(show(v))
    return keep


# -- wording from descriptions ------------------------------------------------------------------------

def _clause(text: str) -> str:
    """The first sentence of a description, parentheticals dropped, first letter lowercased (not `SKUs`)."""
    first = re.split(r"(?<!\be\.g)(?<!\bi\.e)\.\s", text.strip(), maxsplit=1)[0]
    s = re.sub(r"\s*\([^()]*\)", "", first).rstrip(". ").strip()
    if s[:1].isupper() and not s[1:2].isupper():
        s = s[:1].lower() + s[1:]
    return s


def _what(chain: ExecutedChain, specs: dict[str, EnvSpec], i: int) -> str:
    """What step `i` is about, from its tool's description (never its name)."""
    call = chain.calls[i]
    spec = specs.get(call.env)
    tool = spec.tool(call.tool) if spec else None
    what = _clause(tool.description) if tool and tool.description.strip() else ""
    if not what:  # no description: say which records it touches, from its parameter names
        nouns = [words(p) for p in call.arguments]
        what = f"something involving the {', '.join(nouns)}" if nouns else "the next step"
    return what


def _context(chain: ExecutedChain, specs: dict[str, EnvSpec]) -> str:
    """The system(s) the request is about, from the environment descriptions (the domain's nouns)."""
    parts = []
    for env in chain.envs:
        spec = specs.get(env)
        text = spec.description.strip() if spec else ""
        head = re.split(r"[:;.]", text, maxsplit=1)[0].strip() if text else ""
        if len(head) > 90:
            head = head.split(",")[0].strip()
        if not head or len(head) > 90:
            head = f"the {words(spec.domain if spec else env)} system"
        if head[:1].isupper() and not head[1:2].isupper():
            head = head[:1].lower() + head[1:]
        parts.append(head)
    return " and ".join(parts)


def explicit_query(chain: ExecutedChain, specs: dict[str, EnvSpec]) -> str:
    lines = [f"Please do the following in {_context(chain, specs)}, in order:"]
    for i, call in enumerate(chain.calls):
        parts = []
        for k, v in call.arguments.items():
            parts.append(f"{words(k)} {show(v)}" if k in call.user_args else f"the {words(k)} from the previous result")
        detail = f" ({'; '.join(parts)})" if parts else ""
        what = _what(chain, specs, i)
        lines.append(f"{i + 1}. {what[:1].upper() + what[1:]}{detail}.")
    return scrub_tool_names("\n".join(lines), env_tool_names(specs, chain.envs), _keep(chain))


def _value_phrase(items: list[tuple[int, str, Any]]) -> str:
    return ", ".join(f"{words(p)} {show(v)}" for _, p, v in items)


def refine_rule(chain: ExecutedChain, level: int, rng: random.Random, specs: dict[str, EnvSpec]) -> str:
    """Rule-based calibrated refinement (the offline baseline), worded from descriptions, never tool names."""
    values = user_values(chain)
    context = _context(chain, specs)
    goal = _what(chain, specs, len(chain.calls) - 1)
    opener = rng.choice(["I'd like some help with {}.", "Could you help me with {}?", "I need a hand with {}.",
                         "Can you sort something out for me with {}?"]).format(context)
    if level == 0:  # merged steps, every user value stated, intermediate steps described
        steps = [_what(chain, specs, i) for i in range(len(chain.calls))]
        flow = steps[0] if len(steps) == 1 else "first " + "; then ".join(steps)
        text = f"{opener} What I need: {flow}."
        text += f" Use {_value_phrase(values)}." if values else ""
    elif level == 1:  # derivable values dropped: only the goal and the values the user knows
        text = f"{opener} What I need in the end: {goal}."
        text += f" The details: {_value_phrase(values)}." if values else ""
        text += " Work out anything else you need yourself."
    else:  # level 2: implicit intent: the need, values woven in without parameter names
        facts = "; ".join(f"{words(p)} {'yes' if v else 'no'}" if isinstance(v, bool) else show(v)
                          for _, p, v in values)
        text = f"Something I have to sort out with {context}: {goal}."
        text += f" What I know: {facts}." if facts else ""
    return scrub_tool_names(text, env_tool_names(specs, chain.envs), _keep(chain))


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
        refined, refiner = refine_rule(chain, level, rng, specs), "rule"
    else:
        try:
            # the prompt forbids tool names; an LLM that slips one in gets it reworded like the rule-based text
            refined = scrub_tool_names(refine_llm(client, chain, explicit, level), env_tool_names(specs, chain.envs),
                                       _keep(chain))
        except ValueError:
            refined = ""  # an unparseable reply is a rejected refinement
        refiner = f"llm:{client.cfg.model}"
    ok, _ = determines(refined, chain)
    return QueryRecord(chain_id=chain.chain_id, explicit=explicit, refined=refined, ambiguity=level if refine else 0,
                       refiner=refiner, determined=ok,
                       user_values={f"{i}.{p}": v for i, p, v in user_values(chain)})
