"""VitaBench (delivery, in-store) on a project-owned, in-process environment.

Every task embeds its own small database (stores or shops with products, the user's existing orders); `VitaEnv`
serves it through typed tools. Two scores per task, side by side because they disagree on purpose (an agent
that orders nothing can still talk its way past a lenient judge):
- `score` (deterministic): the final orders/reservations are the task's `required_orders`: same store, same
  products and quantities (reservations: same shop, time and party size), existing ones cancelled or kept as
  required. 1 or 0 per task.
- `metrics["rubric_judge"]`: VitaBench's own criterion, an LLM judge over the task's rubrics (1 iff all met).
The headline `score` is therefore labelled `order-match (non-official)`; the rubric score is reported beside it.
The gold orders are repaired where the data is broken (`gold_records`); every repaired task is listed (reason,
`repairs.json`) and scored with and without its repairs (`repaired_with_repairs`, `repaired_without_repairs`),
and a task whose repair leaves a gold order without products (any order would match it) is excluded, with the
count (`excluded_empty_gold`) and the ids in the reason.
Tool arguments are model-chosen: every bad call answers `{"error": {"kind", "message"}}`, never raises.
"""

from __future__ import annotations

import copy
import json
import math
import re
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from envfactory.agent.loop import run_episode
from envfactory.llm import ChatRequest, LLMClient, Message, ToolCall

from .base import (
    BenchmarkResult,
    CategoryScore,
    EvalContext,
    dir_checksum,
    episode_workers,
    idle_policy,
    mean_stderr,
    model_policy,
    pass_hat_k,
    trial_seed,
    unavailable,
)

CATEGORIES = ("delivery", "instore")
DATA_DIR = Path(__file__).resolve().parent / "data" / "vitabench"  # vendored tasks (MIT, see its LICENSE)
TIME_FMT = "%Y-%m-%d %H:%M:%S"


class ToolError(Exception):
    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def _parse_time(value) -> str | None:
    for fmt in (TIME_FMT, "%Y-%m-%d %H:%M"):
        try:
            return datetime.strptime(str(value).strip(), fmt).strftime(TIME_FMT)
        except ValueError:
            pass
    return None


def _arg_time(value: str, field: str) -> str:
    if (parsed := _parse_time(value)) is None:
        raise ToolError("invalid_arguments", f"{field} must look like '2025-01-31 18:00:00', got {value!r}")
    return parsed


# ---- tool schemas (OpenAI function format); arguments are validated against these same schemas
S, ID = {"type": "string"}, {"type": "string", "pattern": r"\S"}
LON, LAT = {"type": "number", "minimum": -180, "maximum": 180}, {"type": "number", "minimum": -90, "maximum": 90}
COUNT = {"type": "integer", "minimum": 1, "maximum": 99}


def _tool(name: str, desc: str, props: dict | None = None, required: tuple = ()) -> dict:
    return {"type": "function", "function": {"name": name, "description": desc, "parameters": {
        "type": "object", "properties": props or {}, "required": list(required), "additionalProperties": False}}}


def _items(attribute: bool) -> dict:
    props = {"product_id": ID, "quantity": COUNT} | ({"attribute": S} if attribute else {})
    return {"type": "array", "minItems": 1, "items": {"type": "object", "properties": props,
                                                      "required": ["product_id", "quantity"],
                                                      "additionalProperties": False}}


