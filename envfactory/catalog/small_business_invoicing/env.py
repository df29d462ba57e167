"""Small business invoicing: clients, a price list, invoices with taxed line items, payments, credit notes,
overdue reminders and client statements."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Literal

from pydantic import BaseModel, Field

from envfactory.env import Environment, ToolFailure

InvoiceStatus = Literal["draft", "issued", "partially_paid", "paid", "void"]
PaymentMethod = Literal["bank_transfer", "card", "cash", "cheque"]

MAX_DISCOUNT_PCT = 50.0
MAX_QUANTITY = 10_000
MAX_REMINDERS = 3
REMINDER_INTERVAL_DAYS = 7
CREDIT_HOLD_DAYS = 60
_OPEN = ("issued", "partially_paid")


# -- state ---------------------------------------------------------------------
class Business(BaseModel):
    name: str
    address: str
    currency: str
    tax_label: str = "VAT"


class Client(BaseModel):
    client_id: str
    name: str
    contact_name: str
    email: str
    city: str
    country: str
    payment_terms_days: int = 30
    tax_exempt: bool = False


class Product(BaseModel):
    product_id: str
    name: str
    unit: str
    unit_price: float
    tax_rate: float
    active: bool = True


class InvoiceLine(BaseModel):
    line_no: int
    product_id: str
    description: str
    quantity: float
    unit_price: float
    discount_pct: float = 0.0
    net: float
    tax_rate: float
    tax: float


class Invoice(BaseModel):
    invoice_id: str
    client_id: str
    status: InvoiceStatus
    issue_date: str | None = None
    due_date: str | None = None
    lines: list[InvoiceLine] = Field(default_factory=list)
    subtotal: float = 0.0
    tax_total: float = 0.0
    total: float = 0.0
    amount_paid: float = 0.0
    amount_credited: float = 0.0
    balance_due: float = 0.0
    reminders_sent: int = 0
    last_reminder_date: str | None = None
    notes: str = ""


class Payment(BaseModel):
    payment_id: str
    invoice_id: str
    client_id: str
    date: str
    amount: float
    method: PaymentMethod
    reference: str = ""


class CreditNote(BaseModel):
    credit_note_id: str
    invoice_id: str
    client_id: str
    date: str
    amount: float
    reason: str


class Reminder(BaseModel):
    reminder_id: str
    invoice_id: str
    client_id: str
    date: str
    level: int
    days_overdue: int
    balance_due: float


class State(BaseModel):
    today: str
    business: Business
    clients: dict[str, Client]
    products: dict[str, Product]
    invoices: dict[str, Invoice]
    payments: dict[str, Payment] = Field(default_factory=dict)
    credit_notes: dict[str, CreditNote] = Field(default_factory=dict)
    reminders: dict[str, Reminder] = Field(default_factory=dict)
    next_invoice_number: int = 1
    next_payment_number: int = 1
    next_credit_note_number: int = 1
    next_reminder_number: int = 1


# -- outputs -------------------------------------------------------------------
class InvoiceSummary(BaseModel):
    invoice_id: str
    client_id: str
    client_name: str
    status: InvoiceStatus
    issue_date: str | None
    due_date: str | None
    total: float
    balance_due: float
    days_overdue: int


class PaymentResult(BaseModel):
    payment_id: str
    invoice_id: str
    date: str
    amount: float
    method: PaymentMethod
    invoice_status: InvoiceStatus
    balance_due: float


class CreditNoteResult(BaseModel):
    credit_note_id: str
    invoice_id: str
    date: str
    amount: float
    reason: str
    invoice_status: InvoiceStatus
    balance_due: float


class StatementEntry(BaseModel):
    date: str
    type: Literal["invoice", "credit_note", "payment"]
    reference: str
    invoice_id: str
    amount: float
    running_balance: float


class ClientStatement(BaseModel):
    client_id: str
    client_name: str
    start_date: str | None
    end_date: str
    opening_balance: float
    entries: list[StatementEntry]
    closing_balance: float
    total_outstanding: float
    overdue_amount: float


# -- helpers -------------------------------------------------------------------
def _parse_date(value: str, field: str) -> date:
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        raise ToolFailure(f"{field} must be an ISO date (YYYY-MM-DD), got {value!r}") from None


def _money(value: float) -> float:
    return round(value + 0.0, 2)


class SmallBusinessInvoicing(Environment):
    """The back office of a small service business: a client register, a price list of services and
    products with tax rates, invoices built line by line and issued with payment terms, partial and full
    payments, credit notes, escalating overdue reminders and per-client account statements.
    Clients with an invoice more than 60 days overdue are on credit hold."""

    name = "small_business_invoicing"
    domain = "finance"
    State = State

    # -- private helpers -------------------------------------------------------
    def _today(self) -> date:
        return date.fromisoformat(self.state["today"])

    def _client(self, client_id: str) -> dict:
        client = self.state["clients"].get(client_id)
        if client is None:
            raise ToolFailure(f"client {client_id} not found")
        return client

    def _invoice(self, invoice_id: str) -> dict:
        inv = self.state["invoices"].get(invoice_id)
        if inv is None:
            raise ToolFailure(f"invoice {invoice_id} not found")
        return inv

    def _days_overdue(self, inv: dict) -> int:
        if inv["status"] not in _OPEN or inv["due_date"] is None:
            return 0
        return max(0, (self._today() - date.fromisoformat(inv["due_date"])).days)

    def _recompute(self, inv: dict) -> None:
        inv["subtotal"] = _money(sum(line["net"] for line in inv["lines"]))
        inv["tax_total"] = _money(sum(line["tax"] for line in inv["lines"]))
        inv["total"] = _money(inv["subtotal"] + inv["tax_total"])
        inv["balance_due"] = _money(inv["total"] - inv["amount_paid"] - inv["amount_credited"])

    def _settle(self, inv: dict) -> None:
        inv["balance_due"] = _money(inv["total"] - inv["amount_paid"] - inv["amount_credited"])
        if inv["balance_due"] <= 0:
            inv["balance_due"] = 0.0
            inv["status"] = "paid"
        elif inv["amount_paid"] > 0:
            inv["status"] = "partially_paid"
        else:
            inv["status"] = "issued"

    def _require_open(self, inv: dict, action: str) -> None:
        if inv["status"] not in _OPEN:
            raise ToolFailure(f"cannot {action}: invoice {inv['invoice_id']} is {inv['status']}")

    def _event_date(self, value: str | None, inv: dict, field: str) -> str:
        day = self._today() if value is None else _parse_date(value, field)
        if day > self._today():
            raise ToolFailure(f"{field} {value} is in the future (today is {self.state['today']})")
        if inv["issue_date"] and day < date.fromisoformat(inv["issue_date"]):
            raise ToolFailure(f"{field} {day.isoformat()} is before the invoice's issue date {inv['issue_date']}")
        return day.isoformat()

    # -- clients and price list ---------------------------------------------
    def search_clients(self, query: str | None = None) -> list[Client]:
        """Find clients whose name, contact name, email or city contains the text (all clients if omitted).

        Args:
            query: Case-insensitive text to look for, e.g. "bristol" or "acme".
        """
        q = (query or "").lower()
        found = [c for c in self.state["clients"].values()
                 if not q or any(q in c[f].lower() for f in ("name", "contact_name", "email", "city"))]
        return sorted(found, key=lambda c: c["client_id"])

    def list_products(self, query: str | None = None, include_inactive: bool = False) -> list[Product]:
        """The price list of services and products with unit prices and tax rates.

        Args:
            query: Case-insensitive text contained in the product name.
            include_inactive: Also list discontinued items.
        """
        q = (query or "").lower()
        found = [p for p in self.state["products"].values()
                 if (include_inactive or p["active"]) and q in p["name"].lower()]
        return sorted(found, key=lambda p: p["product_id"])

    # -- invoices ------------------------------------------------------------
    def create_invoice(self, client_id: str, notes: str | None = None) -> Invoice:
        """Start a draft invoice for a client. Refused while the client is on credit hold
        (any invoice more than 60 days overdue).

        Args:
            client_id: Client identifier from search_clients, e.g. "CLI-004".
            notes: Optional note printed on the invoice, e.g. a purchase-order number.
        """
        self._client(client_id)
        for inv in self.state["invoices"].values():
            if inv["client_id"] == client_id and self._days_overdue(inv) > CREDIT_HOLD_DAYS:
                raise ToolFailure(f"client {client_id} is on credit hold: invoice {inv['invoice_id']} is "
                                  f"{self._days_overdue(inv)} days overdue")
        iid = f"INV-{self.state['next_invoice_number']:05d}"
        self.state["next_invoice_number"] += 1
        inv = {"invoice_id": iid, "client_id": client_id, "status": "draft", "issue_date": None, "due_date": None,
               "lines": [], "subtotal": 0.0, "tax_total": 0.0, "total": 0.0, "amount_paid": 0.0,
               "amount_credited": 0.0, "balance_due": 0.0, "reminders_sent": 0, "last_reminder_date": None,
               "notes": notes or ""}
        self.state["invoices"][iid] = inv
        return inv

    def add_invoice_line(self, invoice_id: str, product_id: str, quantity: float, discount_pct: float = 0.0,
                         description: str | None = None) -> Invoice:
        """Add a price-list item to a draft invoice. Tax uses the product's rate, or 0 for tax-exempt clients.
        Line net = quantity x unit price less the discount, rounded to cents; tax is rounded per line.

        Args:
            invoice_id: Draft invoice identifier.
            product_id: Active product identifier from list_products.
            quantity: Quantity in the product's unit, greater than 0 (at most 10000).
            discount_pct: Line discount in percent, 0 to 50.
            description: Text for the line; defaults to the product name.
        """
        inv = self._invoice(invoice_id)
        if inv["status"] != "draft":
            raise ToolFailure(f"invoice {invoice_id} is {inv['status']}; lines can only be added to drafts")
        product = self.state["products"].get(product_id)
        if product is None:
            raise ToolFailure(f"product {product_id} not found")
        if not product["active"]:
            raise ToolFailure(f"product {product_id} is discontinued")
        if not 0 < quantity <= MAX_QUANTITY:
            raise ToolFailure(f"quantity must be greater than 0 and at most {MAX_QUANTITY}")
        if not 0 <= discount_pct <= MAX_DISCOUNT_PCT:
            raise ToolFailure(f"discount_pct must be between 0 and {MAX_DISCOUNT_PCT:g}")
        client = self.state["clients"][inv["client_id"]]
        rate = 0.0 if client["tax_exempt"] else product["tax_rate"]
        net = _money(quantity * product["unit_price"] * (1 - discount_pct / 100))
        line_no = max((line["line_no"] for line in inv["lines"]), default=0) + 1
        inv["lines"].append({"line_no": line_no, "product_id": product_id,
                             "description": (description or "").strip() or product["name"],
                             "quantity": quantity, "unit_price": product["unit_price"],
                             "discount_pct": float(discount_pct), "net": net, "tax_rate": rate,
                             "tax": _money(net * rate)})
        self._recompute(inv)
        return inv

    def remove_invoice_line(self, invoice_id: str, line_no: int) -> Invoice:
        """Remove a line from a draft invoice.

        Args:
            invoice_id: Draft invoice identifier.
            line_no: Number of the line to remove, as shown in the invoice's lines.
        """
        inv = self._invoice(invoice_id)
        if inv["status"] != "draft":
            raise ToolFailure(f"invoice {invoice_id} is {inv['status']}; only draft lines can be removed")
        keep = [line for line in inv["lines"] if line["line_no"] != line_no]
        if len(keep) == len(inv["lines"]):
            raise ToolFailure(f"invoice {invoice_id} has no line {line_no}")
        inv["lines"] = keep
        self._recompute(inv)
        return inv

    def issue_invoice(self, invoice_id: str, issue_date: str | None = None) -> Invoice:
        """Issue a draft invoice: fixes the issue date and sets the due date from the client's payment terms.

        Args:
            invoice_id: Draft invoice identifier with at least one line.
            issue_date: Issue date, YYYY-MM-DD, not in the future (defaults to today).
        """
        inv = self._invoice(invoice_id)
        if inv["status"] != "draft":
            raise ToolFailure(f"invoice {invoice_id} is already {inv['status']}")
        if not inv["lines"]:
            raise ToolFailure(f"invoice {invoice_id} has no lines")
        day = self._today() if issue_date is None else _parse_date(issue_date, "issue_date")
        if day > self._today():
            raise ToolFailure(f"issue_date {issue_date} is in the future (today is {self.state['today']})")
        terms = self.state["clients"][inv["client_id"]]["payment_terms_days"]
        inv["issue_date"] = day.isoformat()
        inv["due_date"] = (day + timedelta(days=terms)).isoformat()
        inv["status"] = "issued"
        self._settle(inv)
        return inv

    def get_invoice(self, invoice_id: str) -> Invoice:
        """Full invoice with its lines, totals, amounts paid and credited, balance due and reminders sent.

        Args:
            invoice_id: Invoice identifier, e.g. "INV-00017".
        """
        return self._invoice(invoice_id)

    def list_invoices(self, client_id: str | None = None, status: InvoiceStatus | None = None,
                      overdue_only: bool = False) -> list[InvoiceSummary]:
        """List invoices, newest number first, with days overdue (0 unless open and past due).

        Args:
            client_id: Only invoices of this client.
            status: Only invoices in this status: draft, issued, partially_paid, paid or void.
            overdue_only: Only open invoices past their due date.
        """
        if client_id is not None:
            self._client(client_id)
        out = []
        for inv in sorted(self.state["invoices"].values(), key=lambda i: i["invoice_id"], reverse=True):
            overdue = self._days_overdue(inv)
            if (client_id is not None and inv["client_id"] != client_id) or (status is not None and inv["status"] != status):
                continue
            if overdue_only and overdue == 0:
                continue
            out.append({"invoice_id": inv["invoice_id"], "client_id": inv["client_id"],
                        "client_name": self.state["clients"][inv["client_id"]]["name"], "status": inv["status"],
                        "issue_date": inv["issue_date"], "due_date": inv["due_date"], "total": inv["total"],
                        "balance_due": inv["balance_due"], "days_overdue": overdue})
        return out

    def void_invoice(self, invoice_id: str, reason: str) -> Invoice:
        """Cancel an invoice raised in error. Only drafts and issued invoices without payments or credit notes
        can be voided; otherwise issue a credit note.

        Args:
            invoice_id: Invoice identifier.
            reason: Why the invoice is voided.
        """
        inv = self._invoice(invoice_id)
        if inv["status"] not in ("draft", "issued"):
            raise ToolFailure(f"invoice {invoice_id} is {inv['status']} and cannot be voided")
        if inv["amount_paid"] > 0 or inv["amount_credited"] > 0:
            raise ToolFailure(f"invoice {invoice_id} has payments or credit notes; issue a credit note instead")
        if not reason.strip():
            raise ToolFailure("reason must not be empty")
        inv["status"] = "void"
        inv["balance_due"] = 0.0
        inv["notes"] = (inv["notes"] + " | " if inv["notes"] else "") + f"VOID: {reason.strip()}"
        return inv

    # -- money in and out ----------------------------------------------------
    def record_payment(self, invoice_id: str, amount: float, method: PaymentMethod, date: str | None = None,
                       reference: str | None = None) -> PaymentResult:
        """Record a client payment against an open invoice. Partial payments are allowed; overpayments are not.

        Args:
            invoice_id: Issued or partially paid invoice identifier.
            amount: Amount received, greater than 0 and at most the balance due.
            method: bank_transfer, card, cash or cheque.
            date: Date received, YYYY-MM-DD, between the issue date and today (defaults to today).
            reference: Optional bank or cheque reference.
        """
        inv = self._invoice(invoice_id)
        self._require_open(inv, "record a payment")
        amount = _money(amount)
        if amount <= 0:
            raise ToolFailure("amount must be at least 0.01")
        if amount > inv["balance_due"] + 1e-9:
            raise ToolFailure(f"amount {amount:.2f} exceeds the balance due of {inv['balance_due']:.2f} "
                              f"on invoice {invoice_id}")
        day = self._event_date(date, inv, "date")
        pid = f"PAY-{self.state['next_payment_number']:05d}"
        self.state["next_payment_number"] += 1
        self.state["payments"][pid] = {"payment_id": pid, "invoice_id": invoice_id, "client_id": inv["client_id"],
                                       "date": day, "amount": amount, "method": method, "reference": reference or ""}
        inv["amount_paid"] = _money(inv["amount_paid"] + amount)
        self._settle(inv)
        return {"payment_id": pid, "invoice_id": invoice_id, "date": day, "amount": amount, "method": method,
                "invoice_status": inv["status"], "balance_due": inv["balance_due"]}

    def issue_credit_note(self, invoice_id: str, amount: float, reason: str) -> CreditNoteResult:
        """Credit part or all of an open invoice's balance (e.g. a goodwill discount or returned goods),
        dated today. Cannot exceed the balance due.

        Args:
            invoice_id: Issued or partially paid invoice identifier.
            amount: Amount to credit, greater than 0 and at most the balance due.
            reason: Why the credit is granted.
        """
        inv = self._invoice(invoice_id)
        self._require_open(inv, "issue a credit note")
        amount = _money(amount)
        if amount <= 0:
            raise ToolFailure("amount must be at least 0.01")
        if amount > inv["balance_due"] + 1e-9:
            raise ToolFailure(f"credit {amount:.2f} exceeds the balance due of {inv['balance_due']:.2f} "
                              f"on invoice {invoice_id}")
        if not reason.strip():
            raise ToolFailure("reason must not be empty")
        cid = f"CN-{self.state['next_credit_note_number']:04d}"
        self.state["next_credit_note_number"] += 1
        day = self.state["today"]
        self.state["credit_notes"][cid] = {"credit_note_id": cid, "invoice_id": invoice_id,
                                           "client_id": inv["client_id"], "date": day, "amount": amount,
                                           "reason": reason.strip()}
        inv["amount_credited"] = _money(inv["amount_credited"] + amount)
        self._settle(inv)
        return {"credit_note_id": cid, "invoice_id": invoice_id, "date": day, "amount": amount,
                "reason": reason.strip(), "invoice_status": inv["status"], "balance_due": inv["balance_due"]}

    def send_overdue_reminder(self, invoice_id: str) -> Reminder:
        """Send the next overdue reminder for an open invoice past its due date: level 1 (friendly),
        2 (firm) and 3 (final notice); at most 3 per invoice and at least 7 days apart.

        Args:
            invoice_id: Overdue invoice identifier.
        """
        inv = self._invoice(invoice_id)
        self._require_open(inv, "send a reminder")
        overdue = self._days_overdue(inv)
        if overdue == 0:
            raise ToolFailure(f"invoice {invoice_id} is not overdue (due {inv['due_date']})")
        if inv["reminders_sent"] >= MAX_REMINDERS:
            raise ToolFailure(f"invoice {invoice_id} already had {MAX_REMINDERS} reminders including the final "
                              "notice; escalate to collections")
        if inv["last_reminder_date"] is not None:
            since = (self._today() - date.fromisoformat(inv["last_reminder_date"])).days
            if since < REMINDER_INTERVAL_DAYS:
                raise ToolFailure(f"last reminder for {invoice_id} was sent {since} days ago on "
                                  f"{inv['last_reminder_date']}; wait at least {REMINDER_INTERVAL_DAYS} days")
        rid = f"REM-{self.state['next_reminder_number']:04d}"
        self.state["next_reminder_number"] += 1
        level = inv["reminders_sent"] + 1
        reminder = {"reminder_id": rid, "invoice_id": invoice_id, "client_id": inv["client_id"],
                    "date": self.state["today"], "level": level, "days_overdue": overdue,
                    "balance_due": inv["balance_due"]}
        self.state["reminders"][rid] = reminder
        inv["reminders_sent"] = level
        inv["last_reminder_date"] = self.state["today"]
        return reminder

    # -- reporting -----------------------------------------------------------
    def get_client_statement(self, client_id: str, start_date: str | None = None,
                             end_date: str | None = None) -> ClientStatement:
        """Account statement of a client: issued invoices (debits), credit notes and payments (credits) in date
        order with a running balance, plus what is outstanding and overdue today. Drafts and voided invoices
        are left out; activity before start_date is summed into the opening balance.

        Args:
            client_id: Client identifier.
            start_date: First day of the period, YYYY-MM-DD (defaults to the beginning of the account).
            end_date: Last day of the period, YYYY-MM-DD (defaults to today).
        """
        client = self._client(client_id)
        start = _parse_date(start_date, "start_date").isoformat() if start_date is not None else None
        end = _parse_date(end_date, "end_date").isoformat() if end_date is not None else self.state["today"]
        if start is not None and start > end:
            raise ToolFailure(f"start_date {start} is after end_date {end}")
        events = []
        for inv in self.state["invoices"].values():
            if inv["client_id"] == client_id and inv["status"] in ("issued", "partially_paid", "paid"):
                events.append((inv["issue_date"], 0, inv["invoice_id"], "invoice", inv["invoice_id"], inv["total"]))
        for cn in self.state["credit_notes"].values():
            if cn["client_id"] == client_id:
                events.append((cn["date"], 1, cn["credit_note_id"], "credit_note", cn["invoice_id"], -cn["amount"]))
        for p in self.state["payments"].values():
            if p["client_id"] == client_id:
                events.append((p["date"], 2, p["payment_id"], "payment", p["invoice_id"], -p["amount"]))
        events.sort()
        opening = _money(sum(e[5] for e in events if start is not None and e[0] < start))
        running = opening
        entries = []
        for day, _, ref, kind, invoice_id, amount in events:
            if (start is not None and day < start) or day > end:
                continue
            running = _money(running + amount)
            entries.append({"date": day, "type": kind, "reference": ref, "invoice_id": invoice_id,
                            "amount": _money(amount), "running_balance": running})
        open_invs = [i for i in self.state["invoices"].values() if i["client_id"] == client_id and i["status"] in _OPEN]
        return {"client_id": client_id, "client_name": client["name"], "start_date": start, "end_date": end,
                "opening_balance": opening, "entries": entries, "closing_balance": running,
                "total_outstanding": _money(sum(i["balance_due"] for i in open_invs)),
                "overdue_amount": _money(sum(i["balance_due"] for i in open_invs if self._days_overdue(i) > 0))}
