"""Fields of JSON schemas and values of scenarios: the raw material of tool dependencies."""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any, Iterator

from pydantic import BaseModel

ARRAY = "[]"


class Field(BaseModel):
    path: list[str]  # keys from the output root; "[]" steps into array items
    name: str
    type: str        # JSON type of the leaf ("string", "integer", "number", "boolean", "array", "object", "any")
    description: str = ""


def _type_of(schema: dict) -> str:
    t = schema.get("type")
    if isinstance(t, list):
        t = next((x for x in t if x != "null"), "any")
    if t is None:
        options = schema.get("anyOf") or schema.get("oneOf") or []
        types = [_type_of(o) for o in options if o.get("type") != "null"]
        t = types[0] if types else ("string" if "enum" in schema else "any")
    return t


def _unwrap(schema: dict) -> dict:
    for key in ("anyOf", "oneOf"):
        if key in schema:
            non_null = [o for o in schema[key] if o.get("type") != "null"]
            if len(non_null) == 1:
                return {**non_null[0], **{k: v for k, v in schema.items() if k != key}}
    return schema


def output_fields(schema: dict, path: tuple = (), depth: int = 0) -> Iterator[Field]:
    """Every named leaf or object field of an output schema (arrays of objects are walked)."""
    schema = _unwrap(schema or {})
    if depth > 6:
        return
    t = _type_of(schema)
    if t == "array" and isinstance(schema.get("items"), dict):
        yield from output_fields(schema["items"], (*path, ARRAY), depth + 1)
        return
    if t == "object" or "properties" in schema:
        for name, sub in (schema.get("properties") or {}).items():
            sub = _unwrap(sub)
            st = _type_of(sub)
            yield Field(path=[*path, name], name=name, type=st, description=sub.get("description", ""))
            if st in ("object", "array"):
                yield from output_fields(sub, (*path, name), depth + 1)


def tokens(name: str) -> list[str]:
    return [t for t in re.split(r"[_\W]+", name.lower()) if t]


def value_pools(scenario: Any, limit: int = 200) -> dict[str, list]:
    """field name -> distinct scalar values found anywhere in a scenario (insertion order, capped)."""
    pools: dict[str, dict] = defaultdict(dict)

    def walk(node: Any, key: str | None) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, k)
        elif isinstance(node, list):
            for v in node:
                walk(v, key)
        elif key is not None and isinstance(node, (str, int, float)) and not isinstance(node, bool):
            pool = pools[key]
            if len(pool) < limit:
                pool.setdefault(node, None)

    walk(scenario, None)
    return {k: list(v) for k, v in pools.items()}
