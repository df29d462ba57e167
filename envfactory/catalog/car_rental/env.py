"""Car rental: branches, a vehicle fleet, licensed customers, quotes and rental agreements."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Literal

from pydantic import BaseModel, Field

from envfactory.env import Environment, ToolFailure

Category = Literal["economy", "compact", "midsize", "suv", "van", "premium"]
Transmission = Literal["manual", "automatic"]
FuelType = Literal["petrol", "diesel", "hybrid", "electric"]
Insurance = Literal["basic", "standard", "full"]
RentalStatus = Literal["reserved", "active", "returned", "cancelled"]


class Branch(BaseModel):
    branch_id: str
    name: str
    city: str
    address: str
    is_airport: bool = False


class Vehicle(BaseModel):
    vehicle_id: str
    plate: str
    make: str
    model: str
    year: int
    category: Category
    transmission: Transmission
    fuel_type: FuelType
    seats: int
    daily_rate: float
    km_allowance_per_day: int | None = None  # None = unlimited mileage
    min_driver_age: int = 21
    branch_id: str
    odometer_km: int
    fuel_level: int = Field(ge=0, le=8)  # tank (or battery) in eighths
    status: Literal["available", "rented", "maintenance"] = "available"


class Customer(BaseModel):
    customer_id: str
    name: str
    email: str
    phone: str
    birth_date: str
    licence_number: str
    licence_country: str
    licence_issued: str
    licence_expiry: str
    blocked: bool = False


class Policy(BaseModel):
    insurance_daily_rates: dict[str, float]
    young_driver_age: int = 25
    young_driver_daily_fee: float
    min_licence_years: int = 1
    one_way_fee_same_city: float
    one_way_fee_other_city: float
    long_rental_days: int = 7
    long_rental_discount_pct: float = 10.0
    max_rental_days: int = 30
    quote_valid_days: int = 3
    free_cancellation_days: int = 2
    late_return_multiplier: float = 1.5
    extra_km_rate: float
    refuel_fee_per_eighth: dict[str, float]
    max_extensions: int = 2


class Quote(BaseModel):
    quote_id: str
    customer_id: str
    vehicle_id: str
    pickup_branch_id: str
    return_branch_id: str
    pickup_date: str
    return_date: str
    days: int
    insurance: Insurance
    daily_rate: float
    insurance_daily_rate: float
    young_driver_daily_fee: float
    base_price: float
    discount: float
    insurance_cost: float
    young_driver_fee: float
    one_way_fee: float
    total_price: float
    valid_until: str
    status: Literal["open", "booked"] = "open"


class Rental(BaseModel):
    rental_id: str
    quote_id: str
    customer_id: str
    vehicle_id: str
    pickup_branch_id: str
    return_branch_id: str
    pickup_date: str
    return_date: str
    days: int
    insurance: Insurance
    daily_rate: float
    insurance_daily_rate: float
    young_driver_daily_fee: float
    one_way_fee: float
    total_price: float
    status: RentalStatus = "reserved"
    extensions: int = 0
    start_odometer_km: int | None = None
    start_fuel_level: int | None = None
    end_odometer_km: int | None = None
    end_fuel_level: int | None = None
    returned_on: str | None = None
    mileage_charge: float = 0.0
    fuel_charge: float = 0.0
    late_fee: float = 0.0
    cancellation_fee: float = 0.0
    refund: float = 0.0
    final_total: float | None = None


class State(BaseModel):
    today: str
    policy: Policy
    branches: dict[str, Branch]
    vehicles: dict[str, Vehicle]
    customers: dict[str, Customer]
    quotes: dict[str, Quote] = Field(default_factory=dict)
    rentals: dict[str, Rental] = Field(default_factory=dict)
    next_quote_number: int = 1
    next_rental_number: int = 1


class VehicleSummary(BaseModel):
    vehicle_id: str
    make: str
    model: str
    category: str
    transmission: str
    fuel_type: str
    seats: int
    daily_rate: float
    km_allowance_per_day: int | None
    min_driver_age: int
    estimated_base_price: float


class ExtensionResult(BaseModel):
    rental_id: str
    previous_return_date: str
    return_date: str
    days: int
    extension_charge: float
    total_price: float
    extensions: int


class ReturnReceipt(BaseModel):
    rental_id: str
    vehicle_id: str
    returned_on: str
    return_branch_id: str
    km_driven: int
    km_allowance: int | None
    extra_km: int
    mileage_charge: float
    fuel_charge: float
    late_days: int
    late_fee: float
    prepaid: float
    extra_charges: float
    final_total: float


class CancellationResult(BaseModel):
    rental_id: str
    status: str
    cancellation_fee: float
    refund: float


def _parse_date(value: str, field: str) -> date:
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        raise ToolFailure(f"{field} must be an ISO date (YYYY-MM-DD), got {value!r}") from None


def _years_between(start: date, end: date) -> int:
    """Whole years from start to end (age on `end` of someone born on `start`)."""
    return end.year - start.year - ((end.month, end.day) < (start.month, start.day))


def _price(policy: dict, days: int, daily_rate: float, insurance_daily: float, young_daily: float,
           one_way_fee: float) -> dict:
    base = round(daily_rate * days, 2)
    discount = round(base * policy["long_rental_discount_pct"] / 100, 2) if days >= policy["long_rental_days"] else 0.0
    insurance_cost = round(insurance_daily * days, 2)
    young_fee = round(young_daily * days, 2)
    total = round(base - discount + insurance_cost + young_fee + one_way_fee, 2)
    return {"base_price": base, "discount": discount, "insurance_cost": insurance_cost,
            "young_driver_fee": young_fee, "one_way_fee": one_way_fee, "total_price": total}


class CarRental(Environment):
    """A car rental company's counter system: branches in several cities (airport and downtown),
    a fleet of vehicles with rates, mileage allowances, odometer and fuel levels, customers with
    driver licences, price quotes, and rental agreements that are booked from a quote, picked up,
    extended, returned (with mileage, fuel and late-return charges) or cancelled."""

    name = "car_rental"
    domain = "travel"
    State = State

    # -- helpers ---------------------------------------------------------------
    def _today(self) -> date:
        return date.fromisoformat(self.state["today"])

    def _branch(self, branch_id: str) -> dict:
        branch = self.state["branches"].get(branch_id)
        if branch is None:
            raise ToolFailure(f"branch {branch_id} not found")
        return branch

    def _vehicle(self, vehicle_id: str) -> dict:
        vehicle = self.state["vehicles"].get(vehicle_id)
        if vehicle is None:
            raise ToolFailure(f"vehicle {vehicle_id} not found")
        return vehicle

    def _customer(self, customer_id: str) -> dict:
        customer = self.state["customers"].get(customer_id)
        if customer is None:
            raise ToolFailure(f"customer {customer_id} not found")
        return customer

    def _rental(self, rental_id: str) -> dict:
        rental = self.state["rentals"].get(rental_id)
        if rental is None:
            raise ToolFailure(f"rental {rental_id} not found")
        return rental

    def _period(self, pickup_date: str, return_date: str) -> tuple[date, date, int]:
        start = _parse_date(pickup_date, "pickup_date")
        end = _parse_date(return_date, "return_date")
        if start < self._today():
            raise ToolFailure(f"pickup_date {pickup_date} is in the past (today is {self.state['today']})")
        if end <= start:
            raise ToolFailure("return_date must be after pickup_date")
        days = (end - start).days
        if days > self.state["policy"]["max_rental_days"]:
            raise ToolFailure(f"rentals are limited to {self.state['policy']['max_rental_days']} days")
        return start, end, days

    def _is_free(self, vehicle_id: str, start: date, end: date, ignore_rental: str | None = None) -> bool:
        """True when no reserved/active rental of the vehicle overlaps [start, end)."""
        today = self._today()
        for r in self.state["rentals"].values():
            if r["vehicle_id"] != vehicle_id or r["rental_id"] == ignore_rental:
                continue
            if r["status"] not in ("reserved", "active"):
                continue
            r_start = date.fromisoformat(r["pickup_date"])
            r_end = date.fromisoformat(r["return_date"])
            if r["status"] == "active" and r_end < today:
                r_end = today + timedelta(days=1)  # overdue: not back yet
            if start < r_end and r_start < end:
                return False
        return True

    def _check_driver(self, customer: dict, vehicle: dict, start: date, end: date) -> int:
        """Refuse drivers who may not take this vehicle; return the driver's age at pick-up."""
        if customer["blocked"]:
            raise ToolFailure(f"customer {customer['customer_id']} is blocked from renting")
        if date.fromisoformat(customer["licence_expiry"]) < end:
            raise ToolFailure(f"driver licence of {customer['customer_id']} expires on {customer['licence_expiry']}, "
                              f"before the end of the rental")
        held = _years_between(date.fromisoformat(customer["licence_issued"]), start)
        if held < self.state["policy"]["min_licence_years"]:
            raise ToolFailure(f"driver licence must have been held for at least "
                              f"{self.state['policy']['min_licence_years']} year(s) at pick-up")
        age = _years_between(date.fromisoformat(customer["birth_date"]), start)
        if age < vehicle["min_driver_age"]:
            raise ToolFailure(f"driver must be at least {vehicle['min_driver_age']} to rent {vehicle['vehicle_id']} "
                              f"(customer will be {age})")
        return age

    # -- tools -----------------------------------------------------------------
    def list_branches(self, city: str | None = None) -> list[Branch]:
        """List rental branches, optionally only those in one city.

        Args:
            city: City name, e.g. "Porto" (case-insensitive). Omit for all branches.
        """
        out = [b for b in self.state["branches"].values() if city is None or b["city"].lower() == city.lower()]
        return sorted(out, key=lambda b: b["branch_id"])

    def search_vehicles(self, branch_id: str, pickup_date: str, return_date: str, category: Category | None = None,
                        transmission: Transmission | None = None, min_seats: int = 1,
                        max_daily_rate: float | None = None) -> list[VehicleSummary]:
        """Vehicles at a branch that are free for the whole rental period, cheapest first.
        Vehicles in maintenance are never listed.

        Args:
            branch_id: Pick-up branch identifier, e.g. "BR-LIS-APT".
            pickup_date: Pick-up date, YYYY-MM-DD (today or later).
            return_date: Return date, YYYY-MM-DD, after pickup_date.
            category: Only this vehicle category (economy, compact, midsize, suv, van, premium).
            transmission: Only manual or automatic vehicles.
            min_seats: Only vehicles with at least this many seats.
            max_daily_rate: Only vehicles whose daily rate is at most this.
        """
        self._branch(branch_id)
        start, end, days = self._period(pickup_date, return_date)
        found = []
        for v in self.state["vehicles"].values():
            if v["branch_id"] != branch_id or v["status"] == "maintenance":
                continue
            if category is not None and v["category"] != category:
                continue
            if transmission is not None and v["transmission"] != transmission:
                continue
            if v["seats"] < min_seats or (max_daily_rate is not None and v["daily_rate"] > max_daily_rate):
                continue
            if not self._is_free(v["vehicle_id"], start, end):
                continue
            found.append({k: v[k] for k in ("vehicle_id", "make", "model", "category", "transmission", "fuel_type",
                                            "seats", "daily_rate", "km_allowance_per_day", "min_driver_age")}
                         | {"estimated_base_price": round(v["daily_rate"] * days, 2)})
        return sorted(found, key=lambda x: (x["daily_rate"], x["vehicle_id"]))

    def get_vehicle(self, vehicle_id: str) -> Vehicle:
        """Full details of a vehicle: rate, mileage allowance, location, odometer, fuel level and status.

        Args:
            vehicle_id: Vehicle identifier, e.g. "VH-0012".
        """
        return self._vehicle(vehicle_id)

    def find_customer(self, email: str | None = None, licence_number: str | None = None) -> Customer:
        """Look up a customer by email address or driver licence number (give at least one).

        Args:
            email: The customer's email address (case-insensitive).
            licence_number: The customer's driver licence number.
        """
        if email is None and licence_number is None:
            raise ToolFailure("give an email or a licence_number")
        for c in self.state["customers"].values():
            if email is not None and c["email"].lower() != email.lower():
                continue
            if licence_number is not None and c["licence_number"].upper() != licence_number.upper():
                continue
            return c
        raise ToolFailure("no customer matches the given email/licence number")

    def create_quote(self, customer_id: str, vehicle_id: str, pickup_date: str, return_date: str,
                     insurance: Insurance = "basic", return_branch_id: str | None = None) -> Quote:
        """Price a rental of a vehicle for a customer. Checks the driver's licence (valid for the whole
        rental, held long enough) and age (vehicle minimum; under the young-driver age a daily fee applies).
        Rentals of 7+ days get a discount on the base price; returning to another branch adds a one-way fee.
        The quote is valid for a few days and must be booked with book_rental.

        Args:
            customer_id: Customer identifier from find_customer, e.g. "CU-0004".
            vehicle_id: Vehicle identifier from search_vehicles; picked up at the vehicle's current branch.
            pickup_date: Pick-up date, YYYY-MM-DD (today or later).
            return_date: Return date, YYYY-MM-DD, after pickup_date (at most 30 days).
            insurance: Cover level: basic (included), standard or full (daily surcharge).
            return_branch_id: Drop-off branch if different from the pick-up branch.
        """
        customer = self._customer(customer_id)
        vehicle = self._vehicle(vehicle_id)
        start, end, days = self._period(pickup_date, return_date)
        if vehicle["status"] == "maintenance":
            raise ToolFailure(f"vehicle {vehicle_id} is in maintenance")
        pickup_branch = self._branch(vehicle["branch_id"])
        return_branch = self._branch(return_branch_id) if return_branch_id is not None else pickup_branch
        if not self._is_free(vehicle_id, start, end):
            raise ToolFailure(f"vehicle {vehicle_id} is already booked between {pickup_date} and {return_date}")
        age = self._check_driver(customer, vehicle, start, end)
        policy = self.state["policy"]
        if return_branch["branch_id"] == pickup_branch["branch_id"]:
            one_way = 0.0
        elif return_branch["city"] == pickup_branch["city"]:
            one_way = policy["one_way_fee_same_city"]
        else:
            one_way = policy["one_way_fee_other_city"]
        insurance_daily = policy["insurance_daily_rates"][insurance]
        young_daily = policy["young_driver_daily_fee"] if age < policy["young_driver_age"] else 0.0
        qid = f"Q-{self.state['next_quote_number']:05d}"
        self.state["next_quote_number"] += 1
        quote = {"quote_id": qid, "customer_id": customer_id, "vehicle_id": vehicle_id,
                 "pickup_branch_id": pickup_branch["branch_id"], "return_branch_id": return_branch["branch_id"],
                 "pickup_date": pickup_date, "return_date": return_date, "days": days, "insurance": insurance,
                 "daily_rate": vehicle["daily_rate"], "insurance_daily_rate": insurance_daily,
                 "young_driver_daily_fee": young_daily,
                 **_price(policy, days, vehicle["daily_rate"], insurance_daily, young_daily, one_way),
                 "valid_until": (self._today() + timedelta(days=policy["quote_valid_days"])).isoformat(),
                 "status": "open"}
        self.state["quotes"][qid] = quote
        return quote

    def book_rental(self, quote_id: str) -> Rental:
        """Turn an open, unexpired quote into a reserved rental at the quoted price.

        Args:
            quote_id: Quote identifier from create_quote, e.g. "Q-00007".
        """
        quote = self.state["quotes"].get(quote_id)
        if quote is None:
            raise ToolFailure(f"quote {quote_id} not found")
        if quote["status"] != "open":
            raise ToolFailure(f"quote {quote_id} has already been booked")
        if date.fromisoformat(quote["valid_until"]) < self._today():
            raise ToolFailure(f"quote {quote_id} expired on {quote['valid_until']}; create a new quote")
        start, end, _ = self._period(quote["pickup_date"], quote["return_date"])
        vehicle = self._vehicle(quote["vehicle_id"])
        if vehicle["status"] == "maintenance":
            raise ToolFailure(f"vehicle {vehicle['vehicle_id']} is in maintenance")
        if not self._is_free(vehicle["vehicle_id"], start, end):
            raise ToolFailure(f"vehicle {vehicle['vehicle_id']} is no longer free for these dates")
        self._check_driver(self._customer(quote["customer_id"]), vehicle, start, end)
        rid = f"RA-{self.state['next_rental_number']:05d}"
        self.state["next_rental_number"] += 1
        rental = {"rental_id": rid, "quote_id": quote_id,
                  **{k: quote[k] for k in ("customer_id", "vehicle_id", "pickup_branch_id", "return_branch_id",
                                           "pickup_date", "return_date", "days", "insurance", "daily_rate",
                                           "insurance_daily_rate", "young_driver_daily_fee", "one_way_fee",
                                           "total_price")},
                  "status": "reserved", "extensions": 0, "start_odometer_km": None, "start_fuel_level": None,
                  "end_odometer_km": None, "end_fuel_level": None, "returned_on": None, "mileage_charge": 0.0,
                  "fuel_charge": 0.0, "late_fee": 0.0, "cancellation_fee": 0.0, "refund": 0.0, "final_total": None}
        self.state["rentals"][rid] = rental
        quote["status"] = "booked"
        return rental

    def get_rental(self, rental_id: str) -> Rental:
        """Details of one rental agreement.

        Args:
            rental_id: Rental identifier, e.g. "RA-00003".
        """
        return self._rental(rental_id)

    def list_customer_rentals(self, customer_id: str, status: RentalStatus | None = None) -> list[Rental]:
        """A customer's rentals, by pick-up date.

        Args:
            customer_id: Customer identifier.
            status: Only rentals in this status (reserved, active, returned, cancelled).
        """
        self._customer(customer_id)
        out = [r for r in self.state["rentals"].values()
               if r["customer_id"] == customer_id and (status is None or r["status"] == status)]
        return sorted(out, key=lambda r: (r["pickup_date"], r["rental_id"]))

    def pick_up_vehicle(self, rental_id: str) -> Rental:
        """Hand over the vehicle of a reserved rental on its pick-up date; records the odometer and
        fuel level at hand-over.

        Args:
            rental_id: Rental identifier of a reserved rental whose pick-up date is today.
        """
        rental = self._rental(rental_id)
        if rental["status"] != "reserved":
            raise ToolFailure(f"rental {rental_id} is {rental['status']}, not reserved")
        if rental["pickup_date"] != self.state["today"]:
            raise ToolFailure(f"rental {rental_id} is scheduled for pick-up on {rental['pickup_date']}, "
                              f"not today ({self.state['today']})")
        vehicle = self._vehicle(rental["vehicle_id"])
        if vehicle["status"] != "available":
            raise ToolFailure(f"vehicle {vehicle['vehicle_id']} has status {vehicle['status']} and cannot be handed over")
        if vehicle["branch_id"] != rental["pickup_branch_id"]:
            raise ToolFailure(f"vehicle {vehicle['vehicle_id']} is at {vehicle['branch_id']}, "
                              f"not at pick-up branch {rental['pickup_branch_id']}")
        customer = self._customer(rental["customer_id"])
        self._check_driver(customer, vehicle, self._today(), date.fromisoformat(rental["return_date"]))
        rental["status"] = "active"
        rental["start_odometer_km"] = vehicle["odometer_km"]
        rental["start_fuel_level"] = vehicle["fuel_level"]
        vehicle["status"] = "rented"
        return rental

    def extend_rental(self, rental_id: str, new_return_date: str) -> ExtensionResult:
        """Move the return date of a reserved or active rental later and charge the difference.
        Overdue rentals cannot be extended, the vehicle must be free for the added days, and a
        rental can be extended at most twice.

        Args:
            rental_id: Rental identifier.
            new_return_date: New return date, YYYY-MM-DD, after the current one.
        """
        rental = self._rental(rental_id)
        if rental["status"] not in ("reserved", "active"):
            raise ToolFailure(f"rental {rental_id} is {rental['status']} and cannot be extended")
        policy = self.state["policy"]
        old_end = date.fromisoformat(rental["return_date"])
        new_end = _parse_date(new_return_date, "new_return_date")
        if rental["status"] == "active" and old_end < self._today():
            raise ToolFailure(f"rental {rental_id} is overdue since {rental['return_date']}; return the vehicle first")
        if new_end <= old_end:
            raise ToolFailure(f"new_return_date must be after the current return date {rental['return_date']}")
        if rental["extensions"] >= policy["max_extensions"]:
            raise ToolFailure(f"rental {rental_id} has already been extended {rental['extensions']} times")
        days = (new_end - date.fromisoformat(rental["pickup_date"])).days
        if days > policy["max_rental_days"]:
            raise ToolFailure(f"rentals are limited to {policy['max_rental_days']} days")
        customer = self._customer(rental["customer_id"])
        if date.fromisoformat(customer["licence_expiry"]) < new_end:
            raise ToolFailure(f"driver licence expires on {customer['licence_expiry']}, before {new_return_date}")
        if not self._is_free(rental["vehicle_id"], old_end, new_end, ignore_rental=rental_id):
            raise ToolFailure(f"vehicle {rental['vehicle_id']} is booked by someone else before {new_return_date}")
        price = _price(policy, days, rental["daily_rate"], rental["insurance_daily_rate"],
                       rental["young_driver_daily_fee"], rental["one_way_fee"])
        charge = round(price["total_price"] - rental["total_price"], 2)
        previous = rental["return_date"]
        rental["return_date"] = new_return_date
        rental["days"] = days
        rental["total_price"] = price["total_price"]
        rental["extensions"] += 1
        return {"rental_id": rental_id, "previous_return_date": previous, "return_date": new_return_date,
                "days": days, "extension_charge": charge, "total_price": price["total_price"],
                "extensions": rental["extensions"]}

    def return_vehicle(self, rental_id: str, odometer_km: int, fuel_level: int) -> ReturnReceipt:
        """Check a vehicle back in today at the rental's return branch and settle the bill.
        Extra km beyond the allowance (per rented day, late days included) are charged per km,
        missing fuel per eighth of a tank, and each late day at the daily rate times the late multiplier.
        Early returns are not refunded.

        Args:
            rental_id: Rental identifier of an active rental.
            odometer_km: Odometer reading at return, in km (not below the reading at pick-up).
            fuel_level: Fuel (or battery) level at return in eighths of a tank, 0-8.
        """
        rental = self._rental(rental_id)
        if rental["status"] != "active":
            raise ToolFailure(f"rental {rental_id} is {rental['status']}, not active")
        if not 0 <= fuel_level <= 8:
            raise ToolFailure("fuel_level must be between 0 and 8 (eighths of a tank)")
        if odometer_km < rental["start_odometer_km"]:
            raise ToolFailure(f"odometer_km {odometer_km} is below the pick-up reading {rental['start_odometer_km']}")
        policy = self.state["policy"]
        vehicle = self._vehicle(rental["vehicle_id"])
        late_days = max(0, (self._today() - date.fromisoformat(rental["return_date"])).days)
        km_driven = odometer_km - rental["start_odometer_km"]
        allowance = None
        extra_km = 0
        if vehicle["km_allowance_per_day"] is not None:
            allowance = vehicle["km_allowance_per_day"] * (rental["days"] + late_days)
            extra_km = max(0, km_driven - allowance)
        mileage = round(extra_km * policy["extra_km_rate"], 2)
        fuel = round(max(0, rental["start_fuel_level"] - fuel_level)
                     * policy["refuel_fee_per_eighth"][vehicle["fuel_type"]], 2)
        late_fee = round(late_days * rental["daily_rate"] * policy["late_return_multiplier"], 2)
        extra = round(mileage + fuel + late_fee, 2)
        final = round(rental["total_price"] + extra, 2)
        rental.update({"status": "returned", "end_odometer_km": odometer_km, "end_fuel_level": fuel_level,
                       "returned_on": self.state["today"], "mileage_charge": mileage, "fuel_charge": fuel,
                       "late_fee": late_fee, "final_total": final})
        vehicle.update({"odometer_km": odometer_km, "fuel_level": fuel_level,
                        "branch_id": rental["return_branch_id"], "status": "available"})
        return {"rental_id": rental_id, "vehicle_id": vehicle["vehicle_id"], "returned_on": self.state["today"],
                "return_branch_id": rental["return_branch_id"], "km_driven": km_driven, "km_allowance": allowance,
                "extra_km": extra_km, "mileage_charge": mileage, "fuel_charge": fuel, "late_days": late_days,
                "late_fee": late_fee, "prepaid": rental["total_price"], "extra_charges": extra, "final_total": final}

    def cancel_rental(self, rental_id: str) -> CancellationResult:
        """Cancel a reserved rental before its pick-up date. Free when cancelled at least the policy's
        free-cancellation days before pick-up; otherwise one day at the daily rate is kept.

        Args:
            rental_id: Rental identifier of a reserved rental.
        """
        rental = self._rental(rental_id)
        if rental["status"] != "reserved":
            raise ToolFailure(f"rental {rental_id} is {rental['status']} and cannot be cancelled")
        days_before = (date.fromisoformat(rental["pickup_date"]) - self._today()).days
        if days_before < 0:
            raise ToolFailure(f"pick-up date {rental['pickup_date']} has passed; rental {rental_id} was a no-show")
        fee = 0.0 if days_before >= self.state["policy"]["free_cancellation_days"] else rental["daily_rate"]
        refund = round(rental["total_price"] - fee, 2)
        rental.update({"status": "cancelled", "cancellation_fee": fee, "refund": refund, "final_total": fee})
        return {"rental_id": rental_id, "status": "cancelled", "cancellation_fee": fee, "refund": refund}
