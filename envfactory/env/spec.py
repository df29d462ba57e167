"""Environment specs (`spec.json`): tools with JSON-Schema inputs and outputs.

Two sources: the typed signatures of an `Environment` subclass
(`spec_from_class`, used for the catalog and for synthesized code), and the
paper's released metadata shape (`EnvSpec.from_paper_metadata`).
"""

from __future__ import annotations

import inspect
import typing
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from .base import Environment


class ToolSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    description: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any] = Field(default_factory=dict)

    def openai_tool(self) -> dict:
        """The tool in OpenAI / Qwen3 function-calling format."""
        return {"type": "function", "function": {"name": self.name, "description": self.description,
                                                 "parameters": self.input_schema}}


class EnvSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    domain: str
    description: str
    class_name: str
    tools: list[ToolSpec]
    state_schema: dict[str, Any] = Field(default_factory=dict)

    def tool(self, name: str) -> ToolSpec | None:
        return next((t for t in self.tools if t.name == name), None)

    @classmethod
    def from_paper_metadata(cls, meta: dict, *, name: str | None = None, domain: str = "unknown") -> "EnvSpec":
        """Import the paper's released metadata (`class_name`, `description`, `tools[]`)."""
        tools = []
        for t in meta["tools"]:
            schema = dict(t.get("input_schema") or {"type": "object", "properties": {}})
            schema.setdefault("type", "object")
            schema.setdefault("properties", {})
            tools.append(ToolSpec(name=t["name"], description=t.get("description", ""),
                                  input_schema=schema, output_schema=t.get("output_schema") or {}))
        class_name = meta["class_name"]
        return cls(name=name or meta.get("name") or _snake(class_name), domain=meta.get("domain", domain),
                   description=meta.get("description", ""), class_name=class_name, tools=tools,
                   state_schema=meta.get("state_schema", {}))


def _snake(name: str) -> str:
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i and not name[i - 1].isupper():
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


def _inline(schema: dict) -> dict:
    """Inline `$defs` references so each tool schema is self-contained (LLM tool formats want that)."""
    defs = schema.pop("$defs", {})

    def walk(node):
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                target = walk(dict(defs[ref.split("/")[-1]]))
                extra = {k: walk(v) for k, v in node.items() if k != "$ref"}
                return {**target, **extra}
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(schema)


def _strip_titles(node):
    if isinstance(node, dict):
        return {k: _strip_titles(v) for k, v in node.items() if k != "title" or not isinstance(v, str)}
    if isinstance(node, list):
        return [_strip_titles(v) for v in node]
    return node


def _param_docs(doc: str) -> dict[str, str]:
    """Parse a Google-style 'Args:' section into {param: description}."""
    out: dict[str, str] = {}
    in_args, last = False, None
    for line in doc.splitlines():
        s = line.strip()
        if s in ("Args:", "Arguments:", "Parameters:"):
            in_args = True
            continue
        if not in_args:
            continue
        if not s or s in ("Returns:", "Raises:"):
            break
        name, sep, desc = s.partition(":")
        if sep and name.split(" ")[0].isidentifier() and " " not in name.split(" (")[0]:
            last = name.split(" ")[0]
            out[last] = desc.strip()
        elif last:
            out[last] += " " + s
    return out


def _summary(doc: str) -> str:
    lines = []
    for line in doc.strip().splitlines():
        if line.strip() in ("Args:", "Arguments:", "Parameters:", "Returns:"):
            break
        lines.append(line.strip())
    return " ".join(x for x in lines if x).strip()


def tool_spec_from_method(method) -> ToolSpec:
    doc = inspect.getdoc(method) or ""
    hints = typing.get_type_hints(method, include_extras=True)
    sig = inspect.signature(method)
    pdocs = _param_docs(doc)
    props: dict[str, Any] = {}
    required: list[str] = []
    defs: dict[str, Any] = {}
    for pname, param in sig.parameters.items():
        if pname == "self":
            continue
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise TypeError(f"{method.__qualname__}: *args/**kwargs are not allowed in tools")
        if pname not in hints:
            raise TypeError(f"{method.__qualname__}: parameter {pname!r} needs a type annotation")
        schema = TypeAdapter(hints[pname]).json_schema(ref_template="#/$defs/{model}")
        defs.update(schema.pop("$defs", {}))
        if pname in pdocs:
            schema["description"] = pdocs[pname]
        if param.default is inspect.Parameter.empty:
            required.append(pname)
        else:
            schema["default"] = param.default
        props[pname] = schema
    input_schema: dict[str, Any] = {"type": "object", "properties": props, "required": required,
                                    "additionalProperties": False}
    if defs:
        input_schema["$defs"] = defs
    ret = hints.get("return")
    output_schema = TypeAdapter(ret).json_schema() if ret not in (None, type(None)) else {"type": "null"}
    return ToolSpec(name=method.__name__, description=_summary(doc) or method.__name__,
                    input_schema=_strip_titles(_inline(input_schema)),
                    output_schema=_strip_titles(_inline(output_schema)))


def spec_from_class(cls: type[Environment]) -> EnvSpec:
    if not cls.name or not cls.domain:
        raise TypeError(f"{cls.__name__} must set class attributes `name` and `domain`")
    tools = [tool_spec_from_method(getattr(cls, n)) for n in cls.tool_names()]
    state_schema = _strip_titles(_inline(cls.State.model_json_schema())) if cls.State is not None else {}
    return EnvSpec(name=cls.name, domain=cls.domain, description=_summary(inspect.getdoc(cls) or ""),
                   class_name=cls.__name__, tools=tools, state_schema=state_schema)
