"""Pharmacy prescriptions: medications with stock and interaction pairs, patients with allergies and
drug plans, prescriptions with refills, fills with interaction checks, transfers and copay quotes."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Literal

from pydantic import BaseModel, Field

from envfactory.env import Environment, ToolFailure

Severity = Literal["minor", "moderate", "major"]
RxStatus = Literal["active", "transferred_out", "discontinued"]
_RANK = {"none": 0, "minor": 1, "moderate": 2, "major": 3}


class Medication(BaseModel):
    medication_id: str
    name: str
    ingredient: str
    strength: str
    form: str
    drug_class: str
    tier: int
    unit_price: float
    stock: int
    controlled_schedule: str | None = None


class Interaction(BaseModel):
    ingredient_a: str
    ingredient_b: str
    severity: Severity
    effect: str


class InsurancePlan(BaseModel):
    plan_id: str
    name: str
    tier_copays: dict[str, float]
    specialty_coinsurance: float
    excluded_medication_ids: list[str] = Field(default_factory=list)


class Patient(BaseModel):
    patient_id: str
    name: str
    date_of_birth: str
    phone: str
    allergies: list[str] = Field(default_factory=list)
    plan_id: str | None = None
    member_id: str | None = None


class Prescription(BaseModel):
    prescription_id: str
    patient_id: str
    medication_id: str
    prescriber: str
    directions: str
    quantity: int
    days_supply: int
    refills_remaining: int
    written_on: str
    expires_on: str
    status: RxStatus = "active"
    first_fill_pending: bool = True
    fill_count: int = 0
    last_filled_on: str | None = None
    transferred_from: str | None = None
    transferred_to: str | None = None


class Fill(BaseModel):
    fill_id: str
    prescription_id: str
    patient_id: str
    medication_id: str
    filled_on: str
    quantity: int
    cash_price: float
    copay: float
    billed_to: Literal["insurance", "cash"]
    refills_remaining: int
    acknowledged_interactions: list[str] = Field(default_factory=list)


class Transfer(BaseModel):
    transfer_id: str
    prescription_id: str
    direction: Literal["in", "out"]
    pharmacy_name: str
    transferred_on: str
    refills_transferred: int


class Policy(BaseModel):
    early_refill_fraction: float = 0.75
    prescription_valid_days: int = 365
    max_days_supply: int = 90
    max_refills: int = 11


class State(BaseModel):
    pharmacy_name: str
    today: str
    policy: Policy = Field(default_factory=Policy)
    medications: dict[str, Medication]
    interactions: list[Interaction]
    insurance_plans: dict[str, InsurancePlan]
    patients: dict[str, Patient]
    prescriptions: dict[str, Prescription]
    fills: dict[str, Fill] = Field(default_factory=dict)
    transfers: dict[str, Transfer] = Field(default_factory=dict)
    next_prescription_number: int = 1
    next_fill_number: int = 1
    next_transfer_number: int = 1


class PatientSummary(BaseModel):
    patient_id: str
    name: str
    date_of_birth: str
    phone: str


class MedicationSummary(BaseModel):
    medication_id: str
    name: str
    strength: str
    form: str
    tier: int
    unit_price: float
    stock: int


class InteractionHit(BaseModel):
    medication_id: str
    medication_name: str
    ingredient: str
    severity: Severity
    effect: str


class InteractionReport(BaseModel):
    patient_id: str
    medication_id: str
    active_medication_ids: list[str]
    allergy_conflict: bool
    interactions: list[InteractionHit]
    highest_severity: Literal["none", "minor", "moderate", "major"]


class CopayQuote(BaseModel):
    prescription_id: str
    medication_id: str
    quantity: int
    cash_price: float
    plan_id: str | None
    covered: bool
    copay: float


def _parse_date(value: str, field: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ToolFailure(f"{field} must be an ISO date (YYYY-MM-DD), got {value!r}") from None


class PharmacyPrescriptions(Environment):
    """A retail pharmacy counter: a formulary of medications with prices, tiers and stock, a table of
    drug-drug interaction pairs, patients with allergies and prescription drug plans, and their
    prescriptions with refills. Pharmacists quote copays, check interactions against a patient's
    currently supplied medications, fill prescriptions (stock, refill and early-refill rules),
    transfer prescriptions to and from other pharmacies and receive stock deliveries."""

    name = "pharmacy_prescriptions"
    domain = "healthcare"
    State = State

    # -- helpers -------------------------------------------------------------
    def _today(self) -> date:
        return date.fromisoformat(self.state["today"])

    def _patient(self, patient_id: str) -> dict:
        patient = self.state["patients"].get(patient_id)
        if patient is None:
            raise ToolFailure(f"patient {patient_id} not found")
        return patient

    def _medication(self, medication_id: str) -> dict:
        med = self.state["medications"].get(medication_id)
        if med is None:
            raise ToolFailure(f"medication {medication_id} not found")
        return med

    def _prescription(self, prescription_id: str) -> dict:
        rx = self.state["prescriptions"].get(prescription_id)
        if rx is None:
            raise ToolFailure(f"prescription {prescription_id} not found")
        return rx

    def _active_medication_ids(self, patient_id: str, exclude_medication_id: str) -> list[str]:
        today = self._today()
        ids = []
        for rx in self.state["prescriptions"].values():
            if rx["patient_id"] != patient_id or rx["status"] != "active" or rx["last_filled_on"] is None:
                continue
            if rx["medication_id"] == exclude_medication_id:
                continue
            if date.fromisoformat(rx["last_filled_on"]) + timedelta(days=rx["days_supply"]) > today:
                if rx["medication_id"] not in ids:
                    ids.append(rx["medication_id"])
        return sorted(ids)

    def _interaction_report(self, patient_id: str, medication_id: str) -> dict:
        patient = self._patient(patient_id)
        med = self._medication(medication_id)
        allergies = {a.lower() for a in patient["allergies"]}
        allergy = med["ingredient"].lower() in allergies or med["drug_class"].lower() in allergies
        active = self._active_medication_ids(patient_id, medication_id)
        hits = []
        for other_id in active:
            other = self.state["medications"][other_id]
            pair = {med["ingredient"], other["ingredient"]}
            for it in self.state["interactions"]:
                if {it["ingredient_a"], it["ingredient_b"]} == pair:
                    hits.append({"medication_id": other_id, "medication_name": other["name"],
                                 "ingredient": other["ingredient"], "severity": it["severity"], "effect": it["effect"]})
        highest = max((h["severity"] for h in hits), key=lambda s: _RANK[s], default="none")
        return {"patient_id": patient_id, "medication_id": medication_id, "active_medication_ids": active,
                "allergy_conflict": allergy, "interactions": hits, "highest_severity": highest}

    def _quote(self, rx: dict) -> dict:
        med = self._medication(rx["medication_id"])
        patient = self._patient(rx["patient_id"])
        cash = round(med["unit_price"] * rx["quantity"], 2)
        plan = self.state["insurance_plans"].get(patient["plan_id"]) if patient["plan_id"] else None
        covered = plan is not None and rx["medication_id"] not in plan["excluded_medication_ids"]
        if not covered:
            copay = cash
        elif med["tier"] >= 4:
            copay = round(cash * plan["specialty_coinsurance"], 2)
        else:
            copay = min(plan["tier_copays"][str(med["tier"])], cash)
        return {"prescription_id": rx["prescription_id"], "medication_id": rx["medication_id"],
                "quantity": rx["quantity"], "cash_price": cash, "plan_id": patient["plan_id"],
                "covered": covered, "copay": float(copay)}

    # -- lookups -------------------------------------------------------------
    def find_patients(self, query: str) -> list[PatientSummary]:
        """Look up patients by part of their name or by exact phone number, sorted by patient id.

        Args:
            query: At least 3 characters of the name (case-insensitive), or the full phone number.
        """
        q = query.strip().lower()
        if len(q) < 3:
            raise ToolFailure("query must have at least 3 characters")
        found = [{"patient_id": p["patient_id"], "name": p["name"], "date_of_birth": p["date_of_birth"],
                  "phone": p["phone"]}
                 for p in self.state["patients"].values() if q in p["name"].lower() or q == p["phone"]]
        return sorted(found, key=lambda x: x["patient_id"])

    def get_patient(self, patient_id: str) -> Patient:
        """Full patient profile: allergies and prescription drug plan.

        Args:
            patient_id: Patient identifier, e.g. "PAT-014".
        """
        return self._patient(patient_id)

    def search_medications(self, query: str, in_stock_only: bool = False) -> list[MedicationSummary]:
        """Search the formulary by brand/generic name, ingredient or drug class, sorted by name then strength.

        Args:
            query: Text to match, e.g. "statin", "lisinopril" or "Eliquis" (case-insensitive, at least 3 characters).
            in_stock_only: Only medications with stock on hand.
        """
        q = query.strip().lower()
        if len(q) < 3:
            raise ToolFailure("query must have at least 3 characters")
        found = []
        for m in self.state["medications"].values():
            if q not in m["name"].lower() and q not in m["ingredient"].lower() and q not in m["drug_class"].lower():
                continue
            if in_stock_only and m["stock"] <= 0:
                continue
            found.append({"medication_id": m["medication_id"], "name": m["name"], "strength": m["strength"],
                          "form": m["form"], "tier": m["tier"], "unit_price": m["unit_price"], "stock": m["stock"]})
        return sorted(found, key=lambda x: (x["name"], x["strength"], x["medication_id"]))

    def get_medication(self, medication_id: str) -> Medication:
        """Full formulary entry of a medication: ingredient, class, tier, unit price, stock, schedule.

        Args:
            medication_id: Medication identifier, e.g. "MED-008".
        """
        return self._medication(medication_id)

    # -- prescriptions -------------------------------------------------------
    def list_patient_prescriptions(self, patient_id: str, status: RxStatus | None = None) -> list[Prescription]:
        """Prescriptions of a patient at this pharmacy, newest first.

        Args:
            patient_id: Patient identifier.
            status: Only prescriptions with this status (active, transferred_out, discontinued).
        """
        self._patient(patient_id)
        rxs = [rx for rx in self.state["prescriptions"].values() if rx["patient_id"] == patient_id
               and (status is None or rx["status"] == status)]
        return sorted(rxs, key=lambda rx: (rx["written_on"], rx["prescription_id"]), reverse=True)

    def get_prescription(self, prescription_id: str) -> Prescription:
        """Details of one prescription: medication, quantity, refills remaining, fill history summary.

        Args:
            prescription_id: Prescription identifier, e.g. "RX-20417".
        """
        return self._prescription(prescription_id)

    def check_interactions(self, patient_id: str, medication_id: str) -> InteractionReport:
        """Screen a medication against the patient's allergies and currently supplied medications
        (active prescriptions whose last fill's days supply has not run out).

        Args:
            patient_id: Patient identifier.
            medication_id: Medication to screen.
        """
        return self._interaction_report(patient_id, medication_id)

    def quote_copay(self, prescription_id: str) -> CopayQuote:
        """What the patient pays for the next fill. Cash price = unit price x quantity. With a drug plan
        that does not exclude the medication, tiers 1-3 pay the plan's flat tier copay (never more than
        the cash price) and tier 4 (specialty) pays the plan's coinsurance share of the cash price.

        Args:
            prescription_id: Prescription identifier.
        """
        return self._quote(self._prescription(prescription_id))

    def fill_prescription(self, prescription_id: str, acknowledge_interactions: bool = False) -> Fill:
        """Dispense the next fill of a prescription. The first fill of a new prescription does not use a
        refill; every later fill uses one refill and is allowed only after the early-refill fraction
        of the previous days supply has elapsed. Refused when the prescription is not active or has
        expired, stock is short, the patient is allergic, or a major interaction exists; moderate
        interactions need acknowledge_interactions=true.

        Args:
            prescription_id: Prescription identifier.
            acknowledge_interactions: The pharmacist reviewed moderate interactions with the patient.
        """
        rx = self._prescription(prescription_id)
        if rx["status"] != "active":
            raise ToolFailure(f"prescription {prescription_id} is {rx['status']}")
        today = self._today()
        if rx["expires_on"] < self.state["today"]:
            raise ToolFailure(f"prescription {prescription_id} expired on {rx['expires_on']}; a new prescription is needed")
        if not rx["first_fill_pending"]:
            if rx["refills_remaining"] <= 0:
                raise ToolFailure(f"prescription {prescription_id} has no refills remaining; contact the prescriber")
            if rx["last_filled_on"] is not None:
                wait = int(rx["days_supply"] * self.state["policy"]["early_refill_fraction"])
                eligible = date.fromisoformat(rx["last_filled_on"]) + timedelta(days=wait)
                if today < eligible:
                    raise ToolFailure(f"too early to refill {prescription_id}: last filled {rx['last_filled_on']}, "
                                      f"eligible from {eligible.isoformat()}")
        med = self._medication(rx["medication_id"])
        if med["stock"] < rx["quantity"]:
            raise ToolFailure(f"only {med['stock']} units of {med['medication_id']} in stock, {rx['quantity']} needed")
        report = self._interaction_report(rx["patient_id"], rx["medication_id"])
        if report["allergy_conflict"]:
            raise ToolFailure(f"patient {rx['patient_id']} has a recorded allergy to {med['name']} "
                              f"({med['ingredient']}, {med['drug_class']})")
        major = [h for h in report["interactions"] if h["severity"] == "major"]
        if major:
            raise ToolFailure(f"major interaction with {major[0]['medication_name']} ({major[0]['effect']}); "
                              f"prescriber review required")
        moderate = [h for h in report["interactions"] if h["severity"] == "moderate"]
        if moderate and not acknowledge_interactions:
            raise ToolFailure(f"moderate interaction with {moderate[0]['medication_name']} ({moderate[0]['effect']}); "
                              f"counsel the patient and retry with acknowledge_interactions=true")
        quote = self._quote(rx)
        med["stock"] -= rx["quantity"]
        if rx["first_fill_pending"]:
            rx["first_fill_pending"] = False
        else:
            rx["refills_remaining"] -= 1
        rx["fill_count"] += 1
        rx["last_filled_on"] = self.state["today"]
        fid = f"FIL-{self.state['next_fill_number']:05d}"
        self.state["next_fill_number"] += 1
        fill = {"fill_id": fid, "prescription_id": prescription_id, "patient_id": rx["patient_id"],
                "medication_id": rx["medication_id"], "filled_on": self.state["today"], "quantity": rx["quantity"],
                "cash_price": quote["cash_price"], "copay": quote["copay"],
                "billed_to": "insurance" if quote["covered"] else "cash", "refills_remaining": rx["refills_remaining"],
                "acknowledged_interactions": [h["medication_id"] for h in report["interactions"]
                                              if h["severity"] != "minor"]}
        self.state["fills"][fid] = fill
        return fill

    def discontinue_prescription(self, prescription_id: str, reason: str) -> Prescription:
        """Mark an active prescription discontinued on the prescriber's instruction; it then no longer
        counts as an active medication for interaction checks and cannot be filled.

        Args:
            prescription_id: Prescription identifier.
            reason: Why the prescriber stopped it, e.g. "switched to apixaban".
        """
        rx = self._prescription(prescription_id)
        if rx["status"] != "active":
            raise ToolFailure(f"prescription {prescription_id} is {rx['status']}, not active")
        if not reason.strip():
            raise ToolFailure("reason must not be empty")
        rx["status"] = "discontinued"
        return rx

    # -- transfers -----------------------------------------------------------
    def transfer_prescription_out(self, prescription_id: str, pharmacy_name: str) -> Transfer:
        """Transfer an active prescription's remaining fills to another pharmacy. Controlled substances
        cannot be transferred, a prescription received by transfer cannot be transferred again, and
        there must be a fill left (first fill pending or refills remaining).

        Args:
            prescription_id: Prescription identifier.
            pharmacy_name: Receiving pharmacy, e.g. "Walgreens #4410, Dayton".
        """
        rx = self._prescription(prescription_id)
        if rx["status"] != "active":
            raise ToolFailure(f"prescription {prescription_id} is {rx['status']}, not active")
        if rx["expires_on"] < self.state["today"]:
            raise ToolFailure(f"prescription {prescription_id} expired on {rx['expires_on']}")
        med = self._medication(rx["medication_id"])
        if med["controlled_schedule"] is not None:
            raise ToolFailure(f"{med['name']} is a {med['controlled_schedule']} controlled substance "
                              f"and cannot be transferred")
        if rx["transferred_from"] is not None:
            raise ToolFailure(f"prescription {prescription_id} was already transferred in from "
                              f"{rx['transferred_from']} and cannot be transferred again")
        if not rx["first_fill_pending"] and rx["refills_remaining"] <= 0:
            raise ToolFailure(f"prescription {prescription_id} has no fills left to transfer")
        if not pharmacy_name.strip():
            raise ToolFailure("pharmacy_name must not be empty")
        refills = rx["refills_remaining"]
        rx["status"] = "transferred_out"
        rx["transferred_to"] = pharmacy_name.strip()
        tid = f"TRF-{self.state['next_transfer_number']:04d}"
        self.state["next_transfer_number"] += 1
        transfer = {"transfer_id": tid, "prescription_id": prescription_id, "direction": "out",
                    "pharmacy_name": pharmacy_name.strip(), "transferred_on": self.state["today"],
                    "refills_transferred": refills}
        self.state["transfers"][tid] = transfer
        return transfer

    def transfer_prescription_in(self, patient_id: str, medication_id: str, from_pharmacy: str, prescriber: str,
                                 directions: str, quantity: int, days_supply: int, refills_remaining: int,
                                 written_on: str) -> Prescription:
        """Receive a prescription transferred from another pharmacy. Its first fill already happened
        there, so every fill here uses a refill. Not allowed for controlled substances, for expired
        prescriptions, or when the patient already has an active prescription for the medication.

        Args:
            patient_id: Patient identifier.
            medication_id: Medication identifier in this pharmacy's formulary.
            from_pharmacy: Name of the sending pharmacy.
            prescriber: Prescribing clinician, e.g. "Dr. Lena Ortiz".
            directions: Dosing directions (sig), e.g. "Take 1 tablet by mouth daily".
            quantity: Units dispensed per fill (at least 1).
            days_supply: Days one fill lasts (1 to the policy's max_days_supply).
            refills_remaining: Refills left on the original prescription (1 to the policy's max_refills).
            written_on: Date the prescriber wrote the prescription, YYYY-MM-DD.
        """
        self._patient(patient_id)
        med = self._medication(medication_id)
        policy = self.state["policy"]
        if med["controlled_schedule"] is not None:
            raise ToolFailure(f"{med['name']} is a {med['controlled_schedule']} controlled substance; "
                              f"transfers are not accepted")
        if quantity < 1:
            raise ToolFailure("quantity must be at least 1")
        if not 1 <= days_supply <= policy["max_days_supply"]:
            raise ToolFailure(f"days_supply must be between 1 and {policy['max_days_supply']}")
        if not 1 <= refills_remaining <= policy["max_refills"]:
            raise ToolFailure(f"refills_remaining must be between 1 and {policy['max_refills']}")
        if not from_pharmacy.strip() or not prescriber.strip() or not directions.strip():
            raise ToolFailure("from_pharmacy, prescriber and directions must not be empty")
        written = _parse_date(written_on, "written_on")
        today = self._today()
        if written > today:
            raise ToolFailure(f"written_on {written_on} is in the future")
        expires = written + timedelta(days=policy["prescription_valid_days"])
        if expires < today:
            raise ToolFailure(f"the prescription expired on {expires.isoformat()}")
        for rx in self.state["prescriptions"].values():
            if rx["patient_id"] == patient_id and rx["medication_id"] == medication_id and rx["status"] == "active":
                raise ToolFailure(f"patient {patient_id} already has active prescription {rx['prescription_id']} "
                                  f"for {medication_id}")
        rid = f"RX-{self.state['next_prescription_number']}"
        self.state["next_prescription_number"] += 1
        rx = {"prescription_id": rid, "patient_id": patient_id, "medication_id": medication_id,
              "prescriber": prescriber.strip(), "directions": directions.strip(), "quantity": quantity,
              "days_supply": days_supply, "refills_remaining": refills_remaining, "written_on": written.isoformat(),
              "expires_on": expires.isoformat(), "status": "active", "first_fill_pending": False, "fill_count": 0,
              "last_filled_on": None, "transferred_from": from_pharmacy.strip(), "transferred_to": None}
        self.state["prescriptions"][rid] = rx
        tid = f"TRF-{self.state['next_transfer_number']:04d}"
        self.state["next_transfer_number"] += 1
        self.state["transfers"][tid] = {"transfer_id": tid, "prescription_id": rid, "direction": "in",
                                        "pharmacy_name": from_pharmacy.strip(), "transferred_on": self.state["today"],
                                        "refills_transferred": refills_remaining}
        return rx

    # -- inventory -----------------------------------------------------------
    def receive_stock(self, medication_id: str, quantity: int) -> Medication:
        """Record a wholesaler delivery: adds units to a medication's stock.

        Args:
            medication_id: Medication identifier.
            quantity: Units received (1-10000).
        """
        med = self._medication(medication_id)
        if not 1 <= quantity <= 10000:
            raise ToolFailure("quantity must be between 1 and 10000")
        med["stock"] += quantity
        return med
