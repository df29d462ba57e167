"""Clinic appointments: doctors with weekly schedules, patients with insurance, bookings,
specialist referrals and visit notes."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Literal

from pydantic import BaseModel, Field

from envfactory.env import Environment, ToolFailure

AppointmentStatus = Literal["scheduled", "completed", "cancelled", "no_show"]
WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


class Insurance(BaseModel):
    insurer: str
    member_id: str
    primary_copay: float
    specialist_copay: float


class Doctor(BaseModel):
    doctor_id: str
    name: str
    specialty: str
    primary_care: bool
    weekly_slots: dict[str, list[str]]
    days_off: list[str] = Field(default_factory=list)
    accepted_insurers: list[str] = Field(default_factory=list)
    visit_fee: float


class Patient(BaseModel):
    patient_id: str
    name: str
    date_of_birth: str
    email: str
    phone: str
    insurance: Insurance | None = None
    primary_doctor_id: str | None = None


class Appointment(BaseModel):
    appointment_id: str
    patient_id: str
    doctor_id: str
    date: str
    time: str
    reason: str
    status: AppointmentStatus = "scheduled"
    referral_id: str | None = None
    billing: Literal["insurance", "self_pay"]
    copay: float
    reschedule_count: int = 0
    cancellation_fee: float = 0.0


class Referral(BaseModel):
    referral_id: str
    patient_id: str
    referring_doctor_id: str
    specialty: str
    reason: str
    issued_on: str
    expires_on: str
    status: Literal["active", "used"] = "active"
    appointment_id: str | None = None


class VisitNote(BaseModel):
    note_id: str
    appointment_id: str
    patient_id: str
    doctor_id: str
    visit_date: str
    summary: str
    diagnosis: str
    follow_up_weeks: int | None = None


class Policy(BaseModel):
    cancellation_notice_days: int = 2
    late_cancellation_fee: float = 40.0
    max_reschedules: int = 2
    booking_horizon_days: int = 60
    referral_valid_days: int = 90


class State(BaseModel):
    clinic_name: str
    today: str
    policy: Policy = Field(default_factory=Policy)
    doctors: dict[str, Doctor]
    patients: dict[str, Patient]
    appointments: dict[str, Appointment] = Field(default_factory=dict)
    referrals: dict[str, Referral] = Field(default_factory=dict)
    visit_notes: dict[str, VisitNote] = Field(default_factory=dict)
    next_appointment_number: int = 1
    next_referral_number: int = 1
    next_note_number: int = 1


class DoctorSummary(BaseModel):
    doctor_id: str
    name: str
    specialty: str
    primary_care: bool
    visit_fee: float
    accepted_insurers: list[str]


class PatientSummary(BaseModel):
    patient_id: str
    name: str
    date_of_birth: str
    email: str


class OpenSlot(BaseModel):
    doctor_id: str
    date: str
    weekday: str
    time: str


class CancellationResult(BaseModel):
    appointment_id: str
    status: str
    cancellation_fee: float
    referral_restored: bool


def _parse_date(value: str, field: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ToolFailure(f"{field} must be an ISO date (YYYY-MM-DD), got {value!r}") from None


class ClinicAppointments(Environment):
    """The front desk of a multi-doctor outpatient clinic: primary-care doctors and specialists
    with weekly appointment slots and accepted insurers, registered patients with insurance
    and a primary doctor, appointments (book, reschedule, cancel with late-cancellation fees),
    specialist referrals that must be issued by the patient's primary doctor, and visit notes."""

    name = "clinic_appointments"
    domain = "healthcare"
    State = State

    # -- helpers -------------------------------------------------------------
    def _today(self) -> date:
        return date.fromisoformat(self.state["today"])

    def _doctor(self, doctor_id: str) -> dict:
        doctor = self.state["doctors"].get(doctor_id)
        if doctor is None:
            raise ToolFailure(f"doctor {doctor_id} not found")
        return doctor

    def _patient(self, patient_id: str) -> dict:
        patient = self.state["patients"].get(patient_id)
        if patient is None:
            raise ToolFailure(f"patient {patient_id} not found")
        return patient

    def _appointment(self, appointment_id: str) -> dict:
        appt = self.state["appointments"].get(appointment_id)
        if appt is None:
            raise ToolFailure(f"appointment {appointment_id} not found")
        return appt

    def _slot_taken(self, doctor_id: str, day: str, time: str, ignore: str | None = None) -> bool:
        return any(a["doctor_id"] == doctor_id and a["date"] == day and a["time"] == time
                   and a["status"] in ("scheduled", "completed") and a["appointment_id"] != ignore
                   for a in self.state["appointments"].values())

    def _check_slot(self, doctor: dict, patient_id: str, day: str, time: str, ignore: str | None = None,
                    field: str = "date") -> date:
        d = _parse_date(day, field)
        today = self._today()
        if d <= today:
            raise ToolFailure(f"appointments must be booked for a future date (today is {self.state['today']})")
        horizon = self.state["policy"]["booking_horizon_days"]
        if (d - today).days > horizon:
            raise ToolFailure(f"appointments can be booked at most {horizon} days ahead")
        if day in doctor["days_off"]:
            raise ToolFailure(f"{doctor['name']} is not in the clinic on {day}")
        weekday = WEEKDAYS[d.weekday()]
        if time not in doctor["weekly_slots"].get(weekday, []):
            raise ToolFailure(f"{doctor['name']} has no {time} slot on {weekday}s")
        if self._slot_taken(doctor["doctor_id"], day, time, ignore):
            raise ToolFailure(f"the {time} slot of {doctor['doctor_id']} on {day} is already booked")
        for a in self.state["appointments"].values():
            if a["patient_id"] != patient_id or a["status"] != "scheduled" or a["appointment_id"] == ignore:
                continue
            if a["date"] == day and a["time"] == time:
                raise ToolFailure(f"patient {patient_id} already has appointment {a['appointment_id']} at {day} {time}")
            if a["date"] == day and a["doctor_id"] == doctor["doctor_id"]:
                raise ToolFailure(f"patient {patient_id} already sees {doctor['doctor_id']} on {day} "
                                  f"({a['appointment_id']})")
        return d

    # -- doctors and patients ------------------------------------------------
    def search_doctors(self, specialty: str | None = None, insurer: str | None = None) -> list[DoctorSummary]:
        """Find doctors of the clinic, optionally by specialty and accepted insurer, sorted by doctor id.

        Args:
            specialty: Specialty name, e.g. "Cardiology" or "Family Medicine" (case-insensitive).
            insurer: Only doctors who accept this insurer, e.g. "Aetna" (case-insensitive).
        """
        found = []
        for d in self.state["doctors"].values():
            if specialty is not None and d["specialty"].lower() != specialty.strip().lower():
                continue
            if insurer is not None and insurer.strip().lower() not in [i.lower() for i in d["accepted_insurers"]]:
                continue
            found.append({"doctor_id": d["doctor_id"], "name": d["name"], "specialty": d["specialty"],
                          "primary_care": d["primary_care"], "visit_fee": d["visit_fee"],
                          "accepted_insurers": list(d["accepted_insurers"])})
        return sorted(found, key=lambda x: x["doctor_id"])

    def get_doctor(self, doctor_id: str) -> Doctor:
        """Full profile of a doctor: specialty, weekly slots, days off, accepted insurers and fee.

        Args:
            doctor_id: Doctor identifier, e.g. "DR-03".
        """
        return self._doctor(doctor_id)

    def find_patients(self, query: str) -> list[PatientSummary]:
        """Look up registered patients by part of their name or by exact email, sorted by patient id.

        Args:
            query: At least 3 characters of the patient's name, or their full email address (case-insensitive).
        """
        q = query.strip().lower()
        if len(q) < 3:
            raise ToolFailure("query must have at least 3 characters")
        found = [{"patient_id": p["patient_id"], "name": p["name"], "date_of_birth": p["date_of_birth"],
                  "email": p["email"]}
                 for p in self.state["patients"].values()
                 if q in p["name"].lower() or q == p["email"].lower()]
        return sorted(found, key=lambda x: x["patient_id"])

    def get_patient(self, patient_id: str) -> Patient:
        """Full record of a patient: contact details, insurance and primary doctor.

        Args:
            patient_id: Patient identifier, e.g. "PT-0012".
        """
        return self._patient(patient_id)

    # -- schedule ------------------------------------------------------------
    def list_open_slots(self, doctor_id: str, start_date: str, days: int = 7) -> list[OpenSlot]:
        """Free appointment slots of a doctor over a date range, in chronological order. Only future
        dates within the booking horizon are listed; days off and booked slots are skipped.

        Args:
            doctor_id: Doctor identifier.
            start_date: First date to look at, YYYY-MM-DD.
            days: Number of consecutive days to scan (1-14).
        """
        doctor = self._doctor(doctor_id)
        start = _parse_date(start_date, "start_date")
        if not 1 <= days <= 14:
            raise ToolFailure("days must be between 1 and 14")
        today = self._today()
        horizon = self.state["policy"]["booking_horizon_days"]
        slots = []
        for i in range(days):
            d = start + timedelta(days=i)
            if d <= today or (d - today).days > horizon or d.isoformat() in doctor["days_off"]:
                continue
            weekday = WEEKDAYS[d.weekday()]
            for t in sorted(doctor["weekly_slots"].get(weekday, [])):
                if not self._slot_taken(doctor_id, d.isoformat(), t):
                    slots.append({"doctor_id": doctor_id, "date": d.isoformat(), "weekday": weekday, "time": t})
        return slots

    # -- referrals -----------------------------------------------------------
    def issue_referral(self, patient_id: str, referring_doctor_id: str, specialty: str, reason: str) -> Referral:
        """Issue a specialist referral. Only the patient's own primary-care doctor may refer, the
        specialty must be offered by the clinic, and a patient can hold only one valid unused
        referral per specialty. Referrals expire after the policy's referral_valid_days.

        Args:
            patient_id: Patient identifier.
            referring_doctor_id: The primary-care doctor issuing the referral (the patient's primary doctor).
            specialty: Specialty referred to, e.g. "Dermatology" (case-insensitive).
            reason: Clinical reason for the referral.
        """
        patient = self._patient(patient_id)
        doctor = self._doctor(referring_doctor_id)
        if not doctor["primary_care"]:
            raise ToolFailure(f"{referring_doctor_id} is a specialist; only primary-care doctors issue referrals")
        if patient["primary_doctor_id"] != referring_doctor_id:
            raise ToolFailure(f"{referring_doctor_id} is not the primary doctor of {patient_id} "
                              f"(primary doctor: {patient['primary_doctor_id']})")
        canonical = next((d["specialty"] for d in self.state["doctors"].values()
                          if not d["primary_care"] and d["specialty"].lower() == specialty.strip().lower()), None)
        if canonical is None:
            raise ToolFailure(f"the clinic has no specialist in {specialty!r}")
        if not reason.strip():
            raise ToolFailure("reason must not be empty")
        for r in self.state["referrals"].values():
            if (r["patient_id"] == patient_id and r["specialty"] == canonical and r["status"] == "active"
                    and r["expires_on"] >= self.state["today"]):
                raise ToolFailure(f"patient {patient_id} already holds valid referral {r['referral_id']} to {canonical}")
        rid = f"REF-{self.state['next_referral_number']:04d}"
        self.state["next_referral_number"] += 1
        expires = self._today() + timedelta(days=self.state["policy"]["referral_valid_days"])
        referral = {"referral_id": rid, "patient_id": patient_id, "referring_doctor_id": referring_doctor_id,
                    "specialty": canonical, "reason": reason.strip(), "issued_on": self.state["today"],
                    "expires_on": expires.isoformat(), "status": "active", "appointment_id": None}
        self.state["referrals"][rid] = referral
        return referral

    def list_referrals(self, patient_id: str, valid_only: bool = False) -> list[Referral]:
        """Referrals of a patient, by issue date.

        Args:
            patient_id: Patient identifier.
            valid_only: Only unused referrals that have not expired.
        """
        self._patient(patient_id)
        rs = [r for r in self.state["referrals"].values() if r["patient_id"] == patient_id
              and (not valid_only or (r["status"] == "active" and r["expires_on"] >= self.state["today"]))]
        return sorted(rs, key=lambda r: (r["issued_on"], r["referral_id"]))

    # -- appointments --------------------------------------------------------
    def book_appointment(self, patient_id: str, doctor_id: str, date: str, time: str, reason: str,
                         referral_id: str | None = None) -> Appointment:
        """Book a patient into a free slot. Specialists require a valid referral to their specialty
        (it is consumed). The copay is the patient's primary or specialist copay when the doctor
        accepts their insurer, otherwise the doctor's full visit fee (self-pay).

        Args:
            patient_id: Patient identifier.
            doctor_id: Doctor identifier.
            date: Appointment date, YYYY-MM-DD (after today, within the booking horizon).
            time: Slot start time, HH:MM, one of the doctor's weekly slots for that weekday.
            reason: Reason for the visit.
            referral_id: Referral identifier; required for specialists, not allowed for primary care.
        """
        patient = self._patient(patient_id)
        doctor = self._doctor(doctor_id)
        if not reason.strip():
            raise ToolFailure("reason must not be empty")
        d = self._check_slot(doctor, patient_id, date, time)
        referral = None
        if doctor["primary_care"]:
            if referral_id is not None:
                raise ToolFailure(f"{doctor_id} is a primary-care doctor; no referral is needed")
        else:
            if referral_id is None:
                raise ToolFailure(f"{doctor['specialty']} appointments require a referral")
            referral = self.state["referrals"].get(referral_id)
            if referral is None:
                raise ToolFailure(f"referral {referral_id} not found")
            if referral["patient_id"] != patient_id:
                raise ToolFailure(f"referral {referral_id} belongs to another patient")
            if referral["specialty"] != doctor["specialty"]:
                raise ToolFailure(f"referral {referral_id} is for {referral['specialty']}, not {doctor['specialty']}")
            if referral["status"] != "active":
                raise ToolFailure(f"referral {referral_id} was already used for {referral['appointment_id']}")
            if referral["expires_on"] < d.isoformat():
                raise ToolFailure(f"referral {referral_id} expires on {referral['expires_on']}, before {d.isoformat()}")
        insurance = patient["insurance"]
        if insurance is not None and insurance["insurer"] in doctor["accepted_insurers"]:
            billing = "insurance"
            copay = insurance["primary_copay"] if doctor["primary_care"] else insurance["specialist_copay"]
        else:
            billing, copay = "self_pay", doctor["visit_fee"]
        aid = f"APT-{self.state['next_appointment_number']:05d}"
        self.state["next_appointment_number"] += 1
        appt = {"appointment_id": aid, "patient_id": patient_id, "doctor_id": doctor_id, "date": d.isoformat(),
                "time": time, "reason": reason.strip(), "status": "scheduled", "referral_id": referral_id,
                "billing": billing, "copay": float(copay), "reschedule_count": 0, "cancellation_fee": 0.0}
        self.state["appointments"][aid] = appt
        if referral is not None:
            referral["status"] = "used"
            referral["appointment_id"] = aid
        return appt

    def get_appointment(self, appointment_id: str) -> Appointment:
        """Details of one appointment.

        Args:
            appointment_id: Appointment identifier, e.g. "APT-00017".
        """
        return self._appointment(appointment_id)

    def list_patient_appointments(self, patient_id: str, status: AppointmentStatus | None = None) -> list[Appointment]:
        """Appointments of a patient in chronological order.

        Args:
            patient_id: Patient identifier.
            status: Only appointments with this status (scheduled, completed, cancelled, no_show).
        """
        self._patient(patient_id)
        appts = [a for a in self.state["appointments"].values() if a["patient_id"] == patient_id
                 and (status is None or a["status"] == status)]
        return sorted(appts, key=lambda a: (a["date"], a["time"], a["appointment_id"]))

    def reschedule_appointment(self, appointment_id: str, new_date: str, new_time: str) -> Appointment:
        """Move a scheduled appointment to another free slot of the same doctor. Not possible on or
        after the appointment day, nor more than the policy's max_reschedules times; an attached
        referral must still be valid on the new date.

        Args:
            appointment_id: Appointment identifier.
            new_date: New date, YYYY-MM-DD.
            new_time: New slot start time, HH:MM.
        """
        appt = self._appointment(appointment_id)
        if appt["status"] != "scheduled":
            raise ToolFailure(f"appointment {appointment_id} is {appt['status']}, not scheduled")
        if appt["date"] <= self.state["today"]:
            raise ToolFailure(f"appointment {appointment_id} is today or in the past and can no longer be rescheduled")
        limit = self.state["policy"]["max_reschedules"]
        if appt["reschedule_count"] >= limit:
            raise ToolFailure(f"appointment {appointment_id} has been rescheduled {appt['reschedule_count']} times "
                              f"(limit {limit}); cancel and rebook instead")
        if new_date == appt["date"] and new_time == appt["time"]:
            raise ToolFailure("the new slot is the current slot")
        doctor = self._doctor(appt["doctor_id"])
        d = self._check_slot(doctor, appt["patient_id"], new_date, new_time, ignore=appointment_id, field="new_date")
        if appt["referral_id"] is not None:
            referral = self.state["referrals"][appt["referral_id"]]
            if referral["expires_on"] < d.isoformat():
                raise ToolFailure(f"referral {referral['referral_id']} expires on {referral['expires_on']}, "
                                  f"before {d.isoformat()}")
        appt["date"] = d.isoformat()
        appt["time"] = new_time
        appt["reschedule_count"] += 1
        return appt

    def cancel_appointment(self, appointment_id: str) -> CancellationResult:
        """Cancel a scheduled appointment. Cancelling with fewer than the policy's
        cancellation_notice_days days of notice charges the late-cancellation fee. A referral used
        by the appointment becomes usable again if it has not expired.

        Args:
            appointment_id: Appointment identifier.
        """
        appt = self._appointment(appointment_id)
        if appt["status"] != "scheduled":
            raise ToolFailure(f"appointment {appointment_id} is {appt['status']}, not scheduled")
        notice = (date.fromisoformat(appt["date"]) - self._today()).days
        if notice < 0:
            raise ToolFailure(f"appointment {appointment_id} was on {appt['date']}, in the past")
        policy = self.state["policy"]
        fee = float(policy["late_cancellation_fee"]) if notice < policy["cancellation_notice_days"] else 0.0
        appt["status"] = "cancelled"
        appt["cancellation_fee"] = fee
        restored = False
        if appt["referral_id"] is not None:
            referral = self.state["referrals"][appt["referral_id"]]
            if referral["expires_on"] >= self.state["today"]:
                referral["status"] = "active"
                referral["appointment_id"] = None
                restored = True
        return {"appointment_id": appointment_id, "status": "cancelled", "cancellation_fee": fee,
                "referral_restored": restored}

    # -- visit notes ---------------------------------------------------------
    def add_visit_note(self, appointment_id: str, summary: str, diagnosis: str,
                       follow_up_weeks: int | None = None) -> VisitNote:
        """Record the doctor's note for a visit that took place (appointment scheduled for today or
        earlier); this marks the appointment completed.

        Args:
            appointment_id: Appointment identifier.
            summary: What happened during the visit.
            diagnosis: Diagnosis or assessment, free text.
            follow_up_weeks: Recommended follow-up in weeks (1-52), if any.
        """
        appt = self._appointment(appointment_id)
        if appt["status"] != "scheduled":
            raise ToolFailure(f"appointment {appointment_id} is {appt['status']}; notes are written for scheduled visits")
        if appt["date"] > self.state["today"]:
            raise ToolFailure(f"appointment {appointment_id} is on {appt['date']} and has not taken place yet")
        if not summary.strip() or not diagnosis.strip():
            raise ToolFailure("summary and diagnosis must not be empty")
        if follow_up_weeks is not None and not 1 <= follow_up_weeks <= 52:
            raise ToolFailure("follow_up_weeks must be between 1 and 52")
        nid = f"VN-{self.state['next_note_number']:04d}"
        self.state["next_note_number"] += 1
        note = {"note_id": nid, "appointment_id": appointment_id, "patient_id": appt["patient_id"],
                "doctor_id": appt["doctor_id"], "visit_date": appt["date"], "summary": summary.strip(),
                "diagnosis": diagnosis.strip(), "follow_up_weeks": follow_up_weeks}
        self.state["visit_notes"][nid] = note
        appt["status"] = "completed"
        return note

    def list_visit_notes(self, patient_id: str, doctor_id: str | None = None) -> list[VisitNote]:
        """Visit notes of a patient, most recent visit first.

        Args:
            patient_id: Patient identifier.
            doctor_id: Only notes written for visits with this doctor.
        """
        self._patient(patient_id)
        if doctor_id is not None:
            self._doctor(doctor_id)
        notes = [n for n in self.state["visit_notes"].values() if n["patient_id"] == patient_id
                 and (doctor_id is None or n["doctor_id"] == doctor_id)]
        return sorted(notes, key=lambda n: (n["visit_date"], n["note_id"]), reverse=True)
