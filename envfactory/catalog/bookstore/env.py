"""Independent bookstore: catalogue, loyalty cards, special orders, till purchases and gift cards."""

from __future__ import annotations

import math
from datetime import date, timedelta
from typing import Literal

from pydantic import BaseModel, Field

from envfactory.env import Environment, ToolFailure

Genre = Literal["fiction", "mystery", "science_fiction", "fantasy", "biography", "history",
                "science", "children", "poetry", "cookery", "travel"]
Tier = Literal["bronze", "silver", "gold"]
SpecialOrderStatus = Literal["ordered", "arrived", "collected", "cancelled"]

TIER_DISCOUNT = {"bronze": 0.05, "silver": 0.10, "gold": 0.15}
TIER_THRESHOLDS = [("gold", 1500), ("silver", 500), ("bronze", 0)]
TIER_RANK = {"bronze": 0, "silver": 1, "gold": 2}
DEPOSIT_RATE = 0.20
MAX_OPEN_SPECIAL_ORDERS = 3
HOLD_DAYS = 14
GIFT_CARD_VALID_DAYS = 730


# --------------------------------------------------------------------------- state


class Book(BaseModel):
    isbn: str
    title: str
    authors: list[str]
    genre: Genre
    publisher: str
    year: int
    price: float
    stock: int
    special_order_available: bool = True
    supplier_lead_days: int = 7


class LoyaltyCard(BaseModel):
    card_number: str
    tier: Tier = "bronze"
    points: int = 0
    enrolled_on: str


class Customer(BaseModel):
    customer_id: str
    name: str
    email: str
    phone: str
    loyalty_card: LoyaltyCard | None = None


class SpecialOrder(BaseModel):
    special_order_id: str
    customer_id: str
    isbn: str
    title: str
    quantity: int
    unit_price: float
    deposit: float
    status: SpecialOrderStatus = "ordered"
    ordered_on: str
    expected_by: str
    arrived_on: str | None = None
    hold_until: str | None = None
    refund: float = 0.0
    purchase_id: str | None = None


class PurchaseLine(BaseModel):
    isbn: str
    title: str
    quantity: int
    unit_price: float
    line_total: float


class Purchase(BaseModel):
    purchase_id: str
    date: str
    customer_id: str | None = None
    lines: list[PurchaseLine]
    subtotal: float
    discount_rate: float
    discount: float
    total: float
    deposit_credit: float = 0.0
    gift_card_id: str | None = None
    gift_card_applied: float = 0.0
    amount_charged: float
    points_earned: int = 0
    special_order_id: str | None = None


class GiftCard(BaseModel):
    gift_card_id: str
    initial_value: float
    balance: float
    issued_on: str
    expires_on: str
    purchaser_customer_id: str | None = None
    status: Literal["active", "depleted", "expired"] = "active"


class State(BaseModel):
    today: str
    store_name: str
    books: dict[str, Book]
    customers: dict[str, Customer]
    special_orders: dict[str, SpecialOrder] = Field(default_factory=dict)
    purchases: dict[str, Purchase] = Field(default_factory=dict)
    gift_cards: dict[str, GiftCard] = Field(default_factory=dict)
    next_special_order_number: int = 1
    next_purchase_number: int = 1
    next_gift_card_number: int = 1
    next_card_number: int = 1


# --------------------------------------------------------------------------- outputs


class BookSummary(BaseModel):
    isbn: str
    title: str
    authors: list[str]
    genre: str
    price: float
    stock: int


class CancellationResult(BaseModel):
    special_order_id: str
    status: str
    refund: float
    returned_to_shelf: int


def _money(x: float) -> float:
    return round(x + 1e-9, 2)


def _tier_for(points: int) -> str:
    for tier, threshold in TIER_THRESHOLDS:
        if points >= threshold:
            return tier
    return "bronze"


