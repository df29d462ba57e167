"""Cinema tickets: cinemas, films, screenings with seat maps, seat holds, bookings, concessions, refunds."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, Field

from envfactory.env import Environment, ToolFailure

Rating = Literal["U", "PG", "12A", "15", "18"]
Format = Literal["2D", "3D", "IMAX"]
ConcessionCategory = Literal["snack", "drink", "combo", "alcohol"]

RATING_MIN_AGE = {"U": 0, "PG": 0, "12A": 0, "15": 15, "18": 18}
CHILD_TICKET_RATINGS = ("U", "PG", "12A")
_SEAT_RE = re.compile(r"^([A-Z])([0-9]{1,2})$")


class Cinema(BaseModel):
    cinema_id: str
    name: str
    city: str
    address: str


class Screen(BaseModel):
    screen_id: str
    cinema_id: str
    name: str
    rows: list[str]
    seats_per_row: int
    premium_rows: list[str] = Field(default_factory=list)
    wheelchair_seats: list[str] = Field(default_factory=list)


class Film(BaseModel):
    film_id: str
    title: str
    genre: str
    runtime_min: int
    rating: Rating
    language: str
    release_date: str


class Screening(BaseModel):
    screening_id: str
    film_id: str
    cinema_id: str
    screen_id: str
    starts_at: str  # local time, YYYY-MM-DDTHH:MM
    format: Format
    base_price: float
    status: Literal["scheduled", "cancelled"] = "scheduled"
    sold_seats: list[str] = Field(default_factory=list)


class Customer(BaseModel):
    customer_id: str
    name: str
    email: str
    birth_date: str
    membership: Literal["none", "silver", "gold"] = "none"


class ConcessionItem(BaseModel):
    item_id: str
    cinema_id: str
    name: str
    category: ConcessionCategory
    price: float
    stock: int
    age_restricted: bool = False


class SeatHold(BaseModel):
    hold_id: str
    screening_id: str
    customer_id: str
    seats: list[str]
    expires_at: str
    status: Literal["active", "converted", "released"] = "active"


class ConcessionLine(BaseModel):
    item_id: str
    name: str
    quantity: int
    unit_price: float
    line_total: float


class Booking(BaseModel):
    booking_id: str
    customer_id: str
    screening_id: str
    hold_id: str
    seats: list[str]
    adult_tickets: int
    child_tickets: int
    senior_tickets: int
    tickets_gross: float
    member_discount: float
    tickets_total: float
    booking_fee: float
    concessions: list[ConcessionLine] = Field(default_factory=list)
    concessions_total: float = 0.0
    total: float
    status: Literal["confirmed", "refunded"] = "confirmed"
    refund_amount: float = 0.0


class Pricing(BaseModel):
    premium_surcharge: float
    child_discount: float
    senior_discount: float
    booking_fee_per_ticket: float
    member_discount_pct: dict[str, float]
    hold_minutes: int = 10
    refund_cutoff_hours: int = 2
    max_seats_per_booking: int = 8


class State(BaseModel):
    now: str  # local time, YYYY-MM-DDTHH:MM
    pricing: Pricing
    cinemas: dict[str, Cinema]
    screens: dict[str, Screen]
    films: dict[str, Film]
    screenings: dict[str, Screening]
    customers: dict[str, Customer]
    concessions: dict[str, ConcessionItem]
    holds: dict[str, SeatHold] = Field(default_factory=dict)
    bookings: dict[str, Booking] = Field(default_factory=dict)
    next_hold_number: int = 1
    next_booking_number: int = 1


class ScreeningSummary(BaseModel):
    screening_id: str
    film_id: str
    title: str
    rating: str
    cinema_id: str
    screen_id: str
    starts_at: str
    format: str
    base_price: float
    seats_free: int


class SeatRow(BaseModel):
    row: str
    premium: bool
    free: list[str]
    taken: list[str]


class SeatMap(BaseModel):
    screening_id: str
    film_id: str
    title: str
    starts_at: str
    format: str
    standard_price: float
    premium_price: float
    seats_total: int
    seats_free: int
    wheelchair_seats: list[str]
    rows: list[SeatRow]


class RefundResult(BaseModel):
    booking_id: str
    status: str
    tickets_refund: float
    concessions_refund: float
    fees_refund: float
    refund_amount: float
    seats_released: list[str]


def _parse_day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        raise ToolFailure(f"date must be an ISO date (YYYY-MM-DD), got {value!r}") from None


def _age_on(birth_date: str, day: date) -> int:
    b = date.fromisoformat(birth_date)
    return day.year - b.year - ((day.month, day.day) < (b.month, b.day))


def _seat_key(seat: str) -> tuple[str, int]:
    m = _SEAT_RE.match(seat)
    return (m.group(1), int(m.group(2))) if m else (seat, 0)


class CinemaTickets(Environment):
    """A cinema chain's ticketing desk: cinemas in several cities with numbered-seat screens,
    films with age ratings, scheduled screenings with live seat maps, customers with membership
    discounts, short-lived seat holds that are confirmed into bookings (adult/child/senior tickets),
    concession add-ons with stock, and refunds subject to a cut-off before the show."""

    name = "cinema_tickets"
    domain = "entertainment"
    State = State

    # -- helpers ---------------------------------------------------------------
    def _now(self) -> datetime:
        return datetime.fromisoformat(self.state["now"])

    def _get(self, table: str, key: str, label: str) -> dict:
        row = self.state[table].get(key)
        if row is None:
            raise ToolFailure(f"{label} {key} not found")
        return row

    def _live_holds(self, screening_id: str) -> list[dict]:
        now = self._now()
        return [h for h in self.state["holds"].values()
                if h["screening_id"] == screening_id and h["status"] == "active"
                and datetime.fromisoformat(h["expires_at"]) > now]

    def _occupied(self, screening: dict) -> set[str]:
        taken = set(screening["sold_seats"])
        for h in self._live_holds(screening["screening_id"]):
            taken.update(h["seats"])
        return taken

    def _open_for_sale(self, screening: dict) -> None:
        if screening["status"] != "scheduled":
            raise ToolFailure(f"screening {screening['screening_id']} has been cancelled")
        if datetime.fromisoformat(screening["starts_at"]) <= self._now():
            raise ToolFailure(f"screening {screening['screening_id']} has already started")

    def _seat_price(self, screening: dict, screen: dict, seat: str) -> float:
        row, _ = _seat_key(seat)
        extra = self.state["pricing"]["premium_surcharge"] if row in screen["premium_rows"] else 0.0
        return round(screening["base_price"] + extra, 2)

    def _summary(self, s: dict) -> dict:
        screen = self.state["screens"][s["screen_id"]]
        film = self.state["films"][s["film_id"]]
        free = len(screen["rows"]) * screen["seats_per_row"] - len(self._occupied(s))
        return {"screening_id": s["screening_id"], "film_id": s["film_id"], "title": film["title"],
                "rating": film["rating"], "cinema_id": s["cinema_id"], "screen_id": s["screen_id"],
                "starts_at": s["starts_at"], "format": s["format"], "base_price": s["base_price"], "seats_free": free}

    # -- tools -----------------------------------------------------------------
    def list_cinemas(self, city: str | None = None) -> list[Cinema]:
        """List the chain's cinemas, optionally only those in one city.

        Args:
            city: City name, e.g. "London" (case-insensitive). Omit for all cinemas.
        """
        out = [c for c in self.state["cinemas"].values() if city is None or c["city"].lower() == city.lower()]
        return sorted(out, key=lambda c: c["cinema_id"])

    def search_films(self, title: str | None = None, genre: str | None = None) -> list[Film]:
        """Find films by part of the title and/or genre, alphabetically.

        Args:
            title: Text contained in the title (case-insensitive), e.g. "harbour".
            genre: Genre, e.g. "comedy" (case-insensitive).
        """
        out = [f for f in self.state["films"].values()
               if (title is None or title.lower() in f["title"].lower())
               and (genre is None or f["genre"].lower() == genre.lower())]
        return sorted(out, key=lambda f: (f["title"], f["film_id"]))

    def search_screenings(self, date: str, cinema_id: str | None = None, film_id: str | None = None,
                          format: Format | None = None) -> list[ScreeningSummary]:
        """Upcoming screenings on a day that are still on sale (not cancelled, not yet started),
        by start time, with the number of free seats.

        Args:
            date: Day of the screenings, YYYY-MM-DD.
            cinema_id: Only screenings at this cinema, e.g. "CIN-LON-ISL".
            film_id: Only screenings of this film, e.g. "FLM-004".
            format: Only 2D, 3D or IMAX screenings.
        """
        day = _parse_day(date)
        if cinema_id is not None:
            self._get("cinemas", cinema_id, "cinema")
        if film_id is not None:
            self._get("films", film_id, "film")
        now = self._now()
        out = []
        for s in self.state["screenings"].values():
            start = datetime.fromisoformat(s["starts_at"])
            if start.date() != day or start <= now or s["status"] != "scheduled":
                continue
            if (cinema_id is not None and s["cinema_id"] != cinema_id) or (film_id is not None and s["film_id"] != film_id):
                continue
            if format is not None and s["format"] != format:
                continue
            out.append(self._summary(s))
        return sorted(out, key=lambda x: (x["starts_at"], x["screening_id"]))

    def get_seat_map(self, screening_id: str) -> SeatMap:
        """Seat map of a screening: free and taken seats per row (sold seats and seats under a live
        hold are taken), premium rows, wheelchair spaces and ticket prices.

        Args:
            screening_id: Screening identifier from search_screenings, e.g. "SCR-0031".
        """
        s = self._get("screenings", screening_id, "screening")
        screen = self.state["screens"][s["screen_id"]]
        film = self.state["films"][s["film_id"]]
        taken = self._occupied(s)
        rows = []
        for row in screen["rows"]:
            seats = [f"{row}{n}" for n in range(1, screen["seats_per_row"] + 1)]
            rows.append({"row": row, "premium": row in screen["premium_rows"],
                         "free": [x for x in seats if x not in taken], "taken": [x for x in seats if x in taken]})
        total = len(screen["rows"]) * screen["seats_per_row"]
        return {"screening_id": screening_id, "film_id": s["film_id"], "title": film["title"],
                "starts_at": s["starts_at"], "format": s["format"], "standard_price": s["base_price"],
                "premium_price": round(s["base_price"] + self.state["pricing"]["premium_surcharge"], 2),
                "seats_total": total, "seats_free": total - len(taken),
                "wheelchair_seats": list(screen["wheelchair_seats"]), "rows": rows}

    def find_customer(self, email: str) -> Customer:
        """Look up a registered customer by email address.

        Args:
            email: The customer's email address (case-insensitive).
        """
        for c in self.state["customers"].values():
            if c["email"].lower() == email.lower():
                return c
        raise ToolFailure(f"no customer registered with email {email}")

    def hold_seats(self, screening_id: str, customer_id: str, seats: list[str]) -> SeatHold:
        """Reserve seats for a customer for a few minutes while they decide. Seats must be free,
        the customer must meet the film's age rating, and the selection must not leave a single
        empty seat stranded between taken seats. One live hold per customer and screening.

        Args:
            screening_id: Screening identifier.
            customer_id: Customer identifier from find_customer, e.g. "CU-014".
            seats: Seat labels such as ["F7", "F8"] (row letter + seat number).
        """
        s = self._get("screenings", screening_id, "screening")
        customer = self._get("customers", customer_id, "customer")
        self._open_for_sale(s)
        screen = self.state["screens"][s["screen_id"]]
        pricing = self.state["pricing"]
        if not seats:
            raise ToolFailure("select at least one seat")
        if len(seats) > pricing["max_seats_per_booking"]:
            raise ToolFailure(f"at most {pricing['max_seats_per_booking']} seats per booking")
        wanted = []
        for raw in seats:
            seat = raw.strip().upper()
            m = _SEAT_RE.match(seat)
            if not m or m.group(1) not in screen["rows"] or not 1 <= int(m.group(2)) <= screen["seats_per_row"]:
                raise ToolFailure(f"seat {raw!r} does not exist in {screen['name']} "
                                  f"(rows {screen['rows'][0]}-{screen['rows'][-1]}, seats 1-{screen['seats_per_row']})")
            wanted.append(f"{m.group(1)}{int(m.group(2))}")
        if len(set(wanted)) != len(wanted):
            raise ToolFailure("the same seat is listed twice")
        taken = self._occupied(s)
        clash = [x for x in wanted if x in taken]
        if clash:
            raise ToolFailure(f"seats already taken: {', '.join(clash)}")
        film = self.state["films"][s["film_id"]]
        age = _age_on(customer["birth_date"], datetime.fromisoformat(s["starts_at"]).date())
        if age < RATING_MIN_AGE[film["rating"]]:
            raise ToolFailure(f"{film['title']} is rated {film['rating']}; customer is {age}")
        for h in self._live_holds(screening_id):
            if h["customer_id"] == customer_id:
                raise ToolFailure(f"customer already holds seats for this screening ({h['hold_id']}); "
                                  f"confirm or release it first")
        after = taken | set(wanted)
        for row in sorted({_seat_key(x)[0] for x in wanted}):
            for n in range(2, screen["seats_per_row"]):
                seat = f"{row}{n}"
                if seat in after:
                    continue
                stranded_after = f"{row}{n - 1}" in after and f"{row}{n + 1}" in after
                stranded_before = f"{row}{n - 1}" in taken and f"{row}{n + 1}" in taken
                if stranded_after and not stranded_before:
                    raise ToolFailure(f"this selection would leave seat {seat} as a single empty seat; "
                                      f"include it or choose other seats")
        hid = f"HLD-{self.state['next_hold_number']:05d}"
        self.state["next_hold_number"] += 1
        expires = (self._now() + timedelta(minutes=pricing["hold_minutes"])).strftime("%Y-%m-%dT%H:%M")
        hold = {"hold_id": hid, "screening_id": screening_id, "customer_id": customer_id,
                "seats": sorted(wanted, key=_seat_key), "expires_at": expires, "status": "active"}
        self.state["holds"][hid] = hold
        return hold

    def release_hold(self, hold_id: str) -> SeatHold:
        """Give up held seats before they are booked.

        Args:
            hold_id: Hold identifier from hold_seats, e.g. "HLD-00004".
        """
        hold = self._get("holds", hold_id, "hold")
        if hold["status"] != "active":
            raise ToolFailure(f"hold {hold_id} is already {hold['status']}")
        hold["status"] = "released"
        return hold

    def confirm_booking(self, hold_id: str, child_tickets: int = 0, senior_tickets: int = 0) -> Booking:
        """Pay for a live hold and turn it into a booking. Each held seat is one ticket; tickets not
        declared child or senior are adult. Premium-row seats cost a surcharge, child/senior tickets a
        discount, members get a percentage off tickets, and a booking fee applies per ticket.

        Args:
            hold_id: Hold identifier from hold_seats (must not have expired).
            child_tickets: Number of child tickets (not sold for films rated 15 or 18).
            senior_tickets: Number of senior tickets.
        """
        hold = self._get("holds", hold_id, "hold")
        if hold["status"] != "active":
            raise ToolFailure(f"hold {hold_id} is {hold['status']}")
        if datetime.fromisoformat(hold["expires_at"]) <= self._now():
            raise ToolFailure(f"hold {hold_id} expired at {hold['expires_at']}; hold the seats again")
        s = self._get("screenings", hold["screening_id"], "screening")
        self._open_for_sale(s)
        n = len(hold["seats"])
        if child_tickets < 0 or senior_tickets < 0:
            raise ToolFailure("ticket counts cannot be negative")
        if child_tickets + senior_tickets > n:
            raise ToolFailure(f"only {n} seats are held; child + senior tickets exceed that")
        film = self.state["films"][s["film_id"]]
        if child_tickets and film["rating"] not in CHILD_TICKET_RATINGS:
            raise ToolFailure(f"child tickets are not sold for {film['title']} (rated {film['rating']})")
        pricing = self.state["pricing"]
        screen = self.state["screens"][s["screen_id"]]
        customer = self.state["customers"][hold["customer_id"]]
        gross = sum(self._seat_price(s, screen, x) for x in hold["seats"])
        gross = round(gross - child_tickets * pricing["child_discount"] - senior_tickets * pricing["senior_discount"], 2)
        discount = round(gross * pricing["member_discount_pct"].get(customer["membership"], 0.0) / 100, 2)
        tickets_total = round(gross - discount, 2)
        fee = round(pricing["booking_fee_per_ticket"] * n, 2)
        bid = f"BKG-{self.state['next_booking_number']:05d}"
        self.state["next_booking_number"] += 1
        booking = {"booking_id": bid, "customer_id": hold["customer_id"], "screening_id": s["screening_id"],
                   "hold_id": hold_id, "seats": list(hold["seats"]),
                   "adult_tickets": n - child_tickets - senior_tickets, "child_tickets": child_tickets,
                   "senior_tickets": senior_tickets, "tickets_gross": gross, "member_discount": discount,
                   "tickets_total": tickets_total, "booking_fee": fee, "concessions": [], "concessions_total": 0.0,
                   "total": round(tickets_total + fee, 2), "status": "confirmed", "refund_amount": 0.0}
        self.state["bookings"][bid] = booking
        s["sold_seats"].extend(hold["seats"])
        hold["status"] = "converted"
        return booking

    def list_concessions(self, cinema_id: str, category: ConcessionCategory | None = None) -> list[ConcessionItem]:
        """Snacks and drinks sold at a cinema, with prices and stock.

        Args:
            cinema_id: Cinema identifier.
            category: Only snack, drink, combo or alcohol items.
        """
        self._get("cinemas", cinema_id, "cinema")
        out = [c for c in self.state["concessions"].values()
               if c["cinema_id"] == cinema_id and (category is None or c["category"] == category)]
        return sorted(out, key=lambda c: c["item_id"])

    def add_concessions(self, booking_id: str, item_id: str, quantity: int) -> Booking:
        """Add a concession item, to collect at the cinema, to a confirmed booking before the show starts.
        The item must be sold at the screening's cinema and in stock; alcohol needs an adult customer.

        Args:
            booking_id: Booking identifier, e.g. "BKG-00012".
            item_id: Concession item identifier from list_concessions.
            quantity: How many (1-20).
        """
        booking = self._get("bookings", booking_id, "booking")
        if booking["status"] != "confirmed":
            raise ToolFailure(f"booking {booking_id} is {booking['status']}")
        s = self.state["screenings"][booking["screening_id"]]
        if datetime.fromisoformat(s["starts_at"]) <= self._now():
            raise ToolFailure(f"screening {s['screening_id']} has already started")
        if s["status"] != "scheduled":
            raise ToolFailure(f"screening {s['screening_id']} has been cancelled")
        item = self._get("concessions", item_id, "concession item")
        if item["cinema_id"] != s["cinema_id"]:
            raise ToolFailure(f"{item['name']} ({item_id}) is not sold at {s['cinema_id']}")
        if not 1 <= quantity <= 20:
            raise ToolFailure("quantity must be between 1 and 20")
        if item["stock"] < quantity:
            raise ToolFailure(f"only {item['stock']} x {item['name']} left in stock")
        if item["age_restricted"]:
            customer = self.state["customers"][booking["customer_id"]]
            if _age_on(customer["birth_date"], self._now().date()) < 18:
                raise ToolFailure(f"{item['name']} is only sold to customers aged 18 or over")
        item["stock"] -= quantity
        for line in booking["concessions"]:
            if line["item_id"] == item_id:
                line["quantity"] += quantity
                line["line_total"] = round(line["quantity"] * line["unit_price"], 2)
                break
        else:
            booking["concessions"].append({"item_id": item_id, "name": item["name"], "quantity": quantity,
                                           "unit_price": item["price"],
                                           "line_total": round(quantity * item["price"], 2)})
        booking["concessions_total"] = round(sum(x["line_total"] for x in booking["concessions"]), 2)
        booking["total"] = round(booking["tickets_total"] + booking["booking_fee"] + booking["concessions_total"], 2)
        return booking

    def get_booking(self, booking_id: str) -> Booking:
        """Details of one booking: seats, ticket types, price breakdown, concessions and status.

        Args:
            booking_id: Booking identifier.
        """
        return self._get("bookings", booking_id, "booking")

    def list_customer_bookings(self, customer_id: str, include_refunded: bool = False) -> list[Booking]:
        """A customer's bookings, by booking number.

        Args:
            customer_id: Customer identifier.
            include_refunded: Also list refunded bookings.
        """
        self._get("customers", customer_id, "customer")
        out = [b for b in self.state["bookings"].values() if b["customer_id"] == customer_id
               and (include_refunded or b["status"] == "confirmed")]
        return sorted(out, key=lambda b: b["booking_id"])

    def refund_booking(self, booking_id: str) -> RefundResult:
        """Refund a whole booking and release its seats. Allowed until the cut-off before the start
        (tickets and concessions refunded, booking fee kept); if the cinema cancelled the screening,
        everything including the booking fee is refunded at any time.

        Args:
            booking_id: Booking identifier of a confirmed booking.
        """
        booking = self._get("bookings", booking_id, "booking")
        if booking["status"] != "confirmed":
            raise ToolFailure(f"booking {booking_id} is already {booking['status']}")
        s = self.state["screenings"][booking["screening_id"]]
        if s["status"] == "cancelled":
            fees = booking["booking_fee"]
        else:
            cutoff = datetime.fromisoformat(s["starts_at"]) - timedelta(hours=self.state["pricing"]["refund_cutoff_hours"])
            if self._now() >= cutoff:
                raise ToolFailure(f"refunds close {self.state['pricing']['refund_cutoff_hours']} hours before the "
                                  f"screening ({cutoff.strftime('%Y-%m-%dT%H:%M')})")
            fees = 0.0
        for line in booking["concessions"]:
            item = self.state["concessions"].get(line["item_id"])
            if item is not None:
                item["stock"] += line["quantity"]
        released = [x for x in booking["seats"] if x in s["sold_seats"]]
        s["sold_seats"] = [x for x in s["sold_seats"] if x not in booking["seats"]]
        amount = round(booking["tickets_total"] + booking["concessions_total"] + fees, 2)
        booking["status"] = "refunded"
        booking["refund_amount"] = amount
        return {"booking_id": booking_id, "status": "refunded", "tickets_refund": booking["tickets_total"],
                "concessions_refund": booking["concessions_total"], "fees_refund": fees,
                "refund_amount": amount, "seats_released": released}
