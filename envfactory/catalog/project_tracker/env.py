"""Project tracker: projects, team members, tasks with a status workflow, dependencies and comments."""

from __future__ import annotations

import re
from datetime import date
from typing import Literal

from pydantic import BaseModel, Field

from envfactory.env import Environment, ToolFailure

Priority = Literal["low", "medium", "high", "urgent"]
TaskStatus = Literal["todo", "in_progress", "review", "done"]

PRIORITY_RANK = {"urgent": 0, "high": 1, "medium": 2, "low": 3}
# Allowed moves of the workflow todo -> in_progress -> review -> done (plus the two "send back" moves).
TRANSITIONS = {
    "todo": ("in_progress",),
    "in_progress": ("review", "todo"),
    "review": ("done", "in_progress"),
    "done": (),
}
MAX_ESTIMATE_HOURS = 80.0
MAX_COMMENT_LENGTH = 1000
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class Member(BaseModel):
    member_id: str
    name: str
    email: str
    role: str
    weekly_capacity_hours: int


class Project(BaseModel):
    project_id: str
    name: str
    code: str
    description: str = ""
    lead_id: str
    member_ids: list[str]
    status: Literal["active", "archived"] = "active"


class Task(BaseModel):
    task_id: str
    project_id: str
    title: str
    description: str = ""
    assignee_id: str | None = None
    priority: Priority
    status: TaskStatus = "todo"
    estimate_hours: float
    due_date: str | None = None
    blocked_by: list[str] = Field(default_factory=list)
    created_on: str
    completed_on: str | None = None


class Comment(BaseModel):
    comment_id: str
    task_id: str
    member_id: str
    body: str
    posted_on: str


class State(BaseModel):
    today: str
    members: dict[str, Member]
    projects: dict[str, Project]
    tasks: dict[str, Task]
    comments: dict[str, Comment] = Field(default_factory=dict)
    next_task_number: int = 1
    next_comment_number: int = 1


class ProjectSummary(BaseModel):
    project_id: str
    name: str
    code: str
    status: str
    lead_id: str
    member_ids: list[str]
    open_task_count: int
    done_task_count: int


class TaskSummary(BaseModel):
    task_id: str
    project_id: str
    title: str
    assignee_id: str | None
    priority: str
    status: str
    due_date: str | None
    overdue: bool


class BlockerInfo(BaseModel):
    task_id: str
    title: str
    status: str


class TaskDetail(Task):
    blockers: list[BlockerInfo]
    can_start: bool
    comments: list[Comment]


class StatusChange(BaseModel):
    task_id: str
    old_status: str
    new_status: str
    completed_on: str | None
    unblocked_task_ids: list[str]


class StatusCounts(BaseModel):
    todo: int
    in_progress: int
    review: int


class WorkloadReport(BaseModel):
    member_id: str
    name: str
    weekly_capacity_hours: int
    open_task_count: int
    by_status: StatusCounts
    open_estimate_hours: float
    utilization_pct: float
    overdue_task_ids: list[str]
    tasks: list[TaskSummary]


def _parse_date(value: str, field: str) -> date:
    try:
        if not _DATE_RE.fullmatch(value):
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        raise ToolFailure(f"{field} must be an ISO date (YYYY-MM-DD), got {value!r}") from None


