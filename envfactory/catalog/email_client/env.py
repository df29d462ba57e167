"""Email client: one person's mailbox with folders, contacts, labels, drafts, threaded replies and filter rules."""

from __future__ import annotations

import re
from datetime import date

from pydantic import BaseModel, Field

from envfactory.env import Environment, ToolFailure

SYSTEM_FOLDERS = ("inbox", "sent", "drafts", "archive", "spam", "trash")
_ADDRESS = re.compile(r"^[a-z0-9._%+-]+@[a-z0-9-]+(\.[a-z0-9-]+)*\.[a-z]{2,}$")
_LABEL = re.compile(r"^[a-z0-9][a-z0-9 _/-]{0,29}$")
MAX_LABELS = 8
MAX_RECIPIENTS = 50


class Folder(BaseModel):
    folder_id: str
    name: str
    is_system: bool = False


class Contact(BaseModel):
    contact_id: str
    name: str
    email_address: str
    company: str = ""
    phone: str = ""
    is_favorite: bool = False


class Email(BaseModel):
    email_id: str
    thread_id: str
    folder_id: str
    from_name: str
    from_address: str
    to: list[str]
    cc: list[str] = Field(default_factory=list)
    subject: str
    body: str
    date: str
    is_read: bool = False
    labels: list[str] = Field(default_factory=list)
    is_draft: bool = False
    in_reply_to: str | None = None


class FilterRule(BaseModel):
    rule_id: str
    name: str
    from_contains: str | None = None
    subject_contains: str | None = None
    move_to_folder_id: str | None = None
    add_label: str | None = None
    mark_as_read: bool = False
    enabled: bool = True


class State(BaseModel):
    now: str
    owner_name: str
    owner_address: str
    folders: dict[str, Folder]
    contacts: dict[str, Contact]
    emails: dict[str, Email]
    filter_rules: dict[str, FilterRule] = Field(default_factory=dict)
    next_email_number: int = 1
    next_thread_number: int = 1
    next_folder_number: int = 1
    next_rule_number: int = 1


class FolderInfo(BaseModel):
    folder_id: str
    name: str
    is_system: bool
    total_count: int
    unread_count: int


class EmailSummary(BaseModel):
    email_id: str
    thread_id: str
    folder_id: str
    from_name: str
    from_address: str
    subject: str
    snippet: str
    date: str
    is_read: bool
    labels: list[str]
    is_draft: bool


class ThreadView(BaseModel):
    thread_id: str
    subject: str
    message_count: int
    emails: list[Email]


class DeleteResult(BaseModel):
    email_id: str
    deleted_permanently: bool
    folder_id: str | None


class FilterAction(BaseModel):
    email_id: str
    rule_id: str
    moved_to: str | None
    label_added: str | None
    marked_read: bool


class FilterRunResult(BaseModel):
    folder_id: str
    rules_applied: list[str]
    emails_checked: int
    actions: list[FilterAction]


def _summary(e: dict) -> dict:
    snippet = " ".join(e["body"].split())
    if len(snippet) > 80:
        snippet = snippet[:77] + "..."
    return {"email_id": e["email_id"], "thread_id": e["thread_id"], "folder_id": e["folder_id"],
            "from_name": e["from_name"], "from_address": e["from_address"], "subject": e["subject"],
            "snippet": snippet, "date": e["date"], "is_read": e["is_read"], "labels": list(e["labels"]),
            "is_draft": e["is_draft"]}


def _newest_first(emails: list[dict]) -> list[dict]:
    return sorted(emails, key=lambda e: (e["date"], e["email_id"]), reverse=True)