COMMON = [
    _tool("get_user_context", "The user's id, the current time, saved locations (with coordinates), the weather "
          "and the user's ordering history and preferences."),
    _tool("search_stores", "Stores whose name, tags or category match the keywords, best first.",
          {"keywords": S}, ("keywords",)),
    _tool("search_products", "Products (with their store) whose name, tags or store name match the keywords.",
          {"keywords": S}, ("keywords",)),
    _tool("get_store", "A store's details and every product it sells.", {"store_id": ID}, ("store_id",)),
    _tool("get_distance", "Straight-line distance in meters between two coordinates.",
          {"longitude1": LON, "latitude1": LAT, "longitude2": LON, "latitude2": LAT},
          ("longitude1", "latitude1", "longitude2", "latitude2")),
    _tool("list_orders", "All of the user's orders (and reservations), with their status."),
    _tool("pay_order", "Pay an unpaid order (or a reservation's deposit).", {"order_id": ID}, ("order_id",)),
    _tool("cancel_order", "Cancel an order or a reservation.", {"order_id": ID}, ("order_id",)),
]
TOOLS = {
    "delivery": COMMON + [
        _tool("create_delivery_order", "Create an unpaid delivery order from one store; an item's attribute is one "
              "of the product's attribute options. dispatch_time ('YYYY-MM-DD HH:MM:SS') defaults to now.",
              {"store_id": ID, "items": _items(True), "address": ID, "dispatch_time": S, "note": S},
              ("store_id", "items", "address")),
        _tool("modify_order_note", "Replace the note of an order.", {"order_id": ID, "note": S}, ("order_id", "note")),
    ],
    "instore": COMMON + [
        _tool("create_instore_order", "Buy vouchers/packages of one shop (an unpaid order).",
              {"store_id": ID, "items": _items(False)}, ("store_id", "items")),
        _tool("make_reservation", "Reserve a visit or a table at a shop that takes bookings or reservations; a "
              "shop with a book_price asks for that deposit (pay it with pay_order). time: 'YYYY-MM-DD HH:MM:SS'.",
              {"store_id": ID, "time": ID, "customer_count": COUNT}, ("store_id", "time", "customer_count")),
    ],
}
VALIDATORS = {t["function"]["name"]: Draft202012Validator(t["function"]["parameters"])
              for tools in TOOLS.values() for t in tools}


def _record(raw: dict) -> dict:
    """One order or reservation (the data's three shapes: order, book, reservation) in one flat shape."""
    if "reservation_id" in raw or "book_id" in raw:
        when = raw.get("reservation_time") or raw.get("book_time") or ""
        return {"id": str(raw.get("reservation_id") or raw.get("book_id")).strip(), "kind": "reservation",
                "store_id": str(raw.get("shop_id") or "").strip(), "status": raw.get("status") or "",
                "time": _parse_time(when) or str(when).strip(), "customer_count": int(raw.get("customer_count") or 1),
                "deposit": float(raw.get("book_price") or 0)}
    products = [{"product_id": str(p["product_id"]).strip(), "name": p.get("name", ""),
                 "price": float(p.get("price") or 0), "quantity": int(p.get("quantity") or 1),
                 "attribute": p.get("attributes") or p.get("attribute") or ""}
                for p in raw.get("products") or [] if isinstance(p, dict) and "product_id" in p]
    return {"id": str(raw["order_id"]).strip(), "kind": "order", "status": raw.get("status") or "",
            "store_id": str(raw.get("store_id") or raw.get("shop_id") or "").strip(), "products": products,
            "total_price": float(raw.get("total_price") or 0), "note": raw.get("note") or "",
            "address": (raw.get("location") or {}).get("address", ""), "dispatch_time": raw.get("dispatch_time") or ""}


