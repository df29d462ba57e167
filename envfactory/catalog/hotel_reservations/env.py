"""Hotel reservations: search hotels, check room availability, book and cancel stays."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Literal

from pydantic import BaseModel, Field

from envfactory.env import Environment, ToolFailure

RoomType = Literal["single", "double", "suite"]


class RoomInventory(BaseModel):
    nightly_rate: float
    count: int


class Hotel(BaseModel):
    hotel_id: str
    name: str
    city: str
    stars: int
    rooms: dict[str, RoomInventory]
    free_cancellation_days: int = 2


class Guest(BaseModel):
    guest_id: str
    name: str
    email: str
    loyalty_points: int = 0


class Reservation(BaseModel):
    reservation_id: str
    guest_id: str
    hotel_id: str
    room_type: RoomType
    check_in: str
    nights: int
    total_price: float
    status: Literal["confirmed", "cancelled"] = "confirmed"
    refund: float = 0.0


class State(BaseModel):
    today: str
    hotels: dict[str, Hotel]
    guests: dict[str, Guest]
    reservations: dict[str, Reservation] = Field(default_factory=dict)
    next_reservation_number: int = 1


class HotelSummary(BaseModel):
    hotel_id: str
    name: str
    city: str
    stars: int
    lowest_nightly_rate: float


class Availability(BaseModel):
    hotel_id: str
    room_type: str
    check_in: str
    nights: int
    available_rooms: int
    nightly_rate: float
    total_price: float


class CancellationResult(BaseModel):
    reservation_id: str
    status: str
    refund: float


def _overlaps(a_start: date, a_nights: int, b_start: date, b_nights: int) -> bool:
    return a_start < b_start + timedelta(days=b_nights) and b_start < a_start + timedelta(days=a_nights)


def _parse_date(value: str, field: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ToolFailure(f"{field} must be an ISO date (YYYY-MM-DD), got {value!r}") from None


class HotelReservations(Environment):
    """A hotel chain's reservation desk: hotels in several cities with room inventories,
    registered guests with loyalty points, and their reservations."""

    name = "hotel_reservations"
    domain = "travel"
    State = State

    def _hotel(self, hotel_id: str) -> dict:
        hotel = self.state["hotels"].get(hotel_id)
        if hotel is None:
            raise ToolFailure(f"hotel {hotel_id} not found")
        return hotel

    def _free_rooms(self, hotel: dict, room_type: str, start: date, nights: int) -> int:
        taken = sum(1 for r in self.state["reservations"].values()
                    if r["hotel_id"] == hotel["hotel_id"] and r["room_type"] == room_type
                    and r["status"] == "confirmed"
                    and _overlaps(start, nights, date.fromisoformat(r["check_in"]), r["nights"]))
        return hotel["rooms"][room_type]["count"] - taken

    def search_hotels(self, city: str, min_stars: int = 1, max_nightly_rate: float | None = None) -> list[HotelSummary]:
        """Find hotels in a city, cheapest first.

        Args:
            city: City name, e.g. "Lisbon" (case-insensitive).
            min_stars: Only hotels with at least this many stars.
            max_nightly_rate: Only hotels whose cheapest room costs at most this per night.
        """
        found = []
        for h in self.state["hotels"].values():
            lowest = min(r["nightly_rate"] for r in h["rooms"].values())
            if h["city"].lower() != city.lower() or h["stars"] < min_stars:
                continue
            if max_nightly_rate is not None and lowest > max_nightly_rate:
                continue
            found.append({"hotel_id": h["hotel_id"], "name": h["name"], "city": h["city"],
                          "stars": h["stars"], "lowest_nightly_rate": lowest})
        return sorted(found, key=lambda x: (x["lowest_nightly_rate"], x["hotel_id"]))

    def get_hotel(self, hotel_id: str) -> Hotel:
        """Full details of a hotel: room types, rates, inventory and cancellation policy.

        Args:
            hotel_id: Hotel identifier, e.g. "HTL-003".
        """
        return self._hotel(hotel_id)

    def check_availability(self, hotel_id: str, room_type: RoomType, check_in: str, nights: int) -> Availability:
        """How many rooms of a type are free for a stay, and its price.

        Args:
            hotel_id: Hotel identifier.
            room_type: One of single, double, suite.
            check_in: Arrival date, YYYY-MM-DD.
            nights: Number of nights (1-30).
        """
        hotel = self._hotel(hotel_id)
        if room_type not in hotel["rooms"]:
            raise ToolFailure(f"hotel {hotel_id} has no {room_type} rooms")
        if not 1 <= nights <= 30:
            raise ToolFailure("nights must be between 1 and 30")
        start = _parse_date(check_in, "check_in")
        rate = hotel["rooms"][room_type]["nightly_rate"]
        return {"hotel_id": hotel_id, "room_type": room_type, "check_in": check_in, "nights": nights,
                "available_rooms": self._free_rooms(hotel, room_type, start, nights),
                "nightly_rate": rate, "total_price": round(rate * nights, 2)}

    def find_guest(self, email: str) -> Guest:
        """Look up a registered guest by email address.

        Args:
            email: The guest's email address.
        """
        for g in self.state["guests"].values():
            if g["email"].lower() == email.lower():
                return g
        raise ToolFailure(f"no guest registered with email {email}")

    def create_reservation(self, guest_id: str, hotel_id: str, room_type: RoomType, check_in: str,
                           nights: int) -> Reservation:
        """Book a room for a guest. Earns 10 loyalty points per night.

        Args:
            guest_id: Guest identifier from find_guest, e.g. "G-0007".
            hotel_id: Hotel identifier.
            room_type: One of single, double, suite.
            check_in: Arrival date, YYYY-MM-DD, not in the past.
            nights: Number of nights (1-30).
        """
        guest = self.state["guests"].get(guest_id)
        if guest is None:
            raise ToolFailure(f"guest {guest_id} not found")
        avail = self.check_availability(hotel_id, room_type, check_in, nights)
        if date.fromisoformat(check_in) < date.fromisoformat(self.state["today"]):
            raise ToolFailure(f"check_in {check_in} is in the past (today is {self.state['today']})")
        if avail["available_rooms"] < 1:
            raise ToolFailure(f"no {room_type} rooms free at {hotel_id} for {nights} nights from {check_in}")
        rid = f"RSV-{self.state['next_reservation_number']:05d}"
        self.state["next_reservation_number"] += 1
        reservation = {"reservation_id": rid, "guest_id": guest_id, "hotel_id": hotel_id, "room_type": room_type,
                       "check_in": check_in, "nights": nights, "total_price": avail["total_price"],
                       "status": "confirmed", "refund": 0.0}
        self.state["reservations"][rid] = reservation
        guest["loyalty_points"] += 10 * nights
        return reservation

    def get_reservation(self, reservation_id: str) -> Reservation:
        """Details of one reservation.

        Args:
            reservation_id: Reservation identifier, e.g. "RSV-00012".
        """
        r = self.state["reservations"].get(reservation_id)
        if r is None:
            raise ToolFailure(f"reservation {reservation_id} not found")
        return r

    def list_guest_reservations(self, guest_id: str, include_cancelled: bool = False) -> list[Reservation]:
        """All reservations of a guest, by check-in date.

        Args:
            guest_id: Guest identifier.
            include_cancelled: Also list cancelled reservations.
        """
        if guest_id not in self.state["guests"]:
            raise ToolFailure(f"guest {guest_id} not found")
        rs = [r for r in self.state["reservations"].values() if r["guest_id"] == guest_id
              and (include_cancelled or r["status"] == "confirmed")]
        return sorted(rs, key=lambda r: (r["check_in"], r["reservation_id"]))

    def cancel_reservation(self, reservation_id: str) -> CancellationResult:
        """Cancel a reservation. Full refund when cancelled at least the hotel's
        free-cancellation days before check-in, otherwise the first night is kept.

        Args:
            reservation_id: Reservation identifier.
        """
        r = self.get_reservation(reservation_id)
        if r["status"] == "cancelled":
            raise ToolFailure(f"reservation {reservation_id} is already cancelled")
        hotel = self._hotel(r["hotel_id"])
        days_before = (date.fromisoformat(r["check_in"]) - date.fromisoformat(self.state["today"])).days
        if days_before < 0:
            raise ToolFailure(f"reservation {reservation_id} has already started")
        nightly = round(r["total_price"] / r["nights"], 2)
        refund = r["total_price"] if days_before >= hotel["free_cancellation_days"] else round(r["total_price"] - nightly, 2)
        r["status"] = "cancelled"
        r["refund"] = refund
        guest = self.state["guests"][r["guest_id"]]
        guest["loyalty_points"] = max(0, guest["loyalty_points"] - 10 * r["nights"])
        return {"reservation_id": reservation_id, "status": "cancelled", "refund": refund}