class ProjectTracker(Environment):
    """A software team's project tracker: several projects, each with a lead and a set of team
    members, and tasks that move through the workflow todo -> in_progress -> review -> done.
    Tasks have an assignee, a priority, an hour estimate, an optional due date, comments and
    dependencies on other tasks of the same project (a task cannot start before its blockers
    are done). Archived projects are read-only."""

    name = "project_tracker"
    domain = "productivity"
    State = State

    # -- helpers -------------------------------------------------------------
    def _member(self, member_id: str) -> dict:
        m = self.state["members"].get(member_id)
        if m is None:
            raise ToolFailure(f"member {member_id} not found")
        return m

    def _project(self, project_id: str) -> dict:
        p = self.state["projects"].get(project_id)
        if p is None:
            raise ToolFailure(f"project {project_id} not found")
        return p

    def _task(self, task_id: str) -> dict:
        t = self.state["tasks"].get(task_id)
        if t is None:
            raise ToolFailure(f"task {task_id} not found")
        return t

    def _active_project_of(self, task: dict) -> dict:
        p = self._project(task["project_id"])
        if p["status"] != "active":
            raise ToolFailure(f"project {p['project_id']} is archived; its tasks are read-only")
        return p

    def _is_overdue(self, task: dict) -> bool:
        return (task["status"] != "done" and task["due_date"] is not None
                and task["due_date"] < self.state["today"])

    def _summary(self, task: dict) -> dict:
        return {"task_id": task["task_id"], "project_id": task["project_id"], "title": task["title"],
                "assignee_id": task["assignee_id"], "priority": task["priority"], "status": task["status"],
                "due_date": task["due_date"], "overdue": self._is_overdue(task)}

    def _open_blockers(self, task: dict) -> list[str]:
        return [b for b in task["blocked_by"] if self.state["tasks"][b]["status"] != "done"]

    def _sort_key(self, task: dict):
        return (PRIORITY_RANK[task["priority"]], task["due_date"] is None, task["due_date"] or "", task["task_id"])

    def _depends_on(self, task_id: str, target_id: str) -> bool:
        """True if task_id is (transitively) blocked by target_id."""
        seen, stack = set(), [task_id]
        while stack:
            cur = stack.pop()
            if cur == target_id:
                return True
            if cur in seen:
                continue
            seen.add(cur)
            stack.extend(self.state["tasks"][cur]["blocked_by"])
        return False

    # -- tools ---------------------------------------------------------------
    def list_projects(self, include_archived: bool = False) -> list[ProjectSummary]:
        """List the projects with their lead, team and task counts.

        Args:
            include_archived: Also list archived projects.
        """
        out = []
        for p in self.state["projects"].values():
            if p["status"] == "archived" and not include_archived:
                continue
            tasks = [t for t in self.state["tasks"].values() if t["project_id"] == p["project_id"]]
            done = sum(1 for t in tasks if t["status"] == "done")
            out.append({"project_id": p["project_id"], "name": p["name"], "code": p["code"], "status": p["status"],
                        "lead_id": p["lead_id"], "member_ids": list(p["member_ids"]),
                        "open_task_count": len(tasks) - done, "done_task_count": done})
        return sorted(out, key=lambda x: x["project_id"])

    def find_members(self, query: str = "", project_id: str | None = None) -> list[Member]:
        """Find team members by name, email or role (case-insensitive substring), optionally
        only those on one project's team.

        Args:
            query: Text to look for in the name, email or role; empty matches everyone.
            project_id: Only members of this project's team, e.g. "PRJ-02".
        """
        team = None
        if project_id is not None:
            team = set(self._project(project_id)["member_ids"])
        q = query.strip().lower()
        out = [m for m in self.state["members"].values()
               if (team is None or m["member_id"] in team)
               and (not q or q in m["name"].lower() or q in m["email"].lower() or q in m["role"].lower())]
        return sorted(out, key=lambda m: m["member_id"])

    def search_tasks(self, project_id: str | None = None, status: TaskStatus | None = None,
                     member_id: str | None = None, priority: Priority | None = None,
                     overdue_only: bool = False) -> list[TaskSummary]:
        """Search tasks, most urgent first (priority, then earliest due date).

        Args:
            project_id: Only tasks of this project.
            status: Only tasks in this status: todo, in_progress, review or done.
            member_id: Only tasks assigned to this member.
            priority: Only tasks with this priority: low, medium, high or urgent.
            overdue_only: Only unfinished tasks whose due date is before today.
        """
        if project_id is not None:
            self._project(project_id)
        if member_id is not None:
            self._member(member_id)
        out = []
        for t in self.state["tasks"].values():
            if project_id is not None and t["project_id"] != project_id:
                continue
            if status is not None and t["status"] != status:
                continue
            if member_id is not None and t["assignee_id"] != member_id:
                continue
            if priority is not None and t["priority"] != priority:
                continue
            if overdue_only and not self._is_overdue(t):
                continue
            out.append(t)
        return [self._summary(t) for t in sorted(out, key=self._sort_key)]

    def get_task(self, task_id: str) -> TaskDetail:
        """Full details of a task: its fields, the status of its blockers, whether it can start,
        and its comments (oldest first).

        Args:
            task_id: Task identifier, e.g. "TSK-0012".
        """
        t = self._task(task_id)
        blockers = [{"task_id": b, "title": self.state["tasks"][b]["title"],
                     "status": self.state["tasks"][b]["status"]} for b in t["blocked_by"]]
        comments = sorted((c for c in self.state["comments"].values() if c["task_id"] == task_id),
                          key=lambda c: (c["posted_on"], c["comment_id"]))
        return {**t, "blockers": blockers, "can_start": t["status"] == "todo" and not self._open_blockers(t),
                "comments": comments}

    def create_task(self, project_id: str, title: str, priority: Priority, estimate_hours: float,
                    due_date: str | None = None, member_id: str | None = None,
                    blocked_by: list[str] | None = None, description: str = "") -> Task:
        """Create a task (status todo) in an active project.

        Args:
            project_id: Project identifier, e.g. "PRJ-01".
            title: Short title of the task (3-120 characters).
            priority: One of low, medium, high, urgent.
            estimate_hours: Estimated effort in hours (more than 0, at most 80).
            due_date: Optional due date, YYYY-MM-DD, not before today.
            member_id: Optional assignee; must be on the project's team.
            blocked_by: Optional task ids of the same project that must be done before this task can start.
            description: Optional longer description.
        """
        project = self._project(project_id)
        if project["status"] != "active":
            raise ToolFailure(f"project {project_id} is archived; no new tasks can be added")
        title = title.strip()
        if not 3 <= len(title) <= 120:
            raise ToolFailure("title must be between 3 and 120 characters")
        if not 0 < estimate_hours <= MAX_ESTIMATE_HOURS:
            raise ToolFailure(f"estimate_hours must be more than 0 and at most {MAX_ESTIMATE_HOURS:g}")
        if due_date is not None and _parse_date(due_date, "due_date") < date.fromisoformat(self.state["today"]):
            raise ToolFailure(f"due_date {due_date} is in the past (today is {self.state['today']})")
        if member_id is not None:
            self._member(member_id)
            if member_id not in project["member_ids"]:
                raise ToolFailure(f"member {member_id} is not on the team of project {project_id}")
        blockers = list(blocked_by or [])
        if len(set(blockers)) != len(blockers):
            raise ToolFailure("blocked_by contains duplicate task ids")
        for b in blockers:
            if self._task(b)["project_id"] != project_id:
                raise ToolFailure(f"blocker {b} belongs to another project")
        tid = f"TSK-{self.state['next_task_number']:04d}"
        self.state["next_task_number"] += 1
        task = {"task_id": tid, "project_id": project_id, "title": title, "description": description.strip(),
                "assignee_id": member_id, "priority": priority, "status": "todo",
                "estimate_hours": float(estimate_hours), "due_date": due_date, "blocked_by": blockers,
                "created_on": self.state["today"], "completed_on": None}
        self.state["tasks"][tid] = task
        return task

    def assign_task(self, task_id: str, member_id: str) -> Task:
        """Assign (or reassign) an unfinished task to a member of the project's team.

        Args:
            task_id: Task identifier.
            member_id: The new assignee, e.g. "M-007".
        """
        t = self._task(task_id)
        project = self._active_project_of(t)
        self._member(member_id)
        if t["status"] == "done":
            raise ToolFailure(f"task {task_id} is done and cannot be reassigned")
        if member_id not in project["member_ids"]:
            raise ToolFailure(f"member {member_id} is not on the team of project {project['project_id']}")
        if t["assignee_id"] == member_id:
            raise ToolFailure(f"task {task_id} is already assigned to {member_id}")
        t["assignee_id"] = member_id
        return t

    def update_task_status(self, task_id: str, status: TaskStatus) -> StatusChange:
        """Move a task along the workflow. Allowed moves: todo -> in_progress, in_progress -> review,
        review -> done, and back: in_progress -> todo, review -> in_progress. Starting a task needs an
        assignee and all its blockers done; done is final.

        Args:
            task_id: Task identifier.
            status: The new status: todo, in_progress, review or done.
        """
        t = self._task(task_id)
        self._active_project_of(t)
        old = t["status"]
        if status == old:
            raise ToolFailure(f"task {task_id} is already {old}")
        if status not in TRANSITIONS[old]:
            allowed = ", ".join(TRANSITIONS[old]) or "none (done is final)"
            raise ToolFailure(f"cannot move task {task_id} from {old} to {status}; allowed: {allowed}")
        if status == "in_progress" and old == "todo":
            if t["assignee_id"] is None:
                raise ToolFailure(f"task {task_id} has no assignee; assign it before starting")
            open_blockers = self._open_blockers(t)
            if open_blockers:
                raise ToolFailure(f"task {task_id} is blocked by unfinished tasks: {', '.join(open_blockers)}")
        t["status"] = status
        unblocked: list[str] = []
        if status == "done":
            t["completed_on"] = self.state["today"]
            for other in self.state["tasks"].values():
                if (task_id in other["blocked_by"] and other["status"] == "todo"
                        and not self._open_blockers(other)):
                    unblocked.append(other["task_id"])
        return {"task_id": task_id, "old_status": old, "new_status": status,
                "completed_on": t["completed_on"], "unblocked_task_ids": sorted(unblocked)}

    def add_comment(self, task_id: str, member_id: str, body: str) -> Comment:
        """Post a comment on a task. The author must be on the project's team.

        Args:
            task_id: Task identifier.
            member_id: The author's member id.
            body: Comment text (1-1000 characters).
        """
        t = self._task(task_id)
        project = self._active_project_of(t)
        self._member(member_id)
        if member_id not in project["member_ids"]:
            raise ToolFailure(f"member {member_id} is not on the team of project {project['project_id']}")
        body = body.strip()
        if not body:
            raise ToolFailure("comment body must not be empty")
        if len(body) > MAX_COMMENT_LENGTH:
            raise ToolFailure(f"comment body is longer than {MAX_COMMENT_LENGTH} characters")
        cid = f"C-{self.state['next_comment_number']:04d}"
        self.state["next_comment_number"] += 1
        comment = {"comment_id": cid, "task_id": task_id, "member_id": member_id, "body": body,
                   "posted_on": self.state["today"]}
        self.state["comments"][cid] = comment
        return comment

    def add_dependency(self, task_id: str, blocker_task_id: str) -> Task:
        """Declare that a task cannot start before another task of the same project is done.
        Only tasks still in todo can get new blockers; dependency cycles are refused.

        Args:
            task_id: The task that will wait.
            blocker_task_id: The task that must be done first.
        """
        t = self._task(task_id)
        self._active_project_of(t)
        blocker = self._task(blocker_task_id)
        if task_id == blocker_task_id:
            raise ToolFailure("a task cannot block itself")
        if blocker["project_id"] != t["project_id"]:
            raise ToolFailure(f"task {blocker_task_id} belongs to another project")
        if t["status"] != "todo":
            raise ToolFailure(f"task {task_id} is {t['status']}; only todo tasks can get new blockers")
        if blocker_task_id in t["blocked_by"]:
            raise ToolFailure(f"task {task_id} is already blocked by {blocker_task_id}")
        if self._depends_on(blocker_task_id, task_id):
            raise ToolFailure(f"adding this dependency would create a cycle: {blocker_task_id} already "
                              f"depends on {task_id}")
        t["blocked_by"].append(blocker_task_id)
        return t

    def workload_report(self, member_id: str) -> WorkloadReport:
        """A member's open (not done) tasks in active projects: counts by status, total estimated
        hours, utilization against weekly capacity (percent, 1 decimal) and overdue tasks.

        Args:
            member_id: Member identifier, e.g. "M-003".
        """
        m = self._member(member_id)
        active = {p["project_id"] for p in self.state["projects"].values() if p["status"] == "active"}
        open_tasks = sorted((t for t in self.state["tasks"].values()
                             if t["assignee_id"] == member_id and t["status"] != "done"
                             and t["project_id"] in active), key=self._sort_key)
        hours = round(sum(t["estimate_hours"] for t in open_tasks), 2)
        cap = m["weekly_capacity_hours"]
        return {"member_id": member_id, "name": m["name"], "weekly_capacity_hours": cap,
                "open_task_count": len(open_tasks),
                "by_status": {s: sum(1 for t in open_tasks if t["status"] == s)
                              for s in ("todo", "in_progress", "review")},
                "open_estimate_hours": hours,
                "utilization_pct": round(100.0 * hours / cap, 1) if cap else 0.0,
                "overdue_task_ids": sorted(t["task_id"] for t in open_tasks if self._is_overdue(t)),
                "tasks": [self._summary(t) for t in open_tasks]}