class VitaEnv:
    """One task's database and the tools over it; duck-types `SandboxedEnv.call` for `run_episode`."""

    def __init__(self, task: dict, domain: str):
        env = task["environment"]
        self.task_id, self.domain, self.env = str(task["id"]), domain, env
        self.now = _parse_time(env.get("time")) or str(env.get("time", ""))
        self.schemas = {t["function"]["name"]: t for t in TOOLS[domain]}
        # The store dict's key is the canonical id (gold orders use it); a few stores' inner id differs: accept both.
        self.stores = {k.strip(): s for k, s in (env.get("stores") or env.get("shops") or {}).items()}
        self.alias = {str(s.get("store_id") or s.get("shop_id") or "").strip(): k for k, s in self.stores.items()}
        self.alias |= {k: k for k in self.stores}
        raws = [r for key in ("orders", "books", "reservations") for r in (env.get(key) or {}).values()]
        self.records = {r["id"]: r for r in map(_record, raws)}
        self.initial = copy.deepcopy(self.records)
        self._n = 0

    def call(self, tool: str, arguments: dict) -> dict:
        try:
            if tool not in self.schemas:
                raise ToolError("unknown_tool", f"unknown tool {tool!r}")
            if (err := best_match(VALIDATORS[tool].iter_errors(arguments))) is not None:
                raise ToolError("invalid_arguments", f"{'.'.join(map(str, err.absolute_path)) or 'arguments'}: "
                                                     f"{err.message}")
            return getattr(self, "_t_" + tool)(**arguments)
        except ToolError as e:
            return {"error": {"kind": e.kind, "message": str(e)}}
        except Exception as e:  # a bug of ours must not end the episode, but stays visible
            return {"error": {"kind": "internal_error", "message": f"{type(e).__name__}: {e}"}}

    # ---- lookups and views (whitelisted fields: the data's shop_type/product_type/target_reason name the answer)
    def _store(self, store_id: str) -> str:
        if store_id.strip() not in self.alias:
            raise ToolError("not_found", f"no store {store_id!r}")
        return self.alias[store_id.strip()]

    def _product(self, sid: str, pid: str) -> dict | None:
        return next((p for p in self.stores.get(sid, {}).get("products", [])
                     if str(p.get("product_id", "")).strip() == pid.strip()), None)

    def _record_of(self, order_id: str, kind: str | None = None) -> dict:
        if (record := self.records.get(order_id.strip())) is None or kind not in (None, record["kind"]):
            raise ToolError("not_found", f"no {kind or 'order or reservation'} {order_id!r}")
        return record

    def _store_view(self, sid: str, products: bool = False) -> dict:
        s, loc = self.stores[sid], self.stores[sid].get("location") or {}
        view = {"store_id": sid, "name": s.get("name") or s.get("shop_name"), "score": s.get("score"),
                "tags": s.get("tags", []), "address": loc.get("address"), "longitude": loc.get("longitude"),
                "latitude": loc.get("latitude")}
        view |= {k: s[k] for k in ("category", "enable_book", "enable_reservation", "book_price", "business_hours",
                                   "description", "special_note") if k in s}
        if products:
            view["products"] = [self._product_view(sid, p) for p in s.get("products", [])]
        return view

    def _product_view(self, sid: str, p: dict) -> dict:
        s = self.stores[sid]
        view = {"product_id": str(p.get("product_id", "")).strip(), "name": p.get("name"), "price": p.get("price"),
                "tags": p.get("tags", []), "store_id": sid, "store_name": s.get("name") or s.get("shop_name")}
        return view | ({"attributes": p["attributes"]} if p.get("attributes") else {})

    @staticmethod
    def _rank(keywords: str, entries: list[tuple[str, dict]]) -> list[dict]:
        # Token overlap, best first; each task's database is small, so no match lists everything rather than nothing.
        words = set(re.findall(r"\w+", keywords.lower()))
        scored = [(len(words & set(re.findall(r"\w+", text.lower()))), i) for i, (text, _) in enumerate(entries)]
        hits = sorted((s for s in scored if s[0] > 0), key=lambda s: (-s[0], s[1])) or scored
        return [entries[i][1] for _, i in hits[:20]]

    def _create(self, prefix: str, record: dict) -> dict:
        self._n += 1
        record["id"] = f"{self.task_id}-{prefix}{self._n:02d}"
        self.records[record["id"]] = record
        return {"created": copy.deepcopy(record)}

    def _order(self, store_id: str, items: list[dict], prefix: str, **extra) -> dict:
        sid, lines = self._store(store_id), []
        for i, item in enumerate(items):
            p = self._product(sid, item["product_id"])
            if p is None:
                raise ToolError("not_found", f"items.{i}: store {sid} sells no product {item['product_id']!r}")
            attribute, options = item.get("attribute", "").strip(), p.get("attributes") or []
            if attribute and not (attribute := next((o for o in options if o.lower() == attribute.lower()), "")):
                raise ToolError("invalid_arguments", f"items.{i}.attribute must be one of {options}")
            lines.append({"product_id": item["product_id"].strip(), "name": p.get("name", ""),
                          "price": float(p.get("price") or 0), "quantity": int(item["quantity"]),
                          "attribute": attribute})
        return self._create(prefix, {"kind": "order", "status": "unpaid", "store_id": sid, "products": lines,
                                     "total_price": round(sum(x["price"] * x["quantity"] for x in lines), 2)} | extra)

    # ---- tools
    def _t_get_user_context(self) -> dict:
        return {"user_id": self.env.get("user_id"), "current_time": self.now, "locations": self.env.get("location"),
                "weather": self.env.get("weather"), "history": self.env.get("user_historical_behaviors")}

    def _t_search_stores(self, keywords: str) -> dict:
        views = [self._store_view(sid) for sid in self.stores]
        return {"stores": self._rank(keywords, [(" ".join(map(str, [v["name"], v.get("category", ""), *v["tags"]])), v)
                                                for v in views])}

    def _t_search_products(self, keywords: str) -> dict:
        views = [self._product_view(sid, p) for sid, s in self.stores.items() for p in s.get("products", [])]
        return {"products": self._rank(keywords, [(" ".join(map(str, [v["name"], v["store_name"], *v["tags"]])), v)
                                                  for v in views])}

    def _t_get_store(self, store_id: str) -> dict:
        return {"store": self._store_view(self._store(store_id), products=True)}

    def _t_get_distance(self, longitude1, latitude1, longitude2, latitude2) -> dict:
        if not all(map(math.isfinite, (longitude1, latitude1, longitude2, latitude2))):  # NaN passes the bounds
            raise ToolError("invalid_arguments", "coordinates must be finite numbers")
        lon1, lat1, lon2, lat2 = map(math.radians, (longitude1, latitude1, longitude2, latitude2))
        a = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
        return {"meters": round(2 * 6371000 * math.asin(math.sqrt(min(1.0, a))))}

    def _t_list_orders(self) -> dict:
        return {"orders": copy.deepcopy(list(self.records.values()))}

    def _t_pay_order(self, order_id: str) -> dict:
        if (record := self._record_of(order_id))["status"] != "unpaid":
            raise ToolError("invalid_state", f"{record['id']} is {record['status']!r}, not 'unpaid'")
        record["status"] = "paid"
        return {"paid": record["id"]}

    def _t_cancel_order(self, order_id: str) -> dict:
        if (record := self._record_of(order_id))["status"] == "cancelled":
            raise ToolError("invalid_state", f"{record['id']} is already cancelled")
        record["status"] = "cancelled"
        return {"cancelled": record["id"]}

    def _t_modify_order_note(self, order_id: str, note: str) -> dict:
        if (record := self._record_of(order_id, "order"))["status"] == "cancelled":
            raise ToolError("invalid_state", f"{record['id']} is cancelled")
        record["note"] = note
        return {"modified": record["id"], "note": note}

    def _t_create_delivery_order(self, store_id, items, address, dispatch_time=None, note="") -> dict:
        when = self.now if dispatch_time is None else _arg_time(dispatch_time, "dispatch_time")
        if when < self.now:
            raise ToolError("invalid_arguments", f"dispatch_time {when} is before the current time {self.now}")
        return self._order(store_id, items, "D", note=note, address=address.strip(), dispatch_time=when)

    def _t_create_instore_order(self, store_id, items) -> dict:
        return self._order(store_id, items, "S")

    def _t_make_reservation(self, store_id: str, time: str, customer_count: int) -> dict:
        shop = self.stores[sid := self._store(store_id)]
        if not (shop.get("enable_book") or shop.get("enable_reservation")):
            raise ToolError("invalid_state", f"store {sid} takes no bookings or reservations")
        deposit = float(shop.get("book_price") or 0) if shop.get("enable_book") else 0.0
        return self._create("R", {"kind": "reservation", "store_id": sid, "time": _arg_time(time, "time"),
                                  "status": "unpaid" if deposit > 0 else "confirmed",
                                  "customer_count": int(customer_count), "deposit": deposit})


