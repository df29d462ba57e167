"""Distribution warehouse: SKUs stored in bins, suppliers, purchase orders, bin transfers and pick lists."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Literal

from pydantic import BaseModel, Field

from envfactory.env import Environment, ToolFailure

Zone = Literal["ambient", "chilled", "hazmat"]
Category = Literal["beverages", "snacks", "packaging", "cleaning", "chemicals", "dairy", "stationery", "electrical"]
POStatus = Literal["open", "partially_received", "received", "cancelled"]
PickStatus = Literal["open", "picked", "cancelled"]


# --------------------------------------------------------------------------- state


class Supplier(BaseModel):
    supplier_id: str
    name: str
    city: str
    email: str
    lead_time_days: int
    min_order_value: float = 0.0


class Bin(BaseModel):
    bin_id: str
    zone: Zone
    capacity: int


class Sku(BaseModel):
    sku: str
    name: str
    category: Category
    unit_of_measure: str
    storage_zone: Zone
    supplier_id: str
    unit_cost: float
    reorder_point: int
    reorder_quantity: int
    locations: dict[str, int] = Field(default_factory=dict)


class POLine(BaseModel):
    sku: str
    quantity_ordered: int
    quantity_received: int = 0
    unit_cost: float


class PurchaseOrder(BaseModel):
    po_id: str
    supplier_id: str
    status: POStatus = "open"
    created_on: str
    expected_on: str
    lines: list[POLine]
    total_cost: float


class Pick(BaseModel):
    bin_id: str
    quantity: int


class PickLine(BaseModel):
    sku: str
    quantity: int
    picks: list[Pick]


class PickList(BaseModel):
    pick_list_id: str
    order_reference: str
    status: PickStatus = "open"
    created_on: str
    picked_on: str | None = None
    lines: list[PickLine]


class Transfer(BaseModel):
    transfer_id: str
    sku: str
    from_bin_id: str
    to_bin_id: str
    quantity: int
    date: str


class State(BaseModel):
    today: str
    warehouse_name: str
    suppliers: dict[str, Supplier]
    bins: dict[str, Bin]
    skus: dict[str, Sku]
    purchase_orders: dict[str, PurchaseOrder] = Field(default_factory=dict)
    pick_lists: dict[str, PickList] = Field(default_factory=dict)
    transfers: dict[str, Transfer] = Field(default_factory=dict)
    next_po_number: int = 1
    next_pick_list_number: int = 1
    next_transfer_number: int = 1


# --------------------------------------------------------------------------- outputs


class SkuSummary(BaseModel):
    sku: str
    name: str
    category: str
    storage_zone: str
    on_hand: int
    available: int


class BinStock(BaseModel):
    bin_id: str
    quantity: int
    allocated: int


class SkuDetail(BaseModel):
    sku: str
    name: str
    category: str
    unit_of_measure: str
    storage_zone: str
    supplier_id: str
    unit_cost: float
    reorder_point: int
    reorder_quantity: int
    on_hand: int
    allocated: int
    available: int
    on_order: int
    locations: list[BinStock]


class BinContent(BaseModel):
    sku: str
    quantity: int


class BinView(BaseModel):
    bin_id: str
    zone: str
    capacity: int
    used: int
    free: int
    contents: list[BinContent]


class ReceiptResult(BaseModel):
    po_id: str
    sku: str
    bin_id: str
    quantity_received: int
    line_received_total: int
    line_outstanding: int
    po_status: str


class LowStockLine(BaseModel):
    sku: str
    name: str
    supplier_id: str
    on_hand: int
    allocated: int
    available: int
    on_order: int
    reorder_point: int
    suggested_order_quantity: int


def _money(x: float) -> float:
    return round(x + 1e-9, 2)


class WarehouseInventory(Environment):
    """The stock-control desk of a distribution warehouse: SKUs stored in capacity-limited
    bins of three zones (ambient, chilled, hazmat; a SKU may only sit in bins of its own
    zone), suppliers with lead times and minimum order values, purchase orders that are
    received in full or in part into bins, stock transfers between bins, pick lists that
    allocate stock for outgoing shipments and deduct it when picked, and a low-stock report."""

    name = "warehouse_inventory"
    domain = "retail"
    State = State

    # ------------------------------------------------------------------ helpers
    def _sku(self, sku: str) -> dict:
        item = self.state["skus"].get(sku)
        if item is None:
            raise ToolFailure(f"SKU {sku} not found")
        return item

    def _bin(self, bin_id: str) -> dict:
        b = self.state["bins"].get(bin_id)
        if b is None:
            raise ToolFailure(f"bin {bin_id} not found")
        return b

    def _po(self, po_id: str) -> dict:
        po = self.state["purchase_orders"].get(po_id)
        if po is None:
            raise ToolFailure(f"purchase order {po_id} not found")
        return po

    def _pick_list(self, pick_list_id: str) -> dict:
        pl = self.state["pick_lists"].get(pick_list_id)
        if pl is None:
            raise ToolFailure(f"pick list {pick_list_id} not found")
        return pl

    def _allocated(self, sku: str, bin_id: str | None = None) -> int:
        total = 0
        for pl in self.state["pick_lists"].values():
            if pl["status"] != "open":
                continue
            for line in pl["lines"]:
                if line["sku"] != sku:
                    continue
                total += sum(p["quantity"] for p in line["picks"] if bin_id is None or p["bin_id"] == bin_id)
        return total

    def _on_order(self, sku: str) -> int:
        return sum(line["quantity_ordered"] - line["quantity_received"]
                   for po in self.state["purchase_orders"].values() if po["status"] in ("open", "partially_received")
                   for line in po["lines"] if line["sku"] == sku)

    def _used(self, bin_id: str) -> int:
        return sum(s["locations"].get(bin_id, 0) for s in self.state["skus"].values())

    def _check_put_away(self, item: dict, b: dict, quantity: int) -> None:
        if b["zone"] != item["storage_zone"]:
            raise ToolFailure(f"{item['sku']} must be stored in a {item['storage_zone']} bin; {b['bin_id']} is {b['zone']}")
        free = b["capacity"] - self._used(b["bin_id"])
        if quantity > free:
            raise ToolFailure(f"bin {b['bin_id']} has room for {free} more units, {quantity} requested")

    def _lines(self, skus: list[str], quantities: list[int]) -> list[tuple[dict, int]]:
        if not skus:
            raise ToolFailure("give at least one SKU")
        if len(skus) != len(quantities):
            raise ToolFailure(f"skus has {len(skus)} entries but quantities has {len(quantities)}")
        if len(set(skus)) != len(skus):
            raise ToolFailure("each SKU may appear only once")
        out = []
        for sku, qty in zip(skus, quantities):
            item = self._sku(sku)
            if qty < 1:
                raise ToolFailure(f"quantity for {sku} must be positive")
            out.append((item, qty))
        return out

    # ------------------------------------------------------------------ SKUs and bins
    def search_skus(self, query: str | None = None, category: Category | None = None,
                    supplier_id: str | None = None, storage_zone: Zone | None = None) -> list[SkuSummary]:
        """Search SKUs, sorted by SKU code. All filters are optional and combined.

        Args:
            query: Words that must all appear in the product name (case-insensitive), e.g. "paper cups".
            category: Only SKUs of this category.
            supplier_id: Only SKUs bought from this supplier, e.g. "SUP-03".
            storage_zone: Only SKUs stored in this zone (ambient, chilled, hazmat).
        """
        words = query.lower().split() if query else []
        found = []
        for s in self.state["skus"].values():
            if any(w not in s["name"].lower() for w in words):
                continue
            if category is not None and s["category"] != category:
                continue
            if supplier_id is not None and s["supplier_id"] != supplier_id:
                continue
            if storage_zone is not None and s["storage_zone"] != storage_zone:
                continue
            on_hand = sum(s["locations"].values())
            found.append({"sku": s["sku"], "name": s["name"], "category": s["category"],
                          "storage_zone": s["storage_zone"], "on_hand": on_hand,
                          "available": on_hand - self._allocated(s["sku"])})
        return sorted(found, key=lambda x: x["sku"])

    def get_sku(self, sku: str) -> SkuDetail:
        """Full record of a SKU: supplier, cost, reorder settings, stock per bin, units
        allocated to open pick lists, units available and units on open purchase orders.

        Args:
            sku: SKU code, e.g. "SKU-10007".
        """
        item = self._sku(sku)
        locations = [{"bin_id": b, "quantity": q, "allocated": self._allocated(sku, b)}
                     for b, q in sorted(item["locations"].items())]
        on_hand = sum(item["locations"].values())
        allocated = self._allocated(sku)
        return {"sku": item["sku"], "name": item["name"], "category": item["category"],
                "unit_of_measure": item["unit_of_measure"], "storage_zone": item["storage_zone"],
                "supplier_id": item["supplier_id"], "unit_cost": item["unit_cost"],
                "reorder_point": item["reorder_point"], "reorder_quantity": item["reorder_quantity"],
                "on_hand": on_hand, "allocated": allocated, "available": on_hand - allocated,
                "on_order": self._on_order(sku), "locations": locations}

    def get_bin(self, bin_id: str) -> BinView:
        """Contents, capacity and free space of a bin.

        Args:
            bin_id: Bin location code: zone letter, aisle, level, e.g. "A-02-3".
        """
        b = self._bin(bin_id)
        contents = sorted(({"sku": s["sku"], "quantity": s["locations"][bin_id]}
                           for s in self.state["skus"].values() if bin_id in s["locations"]),
                          key=lambda c: c["sku"])
        used = sum(c["quantity"] for c in contents)
        return {"bin_id": bin_id, "zone": b["zone"], "capacity": b["capacity"], "used": used,
                "free": b["capacity"] - used, "contents": contents}

    def find_free_bins(self, zone: Zone, min_free: int = 1) -> list[BinView]:
        """Bins of a zone with at least some free capacity, most free space first.

        Args:
            zone: Storage zone: ambient, chilled or hazmat.
            min_free: Only bins with at least this many free units.
        """
        views = [self.get_bin(b["bin_id"]) for b in self.state["bins"].values() if b["zone"] == zone]
        views = [v for v in views if v["free"] >= max(1, min_free)]
        return sorted(views, key=lambda v: (-v["free"], v["bin_id"]))

    def transfer_stock(self, sku: str, from_bin_id: str, to_bin_id: str, quantity: int) -> Transfer:
        """Move units of a SKU from one bin to another bin of the same zone. Units allocated
        to open pick lists in the source bin cannot be moved.

        Args:
            sku: SKU code.
            from_bin_id: Bin the units are taken from.
            to_bin_id: Bin the units are put into.
            quantity: Number of units to move (positive).
        """
        item = self._sku(sku)
        self._bin(from_bin_id)
        dest = self._bin(to_bin_id)
        if from_bin_id == to_bin_id:
            raise ToolFailure("source and destination bins are the same")
        if quantity < 1:
            raise ToolFailure("quantity must be positive")
        held = item["locations"].get(from_bin_id, 0)
        movable = held - self._allocated(sku, from_bin_id)
        if quantity > movable:
            raise ToolFailure(f"bin {from_bin_id} holds {held} units of {sku}, {movable} not allocated; {quantity} requested")
        self._check_put_away(item, dest, quantity)
        if held == quantity:
            del item["locations"][from_bin_id]
        else:
            item["locations"][from_bin_id] = held - quantity
        item["locations"][to_bin_id] = item["locations"].get(to_bin_id, 0) + quantity
        tid = f"TR-{self.state['next_transfer_number']:05d}"
        self.state["next_transfer_number"] += 1
        transfer = {"transfer_id": tid, "sku": sku, "from_bin_id": from_bin_id, "to_bin_id": to_bin_id,
                    "quantity": quantity, "date": self.state["today"]}
        self.state["transfers"][tid] = transfer
        return transfer

    # ------------------------------------------------------------------ suppliers and purchase orders
    def list_suppliers(self, query: str | None = None) -> list[Supplier]:
        """Suppliers with their lead times and minimum order values, sorted by id.

        Args:
            query: Part of the supplier's name or city (case-insensitive).
        """
        q = (query or "").lower()
        return [s for _, s in sorted(self.state["suppliers"].items())
                if q in s["name"].lower() or q in s["city"].lower()]

    def create_purchase_order(self, supplier_id: str, skus: list[str], quantities: list[int]) -> PurchaseOrder:
        """Raise a purchase order with a supplier at the SKUs' unit costs. Every SKU must be
        sourced from that supplier and the order total must reach the supplier's minimum
        order value. Delivery is expected after the supplier's lead time.

        Args:
            supplier_id: Supplier identifier, e.g. "SUP-02".
            skus: SKU codes to order, each at most once.
            quantities: Units to order, one positive number per entry of skus.
        """
        supplier = self.state["suppliers"].get(supplier_id)
        if supplier is None:
            raise ToolFailure(f"supplier {supplier_id} not found")
        lines = []
        for item, qty in self._lines(skus, quantities):
            if item["supplier_id"] != supplier_id:
                raise ToolFailure(f"{item['sku']} is sourced from {item['supplier_id']}, not {supplier_id}")
            lines.append({"sku": item["sku"], "quantity_ordered": qty, "quantity_received": 0,
                          "unit_cost": item["unit_cost"]})
        total = _money(sum(line["quantity_ordered"] * line["unit_cost"] for line in lines))
        if total < supplier["min_order_value"]:
            raise ToolFailure(f"order total {total:.2f} is below {supplier['name']}'s minimum of "
                              f"{supplier['min_order_value']:.2f}")
        po_id = f"PO-{self.state['next_po_number']:05d}"
        self.state["next_po_number"] += 1
        today = date.fromisoformat(self.state["today"])
        po = {"po_id": po_id, "supplier_id": supplier_id, "status": "open", "created_on": self.state["today"],
              "expected_on": (today + timedelta(days=supplier["lead_time_days"])).isoformat(),
              "lines": lines, "total_cost": total}
        self.state["purchase_orders"][po_id] = po
        return po

    def get_purchase_order(self, po_id: str) -> PurchaseOrder:
        """A purchase order with ordered and received quantities per line.

        Args:
            po_id: Purchase order identifier, e.g. "PO-00003".
        """
        return self._po(po_id)

    def receive_purchase_order(self, po_id: str, sku: str, quantity: int, bin_id: str) -> ReceiptResult:
        """Book a delivery of one PO line into a bin (a partial quantity is allowed). The bin
        must be of the SKU's zone and have room. The PO becomes partially_received, or
        received once every line is complete.

        Args:
            po_id: Purchase order identifier.
            sku: SKU code of the delivered line.
            quantity: Units delivered now (at most the line's outstanding quantity).
            bin_id: Bin the units are put away into.
        """
        po = self._po(po_id)
        if po["status"] not in ("open", "partially_received"):
            raise ToolFailure(f"purchase order {po_id} is {po['status']}")
        line = next((ln for ln in po["lines"] if ln["sku"] == sku), None)
        if line is None:
            raise ToolFailure(f"purchase order {po_id} has no line for {sku}")
        outstanding = line["quantity_ordered"] - line["quantity_received"]
        if quantity < 1:
            raise ToolFailure("quantity must be positive")
        if quantity > outstanding:
            raise ToolFailure(f"only {outstanding} units of {sku} are outstanding on {po_id}, {quantity} delivered")
        item = self._sku(sku)
        self._check_put_away(item, self._bin(bin_id), quantity)
        item["locations"][bin_id] = item["locations"].get(bin_id, 0) + quantity
        line["quantity_received"] += quantity
        complete = all(ln["quantity_received"] >= ln["quantity_ordered"] for ln in po["lines"])
        po["status"] = "received" if complete else "partially_received"
        return {"po_id": po_id, "sku": sku, "bin_id": bin_id, "quantity_received": quantity,
                "line_received_total": line["quantity_received"],
                "line_outstanding": line["quantity_ordered"] - line["quantity_received"], "po_status": po["status"]}

    def cancel_purchase_order(self, po_id: str) -> PurchaseOrder:
        """Cancel a purchase order on which nothing has been received yet.

        Args:
            po_id: Purchase order identifier.
        """
        po = self._po(po_id)
        if po["status"] != "open":
            raise ToolFailure(f"purchase order {po_id} is {po['status']}; only open orders with no receipts can be cancelled")
        po["status"] = "cancelled"
        return po

    # ------------------------------------------------------------------ outbound
    def create_pick_list(self, order_reference: str, skus: list[str], quantities: list[int]) -> PickList:
        """Create a pick list for an outgoing shipment. Stock is allocated from bins in bin
        order (lowest bin code first) and is no longer available to other pick lists or
        transfers. Fails if any SKU lacks enough available stock.

        Args:
            order_reference: The customer shipment reference, e.g. "SHP-88123"; not already used by a live pick list.
            skus: SKU codes to ship, each at most once.
            quantities: Units to ship, one positive number per entry of skus.
        """
        if not order_reference.strip():
            raise ToolFailure("order_reference must not be empty")
        for pl in self.state["pick_lists"].values():
            if pl["order_reference"] == order_reference and pl["status"] != "cancelled":
                raise ToolFailure(f"order {order_reference} already has pick list {pl['pick_list_id']}")
        lines = []
        for item, qty in self._lines(skus, quantities):
            picks, remaining = [], qty
            for bin_id in sorted(item["locations"]):
                free = item["locations"][bin_id] - self._allocated(item["sku"], bin_id)
                if free <= 0:
                    continue
                take = min(free, remaining)
                picks.append({"bin_id": bin_id, "quantity": take})
                remaining -= take
                if remaining == 0:
                    break
            if remaining > 0:
                raise ToolFailure(f"only {qty - remaining} units of {item['sku']} available, {qty} requested")
            lines.append({"sku": item["sku"], "quantity": qty, "picks": picks})
        plid = f"PL-{self.state['next_pick_list_number']:05d}"
        self.state["next_pick_list_number"] += 1
        pick_list = {"pick_list_id": plid, "order_reference": order_reference, "status": "open",
                     "created_on": self.state["today"], "picked_on": None, "lines": lines}
        self.state["pick_lists"][plid] = pick_list
        return pick_list

    def get_pick_list(self, pick_list_id: str) -> PickList:
        """A pick list with the bins and quantities to pick for each line.

        Args:
            pick_list_id: Pick list identifier, e.g. "PL-00002".
        """
        return self._pick_list(pick_list_id)

    def confirm_pick_list(self, pick_list_id: str) -> PickList:
        """Confirm that an open pick list was picked: its units leave their bins.

        Args:
            pick_list_id: Pick list identifier.
        """
        pl = self._pick_list(pick_list_id)
        if pl["status"] != "open":
            raise ToolFailure(f"pick list {pick_list_id} is {pl['status']}")
        for line in pl["lines"]:
            locations = self.state["skus"][line["sku"]]["locations"]
            for p in line["picks"]:
                left = locations.get(p["bin_id"], 0) - p["quantity"]
                if left < 0:
                    raise ToolFailure(f"bin {p['bin_id']} no longer holds enough {line['sku']}")
                if left == 0:
                    del locations[p["bin_id"]]
                else:
                    locations[p["bin_id"]] = left
        pl["status"] = "picked"
        pl["picked_on"] = self.state["today"]
        return pl

    def cancel_pick_list(self, pick_list_id: str) -> PickList:
        """Cancel an open pick list and release its allocated stock.

        Args:
            pick_list_id: Pick list identifier.
        """
        pl = self._pick_list(pick_list_id)
        if pl["status"] != "open":
            raise ToolFailure(f"pick list {pick_list_id} is {pl['status']}; only open pick lists can be cancelled")
        pl["status"] = "cancelled"
        return pl

    # ------------------------------------------------------------------ reports
    def low_stock_report(self, category: Category | None = None) -> list[LowStockLine]:
        """SKUs whose available stock (on hand minus allocated) is at or below their reorder
        point, sorted by SKU. suggested_order_quantity is the SKU's reorder quantity when
        available plus on-order units still do not exceed the reorder point, else 0.

        Args:
            category: Only SKUs of this category.
        """
        out = []
        for s in sorted(self.state["skus"].values(), key=lambda x: x["sku"]):
            if category is not None and s["category"] != category:
                continue
            on_hand = sum(s["locations"].values())
            allocated = self._allocated(s["sku"])
            available = on_hand - allocated
            if available > s["reorder_point"]:
                continue
            on_order = self._on_order(s["sku"])
            out.append({"sku": s["sku"], "name": s["name"], "supplier_id": s["supplier_id"], "on_hand": on_hand,
                        "allocated": allocated, "available": available, "on_order": on_order,
                        "reorder_point": s["reorder_point"],
                        "suggested_order_quantity": s["reorder_quantity"] if available + on_order <= s["reorder_point"] else 0})
        return out