def _parse_day(value: str, field: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ToolFailure(f"{field} must be a date YYYY-MM-DD, got {value!r}") from None


def _label(label: str) -> str:
    name = " ".join(label.split()).lower()
    if not _LABEL.match(name):
        raise ToolFailure(f"invalid label {label!r}: 1-30 letters, digits, spaces, '-', '_' or '/'")
    return name


def _addresses(values: list[str], field: str) -> list[str]:
    out: list[str] = []
    for v in values:
        a = v.strip().lower()
        if not _ADDRESS.match(a):
            raise ToolFailure(f"{field}: {v!r} is not a valid email address")
        if a not in out:
            out.append(a)
    return out


class EmailClient(Environment):
    """A personal email client for one mailbox owner: system folders (inbox, sent, drafts, archive,
    spam, trash) plus custom folders, an address book, emails grouped into threads with labels and
    read/unread flags, drafts that can be edited and sent, replies that stay in their thread, and
    filter rules that sort a folder when they are run."""

    name = "email_client"
    domain = "communication"
    State = State

    # -- helpers -------------------------------------------------------------
    def _email(self, email_id: str) -> dict:
        e = self.state["emails"].get(email_id)
        if e is None:
            raise ToolFailure(f"email {email_id} not found")
        return e

    def _folder(self, folder_id: str) -> dict:
        f = self.state["folders"].get(folder_id)
        if f is None:
            raise ToolFailure(f"folder {folder_id} not found; see list_folders")
        return f

    def _draft(self, email_id: str) -> dict:
        e = self._email(email_id)
        if not e["is_draft"]:
            raise ToolFailure(f"{email_id} is not a draft")
        return e

    def _new_id(self) -> str:
        eid = f"E-{self.state['next_email_number']:04d}"
        self.state["next_email_number"] += 1
        return eid

    def _new_thread(self) -> str:
        tid = f"T-{self.state['next_thread_number']:04d}"
        self.state["next_thread_number"] += 1
        return tid

    def _check_recipient_count(self, to: list[str], cc: list[str]) -> None:
        if len(to) + len(cc) > MAX_RECIPIENTS:
            raise ToolFailure(f"an email can have at most {MAX_RECIPIENTS} recipients")

    @staticmethod
    def _rule_matches(rule: dict, e: dict) -> bool:
        if rule["from_contains"]:
            needle = rule["from_contains"].lower()
            if needle not in e["from_address"].lower() and needle not in e["from_name"].lower():
                return False
        if rule["subject_contains"] and rule["subject_contains"].lower() not in e["subject"].lower():
            return False
        return True

    # -- folders -------------------------------------------------------------
    def list_folders(self) -> list[FolderInfo]:
        """All folders with their total and unread email counts; system folders first."""
        out = []
        for f in self.state["folders"].values():
            inside = [e for e in self.state["emails"].values() if e["folder_id"] == f["folder_id"]]
            out.append({"folder_id": f["folder_id"], "name": f["name"], "is_system": f["is_system"],
                        "total_count": len(inside), "unread_count": sum(1 for e in inside if not e["is_read"])})
        order = {fid: i for i, fid in enumerate(SYSTEM_FOLDERS)}
        return sorted(out, key=lambda f: (order.get(f["folder_id"], len(order)), f["name"].lower()))

    def create_folder(self, name: str) -> FolderInfo:
        """Create a custom folder.

        Args:
            name: Folder name, 1-40 characters, unique (case-insensitive).
        """
        name = " ".join(name.split())
        if not 1 <= len(name) <= 40:
            raise ToolFailure("folder name must be 1-40 characters")
        for f in self.state["folders"].values():
            if f["name"].lower() == name.lower():
                raise ToolFailure(f"a folder named {f['name']!r} already exists ({f['folder_id']})")
        fid = f"F-{self.state['next_folder_number']:03d}"
        self.state["next_folder_number"] += 1
        self.state["folders"][fid] = {"folder_id": fid, "name": name, "is_system": False}
        return {"folder_id": fid, "name": name, "is_system": False, "total_count": 0, "unread_count": 0}

    # -- reading -------------------------------------------------------------
    def list_emails(self, folder_id: str, unread_only: bool = False, label: str | None = None,
                    limit: int = 25) -> list[EmailSummary]:
        """Emails in a folder, newest first.

        Args:
            folder_id: Folder identifier, e.g. "inbox", "archive" or "F-002".
            unread_only: Only unread emails.
            label: Only emails carrying this label.
            limit: Maximum number of emails to return (1-100).
        """
        self._folder(folder_id)
        if not 1 <= limit <= 100:
            raise ToolFailure("limit must be between 1 and 100")
        wanted = _label(label) if label is not None else None
        found = [e for e in self.state["emails"].values() if e["folder_id"] == folder_id
                 and (not unread_only or not e["is_read"]) and (wanted is None or wanted in e["labels"])]
        return [_summary(e) for e in _newest_first(found)[:limit]]

    def search_emails(self, query: str | None = None, email_address: str | None = None,
                      folder_id: str | None = None, label: str | None = None, after: str | None = None,
                      before: str | None = None, limit: int = 25) -> list[EmailSummary]:
        """Search emails, newest first. Without folder_id, spam and trash are not searched.
        Give at least one criterion.

        Args:
            query: Words that must all appear in the subject, body or sender (case-insensitive).
            email_address: Only emails sent by, or addressed (to/cc) to, this address.
            folder_id: Only search this folder.
            label: Only emails carrying this label.
            after: Only emails dated on or after this day, YYYY-MM-DD.
            before: Only emails dated on or before this day, YYYY-MM-DD.
            limit: Maximum number of results (1-100).
        """
        if all(v is None for v in (query, email_address, folder_id, label, after, before)):
            raise ToolFailure("give at least one search criterion")
        if not 1 <= limit <= 100:
            raise ToolFailure("limit must be between 1 and 100")
        words = query.lower().split() if query is not None else []
        if query is not None and not words:
            raise ToolFailure("query must contain at least one word")
        if folder_id is not None:
            self._folder(folder_id)
        wanted = _label(label) if label is not None else None
        addr = email_address.strip().lower() if email_address is not None else None
        start = _parse_day(after, "after") if after is not None else None
        end = _parse_day(before, "before") if before is not None else None
        if start and end and start > end:
            raise ToolFailure("after must not be later than before")
        found = []
        for e in self.state["emails"].values():
            if folder_id is None and e["folder_id"] in ("spam", "trash"):
                continue
            if folder_id is not None and e["folder_id"] != folder_id:
                continue
            if wanted is not None and wanted not in e["labels"]:
                continue
            if addr is not None and addr != e["from_address"].lower() and addr not in e["to"] and addr not in e["cc"]:
                continue
            day = date.fromisoformat(e["date"][:10])
            if (start and day < start) or (end and day > end):
                continue
            text = " ".join((e["subject"], e["body"], e["from_name"], e["from_address"])).lower()
            if all(w in text for w in words):
                found.append(e)
        return [_summary(e) for e in _newest_first(found)[:limit]]

    def read_email(self, email_id: str) -> Email:
        """Open an email: its full content, recipients and labels. Marks it as read.

        Args:
            email_id: Email identifier, e.g. "E-0012".
        """
        e = self._email(email_id)
        if not e["is_read"]:
            e["is_read"] = True
        return e

    def get_thread(self, thread_id: str) -> ThreadView:
        """All emails of a conversation thread in any folder, oldest first (drafts included).

        Args:
            thread_id: Thread identifier, e.g. "T-0004" (from an email's thread_id).
        """
        emails = sorted((e for e in self.state["emails"].values() if e["thread_id"] == thread_id),
                        key=lambda e: (e["date"], e["email_id"]))
        if not emails:
            raise ToolFailure(f"thread {thread_id} not found")
        return {"thread_id": thread_id, "subject": emails[0]["subject"], "message_count": len(emails),
                "emails": emails}

    # -- flags, labels, folders ---------------------------------------------
    def mark_read(self, email_id: str, is_read: bool = True) -> EmailSummary:
        """Mark an email as read or unread.

        Args:
            email_id: Email identifier.
            is_read: true to mark as read, false to mark as unread.
        """
        e = self._email(email_id)
        if e["is_read"] == is_read:
            raise ToolFailure(f"{email_id} is already marked as {'read' if is_read else 'unread'}")
        e["is_read"] = is_read
        return _summary(e)

    def add_label(self, email_id: str, label: str) -> EmailSummary:
        """Put a label on an email (at most 8 labels per email).

        Args:
            email_id: Email identifier.
            label: Label name, e.g. "urgent" or "clients/brightwave" (stored lowercase).
        """
        e = self._email(email_id)
        name = _label(label)
        if name in e["labels"]:
            raise ToolFailure(f"{email_id} already has the label {name!r}")
        if len(e["labels"]) >= MAX_LABELS:
            raise ToolFailure(f"{email_id} already has {MAX_LABELS} labels")
        e["labels"].append(name)
        return _summary(e)

    def remove_label(self, email_id: str, label: str) -> EmailSummary:
        """Take a label off an email.

        Args:
            email_id: Email identifier.
            label: Label name to remove.
        """
        e = self._email(email_id)
        name = _label(label)
        if name not in e["labels"]:
            raise ToolFailure(f"{email_id} has no label {name!r}")
        e["labels"].remove(name)
        return _summary(e)

    def move_email(self, email_id: str, folder_id: str) -> EmailSummary:
        """Move an email to another folder. Drafts cannot be moved, nothing can be moved into
        drafts, and only your own outgoing emails can go into sent.

        Args:
            email_id: Email identifier.
            folder_id: Destination folder identifier.
        """
        e = self._email(email_id)
        self._folder(folder_id)
        if e["is_draft"]:
            raise ToolFailure(f"{email_id} is a draft; send it or delete it instead of moving it")
        if folder_id == "drafts":
            raise ToolFailure("emails cannot be moved into drafts")
        if folder_id == "sent" and e["from_address"].lower() != self.state["owner_address"].lower():
            raise ToolFailure("only emails you sent can be moved into sent")
        if e["folder_id"] == folder_id:
            raise ToolFailure(f"{email_id} is already in {folder_id}")
        e["folder_id"] = folder_id
        return _summary(e)

    def delete_email(self, email_id: str) -> DeleteResult:
        """Delete an email: it goes to trash; an email already in trash, or a draft, is deleted permanently.

        Args:
            email_id: Email identifier.
        """
        e = self._email(email_id)
        if e["is_draft"] or e["folder_id"] == "trash":
            del self.state["emails"][email_id]
            return {"email_id": email_id, "deleted_permanently": True, "folder_id": None}
        e["folder_id"] = "trash"
        return {"email_id": email_id, "deleted_permanently": False, "folder_id": "trash"}

    # -- contacts ------------------------------------------------------------
    def list_contacts(self, query: str | None = None, favorites_only: bool = False) -> list[Contact]:
        """Address-book entries, sorted by name.

        Args:
            query: Only contacts whose name, email address or company contains this text (case-insensitive).
            favorites_only: Only contacts marked as favorite.
        """
        q = query.strip().lower() if query is not None else ""
        found = [c for c in self.state["contacts"].values()
                 if (not favorites_only or c["is_favorite"])
                 and (not q or q in c["name"].lower() or q in c["email_address"].lower() or q in c["company"].lower())]
        return sorted(found, key=lambda c: (c["name"].lower(), c["contact_id"]))

    # -- composing -----------------------------------------------------------
    def create_draft(self, to: list[str], subject: str, body: str, cc: list[str] | None = None) -> Email:
        """Start a new email (a new thread) saved in drafts. Recipients may be completed later.

        Args:
            to: Recipient email addresses (may be empty for now).
            subject: Subject line.
            body: Message text.
            cc: Carbon-copy email addresses.
        """
        to_list = _addresses(to, "to")
        cc_list = [a for a in _addresses(cc or [], "cc") if a not in to_list]
        self._check_recipient_count(to_list, cc_list)
        eid = self._new_id()
        draft = {"email_id": eid, "thread_id": self._new_thread(), "folder_id": "drafts",
                 "from_name": self.state["owner_name"], "from_address": self.state["owner_address"],
                 "to": to_list, "cc": cc_list, "subject": subject.strip(), "body": body, "date": self.state["now"],
                 "is_read": True, "labels": [], "is_draft": True, "in_reply_to": None}
        self.state["emails"][eid] = draft
        return draft

    def update_draft(self, email_id: str, to: list[str] | None = None, cc: list[str] | None = None,
                     subject: str | None = None, body: str | None = None) -> Email:
        """Edit a draft; only the fields you give are replaced.

        Args:
            email_id: The draft's email identifier.
            to: New list of recipient addresses (replaces the old list).
            cc: New list of carbon-copy addresses (replaces the old list).
            subject: New subject line.
            body: New message text.
        """
        d = self._draft(email_id)
        if to is None and cc is None and subject is None and body is None:
            raise ToolFailure("nothing to change: give to, cc, subject or body")
        to_list = _addresses(to, "to") if to is not None else list(d["to"])
        cc_list = _addresses(cc, "cc") if cc is not None else list(d["cc"])
        cc_list = [a for a in cc_list if a not in to_list]
        self._check_recipient_count(to_list, cc_list)
        d["to"] = to_list
        d["cc"] = cc_list
        if subject is not None:
            d["subject"] = subject.strip()
        if body is not None:
            d["body"] = body
        d["date"] = self.state["now"]
        return d

    def send_draft(self, email_id: str) -> Email:
        """Send a draft. It needs at least one "to" recipient and a subject; it moves to sent
        and keeps its thread.

        Args:
            email_id: The draft's email identifier.
        """
        d = self._draft(email_id)
        if not d["to"]:
            raise ToolFailure(f"draft {email_id} has no recipients; add them with update_draft")
        if not d["subject"]:
            raise ToolFailure(f"draft {email_id} has no subject; add one with update_draft")
        d["is_draft"] = False
        d["folder_id"] = "sent"
        d["date"] = self.state["now"]
        d["is_read"] = True
        return d

    def reply_to_email(self, email_id: str, body: str, reply_all: bool = False, save_as_draft: bool = False) -> Email:
        """Reply to an email in the same thread ("Re: " subject). Goes to the sender, or with
        reply_all also to the other recipients. Sent at once unless save_as_draft.

        Args:
            email_id: The email you are answering.
            body: Reply text (must not be empty).
            reply_all: Also address everyone else on the original email.
            save_as_draft: Save the reply in drafts instead of sending it.
        """
        orig = self._email(email_id)
        if orig["is_draft"]:
            raise ToolFailure(f"{email_id} is a draft; drafts cannot be replied to")
        if not body.strip():
            raise ToolFailure("reply body must not be empty")
        me = self.state["owner_address"].lower()
        if orig["from_address"].lower() == me:
            to_list = list(orig["to"])
            cc_list = list(orig["cc"]) if reply_all else []
        else:
            to_list = [orig["from_address"].lower()]
            cc_list = []
            if reply_all:
                to_list += [a for a in orig["to"] if a != me and a not in to_list]
                cc_list = [a for a in orig["cc"] if a != me and a not in to_list]
        subject = orig["subject"] if orig["subject"].lower().startswith("re:") else f"Re: {orig['subject']}"
        eid = self._new_id()
        reply = {"email_id": eid, "thread_id": orig["thread_id"], "folder_id": "drafts" if save_as_draft else "sent",
                 "from_name": self.state["owner_name"], "from_address": self.state["owner_address"],
                 "to": to_list, "cc": cc_list, "subject": subject, "body": body, "date": self.state["now"],
                 "is_read": True, "labels": [], "is_draft": save_as_draft, "in_reply_to": email_id}
        self.state["emails"][eid] = reply
        return reply

    # -- filter rules --------------------------------------------------------
    def list_filter_rules(self) -> list[FilterRule]:
        """All filter rules in the order they are applied."""
        return sorted(self.state["filter_rules"].values(), key=lambda r: r["rule_id"])

    def create_filter_rule(self, name: str, from_contains: str | None = None, subject_contains: str | None = None,
                           move_to_folder_id: str | None = None, add_label: str | None = None,
                           mark_as_read: bool = False) -> FilterRule:
        """Create an enabled filter rule. It needs at least one condition (all given conditions must
        match) and at least one action. Rules only act when apply_filter_rules is run.

        Args:
            name: Short name for the rule.
            from_contains: Condition: sender address or name contains this text.
            subject_contains: Condition: subject contains this text.
            move_to_folder_id: Action: move matching emails to this folder (not drafts or sent).
            add_label: Action: add this label to matching emails.
            mark_as_read: Action: mark matching emails as read.
        """
        if not name.strip():
            raise ToolFailure("rule name must not be empty")
        conds = [c.strip() if c is not None else None for c in (from_contains, subject_contains)]
        if any(c == "" for c in conds):
            raise ToolFailure("conditions must not be empty strings")
        if all(c is None for c in conds):
            raise ToolFailure("a rule needs at least one condition: from_contains or subject_contains")
        if move_to_folder_id is None and add_label is None and not mark_as_read:
            raise ToolFailure("a rule needs at least one action: move_to_folder_id, add_label or mark_as_read")
        if move_to_folder_id is not None:
            self._folder(move_to_folder_id)
            if move_to_folder_id in ("drafts", "sent"):
                raise ToolFailure(f"filters cannot move emails into {move_to_folder_id}")
        label = _label(add_label) if add_label is not None else None
        rid = f"R-{self.state['next_rule_number']:03d}"
        self.state["next_rule_number"] += 1
        rule = {"rule_id": rid, "name": name.strip(), "from_contains": conds[0], "subject_contains": conds[1],
                "move_to_folder_id": move_to_folder_id, "add_label": label, "mark_as_read": mark_as_read,
                "enabled": True}
        self.state["filter_rules"][rid] = rule
        return rule

    def set_filter_rule_enabled(self, rule_id: str, enabled: bool) -> FilterRule:
        """Turn a filter rule on or off.

        Args:
            rule_id: Rule identifier, e.g. "R-002".
            enabled: true to enable, false to disable.
        """
        rule = self.state["filter_rules"].get(rule_id)
        if rule is None:
            raise ToolFailure(f"filter rule {rule_id} not found")
        if rule["enabled"] == enabled:
            raise ToolFailure(f"rule {rule_id} is already {'enabled' if enabled else 'disabled'}")
        rule["enabled"] = enabled
        return rule

    def apply_filter_rules(self, folder_id: str = "inbox", rule_id: str | None = None) -> FilterRunResult:
        """Run filter rules on the emails of a folder, oldest email first. Enabled rules are tried in
        order; a matching rule adds its label, marks read, and moves the email (after a move no
        further rules are tried for it). Only changes are reported.

        Args:
            folder_id: Folder to sort, default "inbox" (not drafts).
            rule_id: Run only this (enabled) rule instead of all enabled rules.
        """
        self._folder(folder_id)
        if folder_id == "drafts":
            raise ToolFailure("filters do not run on drafts")
        if rule_id is not None:
            rule = self.state["filter_rules"].get(rule_id)
            if rule is None:
                raise ToolFailure(f"filter rule {rule_id} not found")
            if not rule["enabled"]:
                raise ToolFailure(f"rule {rule_id} is disabled; enable it first")
            rules = [rule]
        else:
            rules = [r for r in self.list_filter_rules() if r["enabled"]]
        emails = sorted((e for e in self.state["emails"].values() if e["folder_id"] == folder_id and not e["is_draft"]),
                        key=lambda e: (e["date"], e["email_id"]))
        actions = []
        for e in emails:
            for rule in rules:
                if not self._rule_matches(rule, e):
                    continue
                label_added = None
                if rule["add_label"] and rule["add_label"] not in e["labels"] and len(e["labels"]) < MAX_LABELS:
                    e["labels"].append(rule["add_label"])
                    label_added = rule["add_label"]
                marked = False
                if rule["mark_as_read"] and not e["is_read"]:
                    e["is_read"] = True
                    marked = True
                moved = None
                target = rule["move_to_folder_id"]
                if target and target != e["folder_id"] and target in self.state["folders"]:
                    e["folder_id"] = target
                    moved = target
                if label_added or marked or moved:
                    actions.append({"email_id": e["email_id"], "rule_id": rule["rule_id"], "moved_to": moved,
                                    "label_added": label_added, "marked_read": marked})
                if moved:
                    break
        return {"folder_id": folder_id, "rules_applied": [r["rule_id"] for r in rules],
                "emails_checked": len(emails), "actions": actions}