# ---- gold and the deterministic metric

def raw_gold(task: dict, env: VitaEnv) -> list[dict]:
    """`required_orders` as the data has them, only normalized (ids without stray spaces, a store named by its
    inner id mapped to its key): no repair. Every task's expected states list the same orders (their union)."""
    states = task["evaluation_criteria"].get("expected_states") or []
    out: dict[str, dict] = {}
    for raw in (o for s in states for o in s.get("required_orders") or []):
        rec = _record(raw)
        rec["store_id"] = env.alias.get(rec["store_id"], rec["store_id"])
        out.setdefault(rec["id"], rec)
    return list(out.values())


def gold_records(task: dict, env: VitaEnv, repairs: list[str] | None = None) -> list[dict]:
    """`required_orders`, normalized (`raw_gold`) and repaired where the data is broken, each repair the narrowest
    one that fixes it, and each described in `repairs` when given: a few orders are nested in another order's
    products (lifted out); two tasks swap ids (the new order under the existing one's id and vice versa: the
    store decides); a few orders name a store that does not sell their products while one other store does (the
    product id wins: moved there); products absent from the task database are dropped and their order is
    matched leniently (see `_fits`). Every task's expected states list the same orders, so their union is the
    final state."""
    note = repairs.append if repairs is not None else (lambda _: None)
    states = task["evaluation_criteria"].get("expected_states") or []
    queue = [o for s in states for o in s.get("required_orders") or []]
    out: dict[str, dict] = {}
    while queue:
        raw = queue.pop(0)
        nested = [p for p in raw.get("products") or [] if isinstance(p, dict) and "order_id" in p]
        for p in nested:
            note(f"order {str(p['order_id']).strip()} lifted out of order {str(raw.get('order_id', '')).strip()}'s "
                 "products")
        queue += nested
        rec = _record(raw)
        rec["store_id"] = env.alias.get(rec["store_id"], rec["store_id"])
        out.setdefault(rec["id"], rec)
    freed = {}
    for rec in out.values():
        if rec["kind"] == "order" and (before := env.initial.get(rec["id"])) and rec["store_id"] != before["store_id"]:
            note(f"order {rec['id']} at store {rec['store_id']} is a new order under an existing order's id")
            freed[rec["id"]], rec["id"] = before, rec["id"] + "~new"
    for rec in out.values():
        if rec["kind"] == "order" and rec["id"] not in env.initial:
            for rid, before in list(freed.items()):
                if (before["store_id"], _basket(before)) == (rec["store_id"], _basket(rec)):
                    note(f"order {rec['id']} is the existing order {rid} (same store and basket): takes its id")
                    rec["id"] = rid
                    del freed[rid]
                    break

    def sold(sid: str, pid: str) -> bool:
        return env._product(sid, pid) is not None

    for rec in out.values():
        if rec["kind"] == "order" and rec["id"] not in env.initial:
            if rec["products"] and not any(sold(rec["store_id"], p["product_id"]) for p in rec["products"]):
                homes = {s for p in rec["products"] for s in env.stores if sold(s, p["product_id"])}
                if len(homes) == 1:
                    home = homes.pop()
                    note(f"order {rec['id']} moved from store {rec['store_id']} (which sells none of its products) "
                         f"to {home}")
                    rec["store_id"] = home
            kept = [p for p in rec["products"] if sold(rec["store_id"], p["product_id"])]
            if len(kept) < len(rec["products"]):
                gone = sorted({p["product_id"] for p in rec["products"]} - {p["product_id"] for p in kept})
                note(f"order {rec['id']}: products {', '.join(gone)} absent from the task database dropped "
                     f"({len(kept)} left; matched leniently)")
            rec["lenient"], rec["products"] = len(kept) < len(rec["products"]), kept
    return list(out.values())


