"""Static HTML viewer of trajectories (`trajectories.parquet` -> one self-contained page).

Everything shown comes from model or tool output, so every value goes through `html.escape`;
the page has inline CSS only (no JavaScript, no external resources) so it opens anywhere, offline.
"""

from __future__ import annotations

import json
from collections import Counter
from html import escape
from pathlib import Path
from typing import Any

from .io import atomic_write_text
from .querygen.records import TrajectoryRecord

CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5em; background: #fafafa; color: #222; }
header { border-bottom: 2px solid #333; margin-bottom: 1em; }
.counts span { display: inline-block; margin-right: 1.5em; }
.trajectory { background: #fff; border: 1px solid #ccc; border-radius: 6px; padding: 1em; margin: 1em 0; }
.trajectory.unmatched { border-left: 6px solid #c62828; }
.trajectory.matched { border-left: 6px solid #2e7d32; }
.meta td { padding: 0 1em 0 0; }
.msg { margin: .5em 0; padding: .5em; border-radius: 4px; }
.user-request { background: #e3f2fd; }
.assistant { background: #f3e5f5; }
.final { background: #e8f5e9; }
.tool-call { background: #fff8e1; border: 1px dashed #f9a825; margin: .3em 0; padding: .3em; }
.tool-result { background: #eceff1; }
.tool-error { background: #ffebee; border: 1px solid #c62828; }
.error-kind { color: #c62828; font-weight: bold; }
pre { white-space: pre-wrap; word-break: break-word; margin: .2em 0; font-size: 90%; }
table.state-diff { border-collapse: collapse; margin-top: .5em; }
table.state-diff td, table.state-diff th { border: 1px solid #bbb; padding: .2em .5em; vertical-align: top; }
.op-added { color: #2e7d32; } .op-removed { color: #c62828; } .op-changed { color: #ef6c00; }
"""


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)


def _json_or_text(text: Any) -> Any:
    """Tool arguments/outputs are JSON strings, but a model may emit malformed ones: show them raw."""
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def _pre(value: Any) -> str:
    return f"<pre>{escape(value if isinstance(value, str) else _pretty(value))}</pre>"


def _tool_call(call: dict) -> str:
    fn = call.get("function") or {}
    return (f'<div class="tool-call" data-call-id="{escape(str(call.get("id", "")))}">'
            f'<span class="tool-name">{escape(str(fn.get("name", "?")))}</span>'
            f'{_pre(_json_or_text(fn.get("arguments", "")))}</div>')


def _tool_result(msg: dict) -> str:
    result = _json_or_text(msg.get("content", ""))
    call_id = escape(str(msg.get("tool_call_id", "")))
    if isinstance(result, dict) and "error" in result:
        err = result["error"] if isinstance(result["error"], dict) else {"message": result["error"]}
        return (f'<div class="msg tool-result tool-error" data-call-id="{call_id}">'
                f'<span class="error-kind">error: {escape(str(err.get("kind", "unknown")))}</span>'
                f'{_pre(err.get("message", ""))}</div>')
    shown = result["ok"] if isinstance(result, dict) and "ok" in result else result
    return f'<div class="msg tool-result" data-call-id="{call_id}">{_pre(shown)}</div>'


def _messages(messages: list[dict]) -> str:
    # The final answer is the last assistant message without tool calls; mark it separately.
    final_idx = max((i for i, m in enumerate(messages) if m.get("role") == "assistant" and not m.get("tool_calls")),
                    default=None)
    parts = []
    for i, m in enumerate(messages):
        role, content = m.get("role"), m.get("content") or ""
        if role == "system":
            parts.append(f'<details class="msg system"><summary>system prompt</summary>{_pre(content)}</details>')
        elif role == "user":
            parts.append(f'<div class="msg user-request"><b>user</b>{_pre(content)}</div>')
        elif role == "assistant":
            cls = "final" if i == final_idx else "assistant"
            calls = "".join(_tool_call(c) for c in m.get("tool_calls") or [])
            text = _pre(content) if content else ""
            parts.append(f'<div class="msg {cls}"><b>assistant</b>{text}{calls}</div>')
        elif role == "tool":
            parts.append(_tool_result(m))
    return "".join(parts)


def _state_diff(diff: dict[str, list[dict]]) -> str:
    rows = []
    for env, entries in diff.items():
        for e in entries:
            op = str(e.get("op", ""))
            path = "/".join(str(p) for p in e.get("path", []))
            cells = [escape(env), f'<span class="op-{escape(op)}">{escape(op)}</span>', escape(path),
                     _pre(e.get("before")) if "before" in e else "", _pre(e.get("after")) if "after" in e else ""]
            rows.append('<tr class="diff-row">' + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    if not rows:
        return '<p class="state-diff-empty">no state change</p>'
    head = "".join(f"<th>{h}</th>" for h in ("env", "op", "path", "before", "after"))
    return f'<table class="state-diff"><tr>{head}</tr>{"".join(rows)}</table>'


def _trajectory(r: TrajectoryRecord) -> str:
    scen = ", ".join(f"{env}:{sid}" for env, sid in r.scenarios.items()) or ", ".join(r.envs)
    meta = [("id", r.traj_id), ("chain", r.chain_id), ("envs / scenarios", scen), ("source", r.source),
            ("split", r.split), ("ambiguity", r.ambiguity), ("matched", r.matched)]
    meta_rows = "".join(f"<tr><td>{escape(k)}</td><td>{escape(str(v))}</td></tr>" for k, v in meta)
    status = "matched" if r.matched else "unmatched"
    return (f'<section class="trajectory {status}" id="traj-{escape(r.traj_id)}">'
            f'<h2>{escape(r.traj_id)}</h2><table class="meta">{meta_rows}</table>'
            f'<div class="messages">{_messages(r.messages)}</div>'
            f'<h3>state diff</h3>{_state_diff(r.state_diff)}</section>')


def render_html(records: list[TrajectoryRecord], title: str) -> str:
    def counts(field: str) -> str:
        c = Counter(getattr(r, field) for r in records)
        return ", ".join(f"{escape(str(k))}={v}" for k, v in sorted(c.items()))

    summary = (f'<div class="counts" id="counts"><span>trajectories: {len(records)}</span>'
               f'<span>by source: {counts("source")}</span><span>by split: {counts("split")}</span>'
               f'<span>matched: {sum(r.matched for r in records)}/{len(records)}</span></div>')
    body = "".join(_trajectory(r) for r in records)
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f'<style>{CSS}</style></head><body><header><h1>{escape(title)}</h1>{summary}</header>'
            f'<main>{body}</main></body></html>\n')


def write_view(parquet_path: str | Path, out_html: str | Path, limit: int = 200) -> Path:
    import pyarrow.parquet as pq

    parquet_path = Path(parquet_path)
    table = pq.read_table(parquet_path)
    # Slice before converting so a large file does not get fully materialised as Python dicts.
    rows = table.slice(0, limit).to_pylist() if limit is not None else table.to_pylist()
    records = [TrajectoryRecord.from_row(row) for row in rows]
    title = f"{parquet_path.name}: {len(records)} of {table.num_rows} trajectories"
    return atomic_write_text(out_html, render_html(records, title))
