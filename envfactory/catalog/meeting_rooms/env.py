"""Meeting rooms: an office's rooms, employees, room bookings, invitations and weekly series."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Literal

from pydantic import BaseModel, Field

from envfactory.env import Environment, ToolFailure

Equipment = Literal["projector", "video_conference", "whiteboard", "tv_screen", "speakerphone"]
Response = Literal["pending", "accepted", "declined"]

WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MIN_MINUTES, MAX_MINUTES = 15, 240
MIN_WEEKS, MAX_WEEKS = 2, 26
_TIME_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class Room(BaseModel):
    room_id: str
    name: str
    floor: int
    capacity: int
    equipment: list[Equipment]


class Employee(BaseModel):
    employee_id: str
    name: str
    email: str
    department: str
    title: str


class Invitation(BaseModel):
    employee_id: str
    response: Response = "pending"


class Meeting(BaseModel):
    meeting_id: str
    title: str
    organizer_id: str
    room_id: str
    date: str
    start_time: str
    end_time: str
    status: Literal["scheduled", "cancelled"] = "scheduled"
    series_id: str | None = None
    invitations: list[Invitation] = Field(default_factory=list)


class Series(BaseModel):
    series_id: str
    title: str
    organizer_id: str
    room_id: str
    weekday: str
    start_time: str
    end_time: str
    first_date: str
    weeks: int
    meeting_ids: list[str]


class State(BaseModel):
    today: str
    office_name: str
    opens_at: str = "07:00"
    closes_at: str = "20:00"
    rooms: dict[str, Room]
    employees: dict[str, Employee]
    meetings: dict[str, Meeting] = Field(default_factory=dict)
    series: dict[str, Series] = Field(default_factory=dict)
    next_meeting_number: int = 1
    next_series_number: int = 1


class MeetingDetail(Meeting):
    room_name: str
    expected_attendees: int


class Slot(BaseModel):
    start_time: str
    end_time: str


class BookedSlot(BaseModel):
    meeting_id: str
    title: str
    organizer_id: str
    start_time: str
    end_time: str


class RoomSchedule(BaseModel):
    room_id: str
    name: str
    date: str
    meetings: list[BookedSlot]
    free_slots: list[Slot]


class SeriesResult(Series):
    dates: list[str]


class InvitationResult(BaseModel):
    meeting_id: str
    employee_id: str
    response: str
    expected_attendees: int


class MoveResult(MeetingDetail):
    responses_reset: bool


class CancelResult(BaseModel):
    cancelled_meeting_ids: list[str]


class AgendaItem(BaseModel):
    meeting_id: str
    title: str
    date: str
    start_time: str
    end_time: str
    room_id: str
    role: Literal["organizer", "invitee"]
    response: str


def _parse_date(value: str, field: str) -> date:
    try:
        if not _DATE_RE.fullmatch(value):
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        raise ToolFailure(f"{field} must be an ISO date (YYYY-MM-DD), got {value!r}") from None


def _minutes(value: str, field: str) -> int:
    m = _TIME_RE.fullmatch(value)
    if m is None:
        raise ToolFailure(f"{field} must be a time HH:MM (24h), got {value!r}")
    return int(m.group(1)) * 60 + int(m.group(2))


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


class MeetingRooms(Environment):
    """An office's meeting-room booking system: rooms on several floors with a capacity and
    equipment, the employees who book them, meetings with invitations that invitees accept or
    decline, weekly recurring meetings, and moving or cancelling meetings. Bookings are on
    quarter hours within office hours, last 15 minutes to 4 hours, never overlap in a room, and
    a room must seat the organizer plus every invitee who has not declined."""

    name = "meeting_rooms"
    domain = "productivity"
    State = State

    # -- helpers -------------------------------------------------------------
    def _room(self, room_id: str) -> dict:
        r = self.state["rooms"].get(room_id)
        if r is None:
            raise ToolFailure(f"room {room_id} not found")
        return r

    def _employee(self, employee_id: str) -> dict:
        e = self.state["employees"].get(employee_id)
        if e is None:
            raise ToolFailure(f"employee {employee_id} not found")
        return e

    def _meeting(self, meeting_id: str) -> dict:
        m = self.state["meetings"].get(meeting_id)
        if m is None:
            raise ToolFailure(f"meeting {meeting_id} not found")
        return m

    def _open_meeting(self, meeting_id: str) -> dict:
        """A scheduled meeting that has not taken place yet (date today or later)."""
        m = self._meeting(meeting_id)
        if m["status"] != "scheduled":
            raise ToolFailure(f"meeting {meeting_id} is cancelled")
        if m["date"] < self.state["today"]:
            raise ToolFailure(f"meeting {meeting_id} took place on {m['date']} and can no longer be changed")
        return m

    def _future_date(self, value: str, field: str) -> date:
        d = _parse_date(value, field)
        if d < date.fromisoformat(self.state["today"]):
            raise ToolFailure(f"{field} {value} is in the past (today is {self.state['today']})")
        return d

    def _slot(self, start_time: str, end_time: str) -> tuple[int, int]:
        start = _minutes(start_time, "start_time")
        end = _minutes(end_time, "end_time")
        self._check_window(start, end)
        return start, end

    def _check_window(self, start: int, end: int) -> None:
        if start % 15 or end % 15:
            raise ToolFailure("meetings start and end on a quarter hour (:00, :15, :30, :45)")
        opens, closes = _minutes(self.state["opens_at"], "opens_at"), _minutes(self.state["closes_at"], "closes_at")
        if start < opens or end > closes:
            raise ToolFailure(f"meetings must be within office hours {self.state['opens_at']}-{self.state['closes_at']}")
        if not MIN_MINUTES <= end - start <= MAX_MINUTES:
            raise ToolFailure(f"a meeting lasts between {MIN_MINUTES} minutes and {MAX_MINUTES // 60} hours "
                              f"and ends after it starts")

    def _clashes(self, day: str, start: int, end: int, room_id: str | None = None,
                 organizer_id: str | None = None, ignore: str | None = None) -> list[dict]:
        out = []
        for m in self.state["meetings"].values():
            if m["status"] != "scheduled" or m["date"] != day or m["meeting_id"] == ignore:
                continue
            if not (_minutes(m["start_time"], "start_time") < end and start < _minutes(m["end_time"], "end_time")):
                continue
            if (room_id is not None and m["room_id"] == room_id) or \
                    (organizer_id is not None and m["organizer_id"] == organizer_id):
                out.append(m)
        return sorted(out, key=lambda m: (m["start_time"], m["meeting_id"]))

    def _check_free(self, room_id: str, organizer_id: str, day: str, start: int, end: int,
                    ignore: str | None = None) -> None:
        for m in self._clashes(day, start, end, room_id=room_id, ignore=ignore):
            raise ToolFailure(f"room {room_id} is already booked on {day} {m['start_time']}-{m['end_time']} "
                              f"by {m['meeting_id']}")
        for m in self._clashes(day, start, end, organizer_id=organizer_id, ignore=ignore):
            raise ToolFailure(f"organizer {organizer_id} already hosts {m['meeting_id']} on {day} "
                              f"{m['start_time']}-{m['end_time']}")

    def _attendee_list(self, organizer_id: str, employee_ids: list[str], existing: list[str]) -> list[str]:
        if len(set(employee_ids)) != len(employee_ids):
            raise ToolFailure("the list of employees contains duplicates")
        for eid in employee_ids:
            self._employee(eid)
            if eid == organizer_id:
                raise ToolFailure(f"{eid} is the organizer and cannot be invited")
            if eid in existing:
                raise ToolFailure(f"{eid} is already invited")
        return list(employee_ids)

    @staticmethod
    def _headcount(meeting: dict) -> int:
        return 1 + sum(1 for i in meeting["invitations"] if i["response"] != "declined")

    def _check_capacity(self, room: dict, headcount: int) -> None:
        if headcount > room["capacity"]:
            raise ToolFailure(f"room {room['room_id']} seats {room['capacity']} but the meeting needs {headcount} seats")

    def _detail(self, m: dict) -> dict:
        return {**m, "room_name": self.state["rooms"][m["room_id"]]["name"], "expected_attendees": self._headcount(m)}

    def _check_title(self, title: str) -> str:
        title = title.strip()
        if not 3 <= len(title) <= 80:
            raise ToolFailure("title must be between 3 and 80 characters")
        return title

    def _new_meeting(self, title: str, organizer_id: str, room_id: str, day: str, start_time: str,
                     end_time: str, attendees: list[str], series_id: str | None) -> dict:
        mid = f"MTG-{self.state['next_meeting_number']:04d}"
        self.state["next_meeting_number"] += 1
        meeting = {"meeting_id": mid, "title": title, "organizer_id": organizer_id, "room_id": room_id,
                   "date": day, "start_time": start_time, "end_time": end_time, "status": "scheduled",
                   "series_id": series_id,
                   "invitations": [{"employee_id": e, "response": "pending"} for e in attendees]}
        self.state["meetings"][mid] = meeting
        return meeting

    # -- tools ---------------------------------------------------------------
    def find_employees(self, query: str = "", department: str | None = None) -> list[Employee]:
        """Find employees by name or email (case-insensitive substring), optionally in one department.

        Args:
            query: Text to look for in the name or email; empty matches everyone.
            department: Only employees of this department, e.g. "Finance" (case-insensitive).
        """
        q = query.strip().lower()
        out = [e for e in self.state["employees"].values()
               if (department is None or e["department"].lower() == department.strip().lower())
               and (not q or q in e["name"].lower() or q in e["email"].lower())]
        return sorted(out, key=lambda e: e["employee_id"])

    def find_available_rooms(self, date: str, start_time: str, end_time: str, min_capacity: int = 1,
                             equipment: list[Equipment] | None = None) -> list[Room]:
        """Rooms free for the whole time slot that seat at least min_capacity people and have all the
        requested equipment, smallest room first.

        Args:
            date: Day of the meeting, YYYY-MM-DD.
            start_time: Start, HH:MM (24h, quarter hours).
            end_time: End, HH:MM (24h, quarter hours).
            min_capacity: Minimum number of seats (1-100).
            equipment: Equipment the room must have: projector, video_conference, whiteboard, tv_screen, speakerphone.
        """
        _parse_date(date, "date")
        start, end = self._slot(start_time, end_time)
        if not 1 <= min_capacity <= 100:
            raise ToolFailure("min_capacity must be between 1 and 100")
        wanted = set(equipment or [])
        out = [r for r in self.state["rooms"].values()
               if r["capacity"] >= min_capacity and wanted <= set(r["equipment"])
               and not self._clashes(date, start, end, room_id=r["room_id"])]
        return sorted(out, key=lambda r: (r["capacity"], r["room_id"]))

    def get_room_schedule(self, room_id: str, date: str) -> RoomSchedule:
        """A room's scheduled meetings on one day and its free slots within office hours.

        Args:
            room_id: Room identifier, e.g. "RM-204".
            date: The day, YYYY-MM-DD.
        """
        room = self._room(room_id)
        _parse_date(date, "date")
        booked = sorted((m for m in self.state["meetings"].values()
                         if m["room_id"] == room_id and m["date"] == date and m["status"] == "scheduled"),
                        key=lambda m: (m["start_time"], m["meeting_id"]))
        free, cursor = [], _minutes(self.state["opens_at"], "opens_at")
        for m in booked:
            s = _minutes(m["start_time"], "start_time")
            if s > cursor:
                free.append({"start_time": _hhmm(cursor), "end_time": m["start_time"]})
            cursor = max(cursor, _minutes(m["end_time"], "end_time"))
        closes = _minutes(self.state["closes_at"], "closes_at")
        if cursor < closes:
            free.append({"start_time": _hhmm(cursor), "end_time": self.state["closes_at"]})
        return {"room_id": room_id, "name": room["name"], "date": date,
                "meetings": [{"meeting_id": m["meeting_id"], "title": m["title"], "organizer_id": m["organizer_id"],
                              "start_time": m["start_time"], "end_time": m["end_time"]} for m in booked],
                "free_slots": free}

    def get_meeting(self, meeting_id: str) -> MeetingDetail:
        """Details of a meeting: room, time, organizer, invitations with their responses and the number
        of expected attendees (organizer plus invitees who have not declined).

        Args:
            meeting_id: Meeting identifier, e.g. "MTG-0012".
        """
        return self._detail(self._meeting(meeting_id))

    def book_meeting(self, organizer_id: str, room_id: str, title: str, date: str, start_time: str,
                     end_time: str, attendee_ids: list[str] | None = None) -> MeetingDetail:
        """Book a room for a one-off meeting and invite employees (their invitations start as pending).

        Args:
            organizer_id: Employee id of the organizer, e.g. "E-1004".
            room_id: Room identifier.
            title: Meeting title (3-80 characters).
            date: Day of the meeting, YYYY-MM-DD, today or later.
            start_time: Start, HH:MM (24h, quarter hours, within office hours).
            end_time: End, HH:MM; the meeting lasts 15 minutes to 4 hours.
            attendee_ids: Employee ids to invite (not the organizer).
        """
        self._employee(organizer_id)
        room = self._room(room_id)
        title = self._check_title(title)
        self._future_date(date, "date")
        start, end = self._slot(start_time, end_time)
        attendees = self._attendee_list(organizer_id, list(attendee_ids or []), [])
        self._check_capacity(room, 1 + len(attendees))
        self._check_free(room_id, organizer_id, date, start, end)
        meeting = self._new_meeting(title, organizer_id, room_id, date, start_time, end_time, attendees, None)
        return self._detail(meeting)

    def book_recurring_meeting(self, organizer_id: str, room_id: str, title: str, first_date: str,
                               start_time: str, end_time: str, weeks: int,
                               attendee_ids: list[str] | None = None) -> SeriesResult:
        """Book the same room, weekday and time for several consecutive weeks. All occurrences must be
        free (room and organizer); otherwise nothing is booked and the clashing dates are reported.

        Args:
            organizer_id: Employee id of the organizer.
            room_id: Room identifier.
            title: Meeting title (3-80 characters).
            first_date: Day of the first occurrence, YYYY-MM-DD, today or later; repeats on the same weekday.
            start_time: Start, HH:MM (24h, quarter hours).
            end_time: End, HH:MM.
            weeks: Number of weekly occurrences (2-26).
            attendee_ids: Employee ids invited to every occurrence.
        """
        self._employee(organizer_id)
        room = self._room(room_id)
        title = self._check_title(title)
        first = self._future_date(first_date, "first_date")
        start, end = self._slot(start_time, end_time)
        if not MIN_WEEKS <= weeks <= MAX_WEEKS:
            raise ToolFailure(f"weeks must be between {MIN_WEEKS} and {MAX_WEEKS}")
        attendees = self._attendee_list(organizer_id, list(attendee_ids or []), [])
        self._check_capacity(room, 1 + len(attendees))
        dates = [(first + timedelta(weeks=i)).isoformat() for i in range(weeks)]
        clashes = [d for d in dates if self._clashes(d, start, end, room_id=room_id, organizer_id=organizer_id)]
        if clashes:
            raise ToolFailure(f"cannot book the series: room {room_id} or organizer {organizer_id} is busy on "
                              f"{', '.join(clashes)}")
        sid = f"SER-{self.state['next_series_number']:03d}"
        self.state["next_series_number"] += 1
        ids = [self._new_meeting(title, organizer_id, room_id, d, start_time, end_time, attendees, sid)["meeting_id"]
               for d in dates]
        series = {"series_id": sid, "title": title, "organizer_id": organizer_id, "room_id": room_id,
                  "weekday": WEEKDAYS[first.weekday()], "start_time": start_time, "end_time": end_time,
                  "first_date": first_date, "weeks": weeks, "meeting_ids": ids}
        self.state["series"][sid] = series
        return {**series, "dates": dates}

    def invite_employees(self, meeting_id: str, employee_ids: list[str]) -> MeetingDetail:
        """Invite more employees to an upcoming meeting; the room must still seat everyone expected.

        Args:
            meeting_id: Meeting identifier.
            employee_ids: Employee ids to invite (at least one; not the organizer, not already invited).
        """
        m = self._open_meeting(meeting_id)
        if not employee_ids:
            raise ToolFailure("employee_ids must name at least one employee")
        new = self._attendee_list(m["organizer_id"], list(employee_ids),
                                  [i["employee_id"] for i in m["invitations"]])
        self._check_capacity(self.state["rooms"][m["room_id"]], self._headcount(m) + len(new))
        for eid in new:
            m["invitations"].append({"employee_id": eid, "response": "pending"})
        return self._detail(m)

    def respond_to_invitation(self, meeting_id: str, employee_id: str,
                              response: Literal["accepted", "declined"]) -> InvitationResult:
        """Accept or decline an invitation to an upcoming meeting (a previous answer can be changed).

        Args:
            meeting_id: Meeting identifier.
            employee_id: The invited employee.
            response: accepted or declined.
        """
        m = self._open_meeting(meeting_id)
        self._employee(employee_id)
        inv = next((i for i in m["invitations"] if i["employee_id"] == employee_id), None)
        if inv is None:
            raise ToolFailure(f"employee {employee_id} is not invited to {meeting_id}")
        if inv["response"] == response:
            raise ToolFailure(f"employee {employee_id} has already {response} {meeting_id}")
        if inv["response"] == "declined":
            # Coming back after declining takes a seat again.
            self._check_capacity(self.state["rooms"][m["room_id"]], self._headcount(m) + 1)
        inv["response"] = response
        return {"meeting_id": meeting_id, "employee_id": employee_id, "response": response,
                "expected_attendees": self._headcount(m)}

    def move_meeting(self, meeting_id: str, room_id: str | None = None, date: str | None = None,
                     start_time: str | None = None) -> MoveResult:
        """Move an upcoming meeting to another room and/or day and/or start time, keeping its length.
        A change of day or time resets every invitation to pending; a room change alone keeps them.

        Args:
            meeting_id: Meeting identifier.
            room_id: New room; omit to keep the current one.
            date: New day, YYYY-MM-DD, today or later; omit to keep the current one.
            start_time: New start, HH:MM; omit to keep the current one.
        """
        m = self._open_meeting(meeting_id)
        new_room = room_id if room_id is not None else m["room_id"]
        new_date = date if date is not None else m["date"]
        new_start = start_time if start_time is not None else m["start_time"]
        room = self._room(new_room)
        self._future_date(new_date, "date")
        length = _minutes(m["end_time"], "end_time") - _minutes(m["start_time"], "start_time")
        start = _minutes(new_start, "start_time")
        end = start + length
        self._check_window(start, end)
        new_end = _hhmm(end)
        if (new_room, new_date, new_start) == (m["room_id"], m["date"], m["start_time"]):
            raise ToolFailure("nothing to change: the meeting is already in that room at that time")
        self._check_capacity(room, self._headcount(m))
        self._check_free(new_room, m["organizer_id"], new_date, start, end, ignore=meeting_id)
        reset = (new_date, new_start) != (m["date"], m["start_time"])
        m["room_id"], m["date"], m["start_time"], m["end_time"] = new_room, new_date, new_start, new_end
        if reset:
            for inv in m["invitations"]:
                inv["response"] = "pending"
        return {**self._detail(m), "responses_reset": reset}

    def cancel_meeting(self, meeting_id: str, entire_series: bool = False) -> CancelResult:
        """Cancel an upcoming meeting; for a recurring meeting, optionally also every later occurrence.

        Args:
            meeting_id: Meeting identifier.
            entire_series: Also cancel the later occurrences of its weekly series.
        """
        m = self._open_meeting(meeting_id)
        targets = [m]
        if entire_series:
            if m["series_id"] is None:
                raise ToolFailure(f"meeting {meeting_id} is not part of a recurring series")
            targets = [self.state["meetings"][x] for x in self.state["series"][m["series_id"]]["meeting_ids"]
                       if self.state["meetings"][x]["status"] == "scheduled"
                       and self.state["meetings"][x]["date"] >= m["date"]]
        for t in targets:
            t["status"] = "cancelled"
        return {"cancelled_meeting_ids": sorted(t["meeting_id"] for t in targets)}

    def get_employee_agenda(self, employee_id: str, date: str, days: int = 1) -> list[AgendaItem]:
        """The scheduled meetings an employee organizes or is invited to (declined ones left out),
        from a day on, in time order.

        Args:
            employee_id: Employee identifier.
            date: First day, YYYY-MM-DD.
            days: Number of days to cover (1-14).
        """
        self._employee(employee_id)
        first = _parse_date(date, "date")
        if not 1 <= days <= 14:
            raise ToolFailure("days must be between 1 and 14")
        last = (first + timedelta(days=days - 1)).isoformat()
        out = []
        for m in self.state["meetings"].values():
            if m["status"] != "scheduled" or not date <= m["date"] <= last:
                continue
            if m["organizer_id"] == employee_id:
                role, response = "organizer", "accepted"
            else:
                inv = next((i for i in m["invitations"] if i["employee_id"] == employee_id), None)
                if inv is None or inv["response"] == "declined":
                    continue
                role, response = "invitee", inv["response"]
            out.append({"meeting_id": m["meeting_id"], "title": m["title"], "date": m["date"],
                        "start_time": m["start_time"], "end_time": m["end_time"], "room_id": m["room_id"],
                        "role": role, "response": response})
        return sorted(out, key=lambda x: (x["date"], x["start_time"], x["meeting_id"]))