def empty_gold_orders(gold: list[dict], env: VitaEnv) -> list[str]:
    """The new, live gold orders without a product: any order at their store would match them."""
    return [r["id"] for r in gold if r["kind"] == "order" and r["id"] not in env.initial and not _cancelled(r)
            and not r["products"]]


def _cancelled(record: dict) -> bool:
    return record["status"] == "cancelled"


def _basket(record: dict) -> Counter:
    basket: Counter = Counter()
    for p in record.get("products", []):
        basket[p["product_id"]] += p["quantity"]
    return basket


def _fits(want: dict, got: dict) -> bool:
    if (want["kind"], want["store_id"]) != (got["kind"], got["store_id"]):
        return False
    if want["kind"] == "reservation":
        return (want["time"], want["customer_count"]) == (got["time"], got["customer_count"])
    # lenient: the gold lost products to data errors, so the agent may hold more than the rest (never fewer)
    return _basket(want) <= _basket(got) if want.get("lenient") else _basket(want) == _basket(got)


def _assign(want: list[dict], got: list[dict]) -> bool:
    if not want:
        return not got  # an extra live order is a wrong order
    return any(_fits(want[0], g) and _assign(want[1:], got[:i] + got[i + 1:]) for i, g in enumerate(got))


def order_match(env: VitaEnv, gold: list[dict]) -> float:
    """1.0 iff the final state is the required one: each existing order cancelled or kept as the gold says, and
    the live new orders one-to-one with the gold's (`_fits`). Payment status is not compared (the gold leaves
    orders unpaid the user never asked to leave unpaid, and has statuses no tool produces, e.g. 'delivered'),
    nor free text (notes, attributes, addresses: the rubric judge reads those). Orders created and cancelled
    again are ignored, the agent's and the gold's alike."""
    expected = {r["id"]: r for r in gold}
    if any(_cancelled(expected.get(rid, before)) != _cancelled(env.records[rid])
           for rid, before in env.initial.items()):
        return 0.0
    want_new = [r for r in gold if r["id"] not in env.initial and not _cancelled(r)]
    got_new = [r for rid, r in env.records.items() if rid not in env.initial and not _cancelled(r)]
    return 1.0 if _assign(want_new, got_new) else 0.0