class Bookstore(Environment):
    """The till and back office of an independent bookstore: a catalogue of books with
    prices and shelf stock, registered customers (some holding loyalty cards with
    bronze/silver/gold tiers that give 5/10/15% off), special orders for titles that are
    out of stock (20% deposit, collected when they arrive), purchases at the till that
    can be paid partly with gift cards, and gift-card sales."""

    name = "bookstore"
    domain = "retail"
    State = State

    # ------------------------------------------------------------------ helpers
    def _book(self, isbn: str) -> dict:
        book = self.state["books"].get(isbn)
        if book is None:
            raise ToolFailure(f"no book with ISBN {isbn} in the catalogue")
        return book

    def _customer(self, customer_id: str) -> dict:
        customer = self.state["customers"].get(customer_id)
        if customer is None:
            raise ToolFailure(f"customer {customer_id} not found")
        return customer

    def _special_order(self, special_order_id: str) -> dict:
        order = self.state["special_orders"].get(special_order_id)
        if order is None:
            raise ToolFailure(f"special order {special_order_id} not found")
        return order

    def _today(self) -> date:
        return date.fromisoformat(self.state["today"])

    def _gift_card_view(self, card: dict) -> dict:
        view = dict(card)
        if card["status"] == "active" and date.fromisoformat(card["expires_on"]) < self._today():
            view["status"] = "expired"
        return view

    # ------------------------------------------------------------------ catalogue
    def search_books(self, query: str | None = None, author: str | None = None, genre: Genre | None = None,
                     max_price: float | None = None, in_stock_only: bool = False) -> list[BookSummary]:
        """Search the catalogue, sorted by title. All filters are optional and combined.

        Args:
            query: Words that must appear in the title (case-insensitive), e.g. "winter".
            author: Part of an author's name (case-insensitive), e.g. "okafor".
            genre: Only books of this genre.
            max_price: Only books priced at most this much.
            in_stock_only: Only books with at least one copy on the shelf.
        """
        words = query.lower().split() if query else []
        found = []
        for b in self.state["books"].values():
            title = b["title"].lower()
            if any(w not in title for w in words):
                continue
            if author and not any(author.lower() in a.lower() for a in b["authors"]):
                continue
            if genre is not None and b["genre"] != genre:
                continue
            if max_price is not None and b["price"] > max_price:
                continue
            if in_stock_only and b["stock"] < 1:
                continue
            found.append({"isbn": b["isbn"], "title": b["title"], "authors": list(b["authors"]),
                          "genre": b["genre"], "price": b["price"], "stock": b["stock"]})
        return sorted(found, key=lambda x: (x["title"], x["isbn"]))

    def get_book(self, isbn: str) -> Book:
        """Full catalogue record of a book: publisher, year, price, shelf stock and
        whether it can be special-ordered (and the supplier lead time).

        Args:
            isbn: 13-digit ISBN, e.g. "9781402894626".
        """
        return self._book(isbn)

    # ------------------------------------------------------------------ customers
    def find_customer(self, email: str | None = None, card_number: str | None = None) -> Customer:
        """Look up a registered customer by email address or by loyalty card number.

        Args:
            email: The customer's email address (case-insensitive).
            card_number: A loyalty card number, e.g. "LC-10004".
        """
        if not email and not card_number:
            raise ToolFailure("give an email or a card_number")
        for c in self.state["customers"].values():
            if email and c["email"].lower() == email.lower():
                return c
            if card_number and c["loyalty_card"] and c["loyalty_card"]["card_number"] == card_number:
                return c
        raise ToolFailure(f"no customer with {'email ' + email if email else 'card ' + str(card_number)}")

    def enroll_loyalty_card(self, customer_id: str) -> Customer:
        """Give a customer a new loyalty card (bronze tier, 0 points).

        Args:
            customer_id: Customer identifier, e.g. "C-0007".
        """
        customer = self._customer(customer_id)
        if customer["loyalty_card"] is not None:
            raise ToolFailure(f"customer {customer_id} already holds card {customer['loyalty_card']['card_number']}")
        number = f"LC-{10000 + self.state['next_card_number']}"
        self.state["next_card_number"] += 1
        customer["loyalty_card"] = {"card_number": number, "tier": "bronze", "points": 0,
                                    "enrolled_on": self.state["today"]}
        return customer

    # ------------------------------------------------------------------ special orders
    def place_special_order(self, customer_id: str, isbn: str, quantity: int = 1) -> SpecialOrder:
        """Order copies of an out-of-stock title from the supplier for a customer. A deposit
        of 20% of the price is taken now. Only possible when the shelf stock is 0 and the
        title is orderable; a customer may have at most 3 open (ordered or arrived) special orders.

        Args:
            customer_id: Customer identifier.
            isbn: ISBN of the book to order.
            quantity: Number of copies (1-5).
        """
        customer = self._customer(customer_id)
        book = self._book(isbn)
        if not 1 <= quantity <= 5:
            raise ToolFailure("quantity must be between 1 and 5")
        if book["stock"] > 0:
            raise ToolFailure(f"{book['title']!r} has {book['stock']} copies on the shelf; sell from stock instead")
        if not book["special_order_available"]:
            raise ToolFailure(f"{book['title']!r} cannot be ordered from the supplier (out of print)")
        open_orders = [o for o in self.state["special_orders"].values()
                       if o["customer_id"] == customer_id and o["status"] in ("ordered", "arrived")]
        if len(open_orders) >= MAX_OPEN_SPECIAL_ORDERS:
            raise ToolFailure(f"customer {customer_id} already has {len(open_orders)} open special orders")
        sid = f"SO-{self.state['next_special_order_number']:04d}"
        self.state["next_special_order_number"] += 1
        order = {"special_order_id": sid, "customer_id": customer["customer_id"], "isbn": isbn,
                 "title": book["title"], "quantity": quantity, "unit_price": book["price"],
                 "deposit": _money(DEPOSIT_RATE * book["price"] * quantity), "status": "ordered",
                 "ordered_on": self.state["today"],
                 "expected_by": (self._today() + timedelta(days=book["supplier_lead_days"])).isoformat(),
                 "arrived_on": None, "hold_until": None, "refund": 0.0, "purchase_id": None}
        self.state["special_orders"][sid] = order
        return order

    def list_special_orders(self, customer_id: str | None = None,
                            status: SpecialOrderStatus | None = None) -> list[SpecialOrder]:
        """Special orders, oldest first, optionally for one customer and/or in one status.

        Args:
            customer_id: Only this customer's special orders.
            status: Only orders in this status (ordered, arrived, collected, cancelled).
        """
        if customer_id is not None:
            self._customer(customer_id)
        orders = [o for o in self.state["special_orders"].values()
                  if (customer_id is None or o["customer_id"] == customer_id)
                  and (status is None or o["status"] == status)]
        return sorted(orders, key=lambda o: (o["ordered_on"], o["special_order_id"]))

    def receive_special_order(self, special_order_id: str) -> SpecialOrder:
        """Record that the copies of a special order arrived from the supplier. They are
        held for the customer for 14 days (not put on the shelf).

        Args:
            special_order_id: Special order identifier, e.g. "SO-0003".
        """
        order = self._special_order(special_order_id)
        if order["status"] != "ordered":
            raise ToolFailure(f"special order {special_order_id} is {order['status']}, not awaiting delivery")
        order["status"] = "arrived"
        order["arrived_on"] = self.state["today"]
        order["hold_until"] = (self._today() + timedelta(days=HOLD_DAYS)).isoformat()
        return order

    def cancel_special_order(self, special_order_id: str) -> CancellationResult:
        """Cancel a special order. Before arrival the deposit is refunded in full; once the
        copies have arrived the deposit is kept and the copies go onto the shelf.

        Args:
            special_order_id: Special order identifier.
        """
        order = self._special_order(special_order_id)
        if order["status"] not in ("ordered", "arrived"):
            raise ToolFailure(f"special order {special_order_id} is already {order['status']}")
        shelf = 0
        if order["status"] == "ordered":
            order["refund"] = order["deposit"]
        else:
            order["refund"] = 0.0
            shelf = order["quantity"]
            self.state["books"][order["isbn"]]["stock"] += shelf
        order["status"] = "cancelled"
        return {"special_order_id": special_order_id, "status": "cancelled", "refund": order["refund"],
                "returned_to_shelf": shelf}

    # ------------------------------------------------------------------ till
    def create_purchase(self, isbns: list[str], customer_id: str | None = None, gift_card_id: str | None = None,
                        special_order_id: str | None = None) -> Purchase:
        """Ring up a sale. Loyalty-card holders get their tier discount (bronze 5%, silver 10%,
        gold 15%) and earn 1 point per whole unit of the discounted total; the tier is upgraded
        at 500 (silver) and 1500 (gold) points. An arrived special order can be collected in the
        same sale: its copies are added and its deposit is credited. A gift card pays as much of
        the remainder as its balance allows; the rest is charged to the customer.

        Args:
            isbns: ISBNs of the shelf copies bought; repeat an ISBN to buy several copies. May be empty when collecting a special order.
            customer_id: The buying customer, if registered (needed for loyalty discount and special orders).
            gift_card_id: Gift card to pay with, e.g. "GC-00012".
            special_order_id: An arrived special order of this customer to collect in this sale.
        """
        customer = self._customer(customer_id) if customer_id is not None else None
        counts: dict[str, int] = {}
        for isbn in isbns:
            self._book(isbn)
            counts[isbn] = counts.get(isbn, 0) + 1
        lines = []
        for isbn, qty in counts.items():
            book = self.state["books"][isbn]
            if book["stock"] < qty:
                raise ToolFailure(f"only {book['stock']} copies of {book['title']!r} on the shelf, {qty} requested")
            lines.append({"isbn": isbn, "title": book["title"], "quantity": qty, "unit_price": book["price"],
                          "line_total": _money(book["price"] * qty)})
        order = None
        if special_order_id is not None:
            order = self._special_order(special_order_id)
            if customer is None or order["customer_id"] != customer_id:
                raise ToolFailure(f"special order {special_order_id} belongs to customer {order['customer_id']}")
            if order["status"] != "arrived":
                raise ToolFailure(f"special order {special_order_id} is {order['status']}, not ready to collect")
            lines.append({"isbn": order["isbn"], "title": order["title"], "quantity": order["quantity"],
                          "unit_price": order["unit_price"],
                          "line_total": _money(order["unit_price"] * order["quantity"])})
        if not lines:
            raise ToolFailure("a purchase needs at least one book")
        card = None
        if gift_card_id is not None:
            card = self.state["gift_cards"].get(gift_card_id)
            if card is None:
                raise ToolFailure(f"gift card {gift_card_id} not found")
            status = self._gift_card_view(card)["status"]
            if status != "active":
                raise ToolFailure(f"gift card {gift_card_id} is {status}")
        loyalty = customer["loyalty_card"] if customer is not None else None
        subtotal = _money(sum(line["line_total"] for line in lines))
        rate = TIER_DISCOUNT[loyalty["tier"]] if loyalty else 0.0
        discount = _money(subtotal * rate)
        total = _money(subtotal - discount)
        deposit = order["deposit"] if order else 0.0
        due = _money(max(0.0, total - deposit))
        applied = _money(min(card["balance"], due)) if card else 0.0
        charged = _money(due - applied)
        points = math.floor(total + 1e-9) if loyalty else 0

        for line in lines[:len(counts)]:
            self.state["books"][line["isbn"]]["stock"] -= line["quantity"]
        pid = f"P-{self.state['next_purchase_number']:05d}"
        self.state["next_purchase_number"] += 1
        if card is not None:
            card["balance"] = _money(card["balance"] - applied)
            if card["balance"] <= 0:
                card["status"] = "depleted"
        if loyalty:
            loyalty["points"] += points
            new_tier = _tier_for(loyalty["points"])
            if TIER_RANK[new_tier] > TIER_RANK[loyalty["tier"]]:
                loyalty["tier"] = new_tier
        if order is not None:
            order["status"] = "collected"
            order["purchase_id"] = pid
        purchase = {"purchase_id": pid, "date": self.state["today"], "customer_id": customer_id, "lines": lines,
                    "subtotal": subtotal, "discount_rate": rate, "discount": discount, "total": total,
                    "deposit_credit": deposit, "gift_card_id": gift_card_id, "gift_card_applied": applied,
                    "amount_charged": charged, "points_earned": points, "special_order_id": special_order_id}
        self.state["purchases"][pid] = purchase
        return purchase

    def get_purchase(self, purchase_id: str) -> Purchase:
        """A past purchase (receipt) with its lines, discount and payments.

        Args:
            purchase_id: Purchase identifier, e.g. "P-00004".
        """
        purchase = self.state["purchases"].get(purchase_id)
        if purchase is None:
            raise ToolFailure(f"purchase {purchase_id} not found")
        return purchase

    # ------------------------------------------------------------------ gift cards
    def sell_gift_card(self, amount: float, customer_id: str | None = None) -> GiftCard:
        """Sell a new gift card, valid for two years. Gift cards earn no loyalty points.

        Args:
            amount: Value loaded on the card: a multiple of 5 between 10 and 500.
            customer_id: The registered customer buying it, if any.
        """
        if customer_id is not None:
            self._customer(customer_id)
        if not 10 <= amount <= 500 or abs(amount / 5 - round(amount / 5)) > 1e-9:
            raise ToolFailure("gift card amount must be a multiple of 5 between 10 and 500")
        gid = f"GC-{self.state['next_gift_card_number']:05d}"
        self.state["next_gift_card_number"] += 1
        card = {"gift_card_id": gid, "initial_value": float(amount), "balance": float(amount),
                "issued_on": self.state["today"],
                "expires_on": (self._today() + timedelta(days=GIFT_CARD_VALID_DAYS)).isoformat(),
                "purchaser_customer_id": customer_id, "status": "active"}
        self.state["gift_cards"][gid] = card
        return card

    def get_gift_card(self, gift_card_id: str) -> GiftCard:
        """Balance, expiry date and status (active, depleted or expired) of a gift card.

        Args:
            gift_card_id: Gift card identifier, e.g. "GC-00003".
        """
        card = self.state["gift_cards"].get(gift_card_id)
        if card is None:
            raise ToolFailure(f"gift card {gift_card_id} not found")
        return self._gift_card_view(card)