def oracle_policy(task: dict, env: VitaEnv):
    """Replays the gold: the first turn cancels and creates, the second pays what the gold paid, then stops."""
    plan: list[tuple[str, dict, dict]] = []
    for r in (r for r in gold_records(task, env) if not (_cancelled(r) and r["id"] not in env.initial)):
        before = env.initial.get(r["id"])
        if before is not None and _cancelled(r) and not _cancelled(before):
            plan.append(("cancel_order", {"order_id": r["id"]}, r))
        elif before is None and r["kind"] == "reservation":
            plan.append(("make_reservation", {"store_id": r["store_id"], "time": r["time"],
                                              "customer_count": r["customer_count"]}, r))
        elif before is None:  # (a gold order without products is excluded from scoring: `empty_gold_orders`)
            items = [{"product_id": p, "quantity": q} for p, q in _basket(r).items()]
            address = r["address"] or (env.env.get("location") or [{}])[0].get("address", "home")
            plan.append(("create_delivery_order", {"store_id": r["store_id"], "items": items, "address": address}, r)
                        if env.domain == "delivery" else
                        ("create_instore_order", {"store_id": r["store_id"], "items": items}, r))

    def act(messages: list[Message], tools: list[dict]) -> Message:
        turn = sum(m.role == "assistant" for m in messages)
        if turn == 0 and plan:
            return Message(role="assistant", tool_calls=[ToolCall(id=f"oracle_{i}", name=name, arguments=args)
                                                         for i, (name, args, _) in enumerate(plan)])
        pays = []
        for m in messages if turn == 1 else []:
            if m.role == "tool" and (m.tool_call_id or "").startswith("oracle_"):
                created, gold = json.loads(m.content).get("created"), plan[int(m.tool_call_id[7:])][2]
                if created and created["status"] == "unpaid" and gold["status"] not in ("unpaid", "unconsumed"):
                    pays.append(ToolCall(id=f"pay_{len(pays)}", name="pay_order",
                                         arguments={"order_id": created["id"]}))
        return Message(role="assistant", tool_calls=pays) if pays else \
            Message(role="assistant", content="Everything you asked for is done.")

    return act


# ---- rubric judge (VitaBench's full-trajectory variant: one call per trial)

JUDGE_SCHEMA = {"type": "object", "required": ["verdicts"], "properties": {"verdicts": {"type": "array", "items": {
    "type": "object", "required": ["rubric_idx", "met"], "properties": {
        "rubric_idx": {"type": "integer"}, "met": {"type": "boolean"}, "justification": {"type": "string"}}}}}}


def rubrics(task: dict) -> list[str]:
    crit = task["evaluation_criteria"]
    found = [r for s in crit.get("expected_states") or [] for r in s.get("state_rubrics") or []]
    return list(dict.fromkeys(found + list(crit.get("overall_rubrics") or [])))


def judge_rubrics(client: LLMClient, task: dict, messages: list[Message], env: VitaEnv) -> float:
    """Fraction of the rubrics the judge marks met; a rubric it skips, or an unparsable answer, is not met."""
    if not (items := rubrics(task)):
        return 1.0
    lines = [f"[{i}] {m.role}: {m.content[:600] if m.role == 'tool' else m.content} " + " ".join(
        f"{c.name}({json.dumps(c.arguments, ensure_ascii=False)})" for c in m.tool_calls)
        for i, m in enumerate(messages) if m.role != "system"]
    prompt = (f"Current time: {env.now}\nThe user's goal: {task['instructions']}\n\n<conversation>\n"
              + "\n".join(x.rstrip() for x in lines) + "\n</conversation>\n\n<final_orders>\n"
              + json.dumps(list(env.records.values()), ensure_ascii=False) + "\n</final_orders>\n\n<rubrics>\n"
              + "\n".join(f"{i}. {r}" for i, r in enumerate(items)) + "\n</rubrics>")
    system = ("You grade an assistant's handling of a user's request. For each rubric decide whether the "
              "conversation and the final orders meet it. Reply with JSON: {\"verdicts\": [{\"rubric_idx\": <int>, "
              "\"met\": <bool>, \"justification\": <str>}]}.")
    text = client.chat(ChatRequest(model=client.cfg.model, temperature=0.0, max_tokens=2048, json_schema=JUDGE_SCHEMA,
                                   metadata={"step": "vitabench_judge", "task": task["id"]},
                                   messages=[Message(role="system", content=system),
                                             Message(role="user", content=prompt)])).content
    try:
        verdicts = json.loads(text[text.find("{"):text.rfind("}") + 1]).get("verdicts") or []
        met = {int(str(v.get("rubric_idx")).split("_")[-1]) for v in verdicts if v.get("met") is True}
    except (ValueError, AttributeError):
        met = set()
    return len(met & set(range(len(items)))) / len(items)


class VitaBench:
    version = "2"  # 2: repaired tasks scored with and without repairs; tasks with an emptied gold order excluded

    def run(self, ctx: EvalContext) -> BenchmarkResult:
        t0, root = time.perf_counter(), Path(ctx.data_dir) if ctx.data_dir else DATA_DIR
        wanted = ctx.categories or list(CATEGORIES)
        if not root.is_dir():
            return unavailable(self.name, self.version, ctx.policy.name, f"VitaBench data not found at {root}")
        if unknown := [c for c in wanted if c not in CATEGORIES]:
            return unavailable(self.name, self.version, ctx.policy.name,
                               f"unknown categories {unknown}; VitaBench has {list(CATEGORIES)}")
        notes = [f"no data file for {c}" for c in wanted if not (root / c / "tasks_en.json").is_file()]
        if not (wanted := [c for c in wanted if (root / c / "tasks_en.json").is_file()]):
            return unavailable(self.name, self.version, ctx.policy.name, "; ".join(notes))
        judge, user_sim = (LLMClient(cfg, cache_dir=ctx.cache_dir, cache_mode="use" if ctx.cache_dir else "off")
                           if cfg else None for cfg in (ctx.judge, ctx.user_simulator))
        if user_sim is None:
            notes.append("no user simulator: each task's instruction text is the single user message")
        if judge is None:
            notes.append("no judge configured: rubric_judge omitted")
        idle = idle_policy() if ctx.policy.kind == "idle" else None  # a model policy is built per trial
        (log_dir := Path(ctx.work_dir) / "vitabench").mkdir(parents=True, exist_ok=True)
        categories, repaired_all, excluded_all = [], {}, {}
        workers = episode_workers(ctx.policy)
        for cat in wanted:
            tasks = json.loads((root / cat / "tasks_en.json").read_text())[:ctx.limit]
            scores, judged, successes, with_repairs, without_repairs = [], [], [], [], []
            repairs_of, empty_of = {}, {}
            for task in tasks:
                repairs_of[task["id"]] = []
                env = VitaEnv(task, cat)
                if empty := empty_gold_orders(gold_records(task, env, repairs_of[task["id"]]), env):
                    empty_of[task["id"]] = empty
            # every trial of every kept task at once, each with its own VitaEnv; gathered in task/trial order
            jobs = [(task, trial) for task in tasks if task["id"] not in empty_of for trial in range(ctx.num_trials)]
            with ThreadPoolExecutor(max_workers=workers) as pool:
                done = iter(pool.map(lambda j, c=cat: self._trial(j[0], c, ctx, self._agent(ctx, idle, j[0], j[1]),
                                                           user_sim, judge), jobs))
            with open(log_dir / f"{cat}.jsonl", "w") as log:
                for task in tasks:
                    repairs = repairs_of[task["id"]]
                    if empty := empty_of.get(task["id"]):
                        excluded_all[f"{cat} {task['id']}"] = empty
                        log.write(json.dumps({"task": task["id"], "excluded": "repaired gold order without "
                                              f"products: {', '.join(empty)}", "repairs": repairs}) + "\n")
                        continue
                    trials = [next(done) for _ in range(ctx.num_trials)]
                    for i, (score, frac, info) in enumerate(trials):
                        log.write(json.dumps({"task": task["id"], "trial": i, "score": score, "rubric": frac}
                                             | info | ({"repairs": repairs} if repairs else {})) + "\n")
                        judged += [frac] if frac is not None else []
                    scores.append(sum(t[0] for t in trials) / len(trials))
                    successes.append((len(trials), sum(t[0] == 1.0 for t in trials)))
                    if repairs:
                        repaired_all[f"{cat} {task['id']}"] = repairs
                        with_repairs.append(scores[-1])
                        without_repairs.append(sum(t[2]["score_without_repairs"] for t in trials) / len(trials))
            mean, stderr = mean_stderr(scores)
            metrics = {"rubric_judge": sum(f == 1.0 for f in judged) / len(judged),
                       "rubric_fraction": sum(judged) / len(judged)} if judged else {}
            metrics |= {"repaired_tasks": float(len(with_repairs)),
                        "excluded_empty_gold": float(len(tasks) - len(scores))}
            if with_repairs:  # the repaired tasks' order match against their repaired and their original gold
                metrics |= {"repaired_with_repairs": sum(with_repairs) / len(with_repairs),
                            "repaired_without_repairs": sum(without_repairs) / len(without_repairs)}
            pass_k = {str(k): pass_hat_k(successes, k) for k in range(1, ctx.num_trials + 1)} \
                if ctx.num_trials > 1 else {}
            categories.append(CategoryScore(category=cat, score=mean, n=len(scores), stderr=stderr, pass_k=pass_k,
                                            metrics=metrics, label="order-match (non-official)"))
        (log_dir / "repairs.json").write_text(json.dumps({"repaired": repaired_all, "excluded": excluded_all},
                                                         indent=1, ensure_ascii=False))
        notes.insert(0, "score = order-match (non-official)" + (
            ", VitaBench's rubric judge beside it (metrics rubric_judge, rubric_fraction)" if judge else ""))
        if repaired_all:
            notes.append(f"{len(repaired_all)} tasks scored on repaired gold data, each also scored without its "
                         "repairs (metrics repaired_with_repairs, repaired_without_repairs; repairs.json): "
                         + ", ".join(repaired_all))
        if excluded_all:
            notes.append(f"{len(excluded_all)} tasks excluded: their repaired gold order has no products left, so "
                         "any order would match it (metric excluded_empty_gold): " + ", ".join(excluded_all))
        checksum = dir_checksum(root)
        return BenchmarkResult(benchmark=self.name, status="scored", reason="; ".join(notes), policy=ctx.policy.name,
                               categories=categories, adapter_version=self.version, data_version=checksum[:12],
                               data_checksum=checksum, judge_model=ctx.judge.model if ctx.judge else None,
                               user_sim_model=ctx.user_simulator.model if ctx.user_simulator else None,
                               wall_s=round(time.perf_counter() - t0, 3))

    @staticmethod
    def _agent(ctx, idle, task, trial):
        """The policy of one trial: the model sampled with the trial's own seed; None = the task's oracle."""
        if ctx.policy.kind == "model":
            return model_policy(ctx.policy, trial_seed(ctx.seed, str(task["id"]), trial))
        return idle

    @staticmethod
    def _trial(task, cat, ctx, agent, user_sim, judge) -> tuple[float, float | None, dict]:
        env = VitaEnv(task, cat)
        system = Message(role="system", content=(
            f"You are a {'food-delivery' if cat == 'delivery' else 'in-store services (vouchers, bookings)'} "
            f"assistant. The current time is {env.now}. Help the user with the tools: find what fits their needs, "
            f"then create, pay, modify or cancel orders as they ask."))
        opening, reply = task["instructions"], None
        if user_sim is not None:  # the project's simulator: the instruction is its goal, the profile what it knows
            from envfactory.querygen.records import QueryRecord
            from envfactory.querygen.user_sim import UserSimulator

            profile = (task.get("user_scenario") or {}).get("user_profile") or {}
            sim = UserSimulator(user_sim, QueryRecord(
                chain_id=str(task["id"]), explicit=task["instructions"], refined=task["instructions"], ambiguity=0,
                refiner="rule", determined=True, user_values=profile))
            opening, reply = sim.first_message(), sim.reply
        ep = run_episode(agent or oracle_policy(task, env), {"vitabench": env},
                         {n: ("vitabench", n) for n in env.schemas}, list(env.schemas.values()),
                         [system, Message(role="user", content=opening)], ctx.max_turns, user_reply=reply)
        frac = judge_rubrics(judge, task, ep.messages, env) if judge is not None else None
        return order_match(env, gold_records(task, env)), frac, {
            "score_without_repairs": order_match(env, raw_gold(task, env)), "turns": ep.turns,
            "calls": len(ep.calls), "stopped_by": ep.stopped_by}
