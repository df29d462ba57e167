"""Team chat: a workspace with public/private channels, direct messages, threads, reactions and pins."""

from __future__ import annotations

import re
from datetime import date
from typing import Literal

from pydantic import BaseModel, Field

from envfactory.env import Environment, ToolFailure

ChannelKind = Literal["public", "private", "direct"]

_CHANNEL_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{1,79}$")
_EMOJI = re.compile(r"^[a-z0-9_+-]{1,32}$")
MAX_TEXT = 4000


class User(BaseModel):
    user_id: str
    handle: str
    full_name: str
    email: str
    title: str
    timezone: str
    status: Literal["active", "deactivated"] = "active"


class Channel(BaseModel):
    channel_id: str
    name: str
    kind: ChannelKind
    topic: str = ""
    created_by: str
    created_at: str
    is_archived: bool = False
    is_default: bool = False
    members: list[str]
    pinned_message_ids: list[str] = Field(default_factory=list)


class Message(BaseModel):
    message_id: str
    channel_id: str
    author_id: str
    text: str
    posted_at: str
    thread_parent_id: str | None = None
    reply_count: int = 0
    latest_reply_at: str | None = None
    reactions: dict[str, list[str]] = Field(default_factory=dict)
    is_pinned: bool = False
    edited: bool = False


class State(BaseModel):
    workspace_name: str
    now: str
    current_user_id: str
    max_pins_per_channel: int = 5
    users: dict[str, User]
    channels: dict[str, Channel]
    messages: dict[str, Message]
    next_message_number: int = 1
    next_channel_number: int = 1


class ChannelSummary(BaseModel):
    channel_id: str
    name: str
    kind: ChannelKind
    topic: str
    member_count: int
    is_member: bool
    is_archived: bool


class Membership(BaseModel):
    channel_id: str
    user_id: str
    is_member: bool
    member_count: int


class ThreadView(BaseModel):
    parent: Message
    replies: list[Message]


class ReactionSummary(BaseModel):
    message_id: str
    emoji: str
    count: int
    user_ids: list[str]


class PinStatus(BaseModel):
    message_id: str
    channel_id: str
    is_pinned: bool
    pinned_count: int


def _parse_day(value: str, field: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ToolFailure(f"{field} must be a date YYYY-MM-DD, got {value!r}") from None


def _clean_text(text: str) -> str:
    text = text.strip()
    if not text:
        raise ToolFailure("message text must not be empty")
    if len(text) > MAX_TEXT:
        raise ToolFailure(f"message text is {len(text)} characters; the limit is {MAX_TEXT}")
    return text


def _clean_emoji(emoji: str) -> str:
    name = emoji.strip().strip(":").lower()
    if not _EMOJI.match(name):
        raise ToolFailure(f"{emoji!r} is not an emoji name; use a short name such as 'thumbsup' or ':tada:'")
    return name


class TeamChat(Environment):
    """A company's team-chat workspace seen by one signed-in user: people, public and private
    channels with memberships, direct-message conversations, and messages with thread replies,
    emoji reactions and pins. The signed-in user can browse, join, leave and create channels,
    invite colleagues, post, reply in threads, edit their own messages, react, pin and search."""

    name = "team_chat"
    domain = "communication"
    State = State

    # -- helpers -------------------------------------------------------------
    @property
    def _me(self) -> str:
        return self.state["current_user_id"]

    def _channel(self, channel_id: str) -> dict:
        ch = self.state["channels"].get(channel_id)
        if ch is None:
            raise ToolFailure(f"channel {channel_id} not found")
        return ch

    def _message(self, message_id: str) -> dict:
        msg = self.state["messages"].get(message_id)
        if msg is None:
            raise ToolFailure(f"message {message_id} not found")
        return msg

    def _user(self, user_id: str) -> dict:
        user = self.state["users"].get(user_id)
        if user is None:
            raise ToolFailure(f"user {user_id} not found")
        return user

    def _check_readable(self, ch: dict) -> None:
        if ch["kind"] == "public" or self._me in ch["members"]:
            return
        if ch["kind"] == "direct":
            raise ToolFailure(f"{ch['channel_id']} is a direct conversation you are not part of")
        raise ToolFailure(f"channel {ch['channel_id']} is private and you are not a member")

    def _check_writable(self, ch: dict) -> None:
        self._check_readable(ch)
        if self._me not in ch["members"]:
            raise ToolFailure(f"you are not a member of #{ch['name']} ({ch['channel_id']}); join it first")
        if ch["is_archived"]:
            raise ToolFailure(f"#{ch['name']} ({ch['channel_id']}) is archived and read-only")

    def _new_message(self, channel_id: str, text: str, parent_id: str | None) -> dict:
        mid = f"M-{self.state['next_message_number']:05d}"
        self.state["next_message_number"] += 1
        msg = {"message_id": mid, "channel_id": channel_id, "author_id": self._me, "text": text,
               "posted_at": self.state["now"], "thread_parent_id": parent_id, "reply_count": 0,
               "latest_reply_at": None, "reactions": {}, "is_pinned": False, "edited": False}
        self.state["messages"][mid] = msg
        return msg

    @staticmethod
    def _order(msg: dict) -> tuple:
        return (msg["posted_at"], msg["message_id"])

    def _summary(self, ch: dict) -> dict:
        return {"channel_id": ch["channel_id"], "name": ch["name"], "kind": ch["kind"], "topic": ch["topic"],
                "member_count": len(ch["members"]), "is_member": self._me in ch["members"],
                "is_archived": ch["is_archived"]}

    def _membership(self, ch: dict, user_id: str) -> dict:
        return {"channel_id": ch["channel_id"], "user_id": user_id, "is_member": user_id in ch["members"],
                "member_count": len(ch["members"])}

    # -- people and channels -------------------------------------------------
    def find_users(self, query: str) -> list[User]:
        """Find people in the workspace whose handle, full name, email or job title contains the query.

        Args:
            query: Text to look for, case-insensitive, e.g. "priya" or "designer".
        """
        q = query.strip().lower()
        if not q:
            raise ToolFailure("query must not be empty")
        found = [u for u in self.state["users"].values()
                 if any(q in u[f].lower() for f in ("handle", "full_name", "email", "title"))]
        return sorted(found, key=lambda u: u["user_id"])

    def list_channels(self, kind: ChannelKind | None = None, joined_only: bool = False,
                      include_archived: bool = False, name_contains: str | None = None) -> list[ChannelSummary]:
        """List the channels you can see: every public channel plus the private channels and
        direct conversations you belong to, sorted by name.

        Args:
            kind: Only channels of this kind: public, private or direct.
            joined_only: Only channels you are a member of.
            include_archived: Also list archived channels.
            name_contains: Only channels whose name contains this text (case-insensitive).
        """
        out = []
        for ch in self.state["channels"].values():
            member = self._me in ch["members"]
            if ch["kind"] != "public" and not member:
                continue
            if kind is not None and ch["kind"] != kind:
                continue
            if joined_only and not member:
                continue
            if ch["is_archived"] and not include_archived:
                continue
            if name_contains is not None and name_contains.lower() not in ch["name"].lower():
                continue
            out.append(self._summary(ch))
        return sorted(out, key=lambda c: (c["name"], c["channel_id"]))

    def get_channel(self, channel_id: str) -> Channel:
        """Full details of a channel: topic, creator, members and pinned message ids.

        Args:
            channel_id: Channel identifier, e.g. "C-0003".
        """
        ch = self._channel(channel_id)
        self._check_readable(ch)
        return ch

    def create_channel(self, name: str, is_private: bool = False, topic: str = "") -> Channel:
        """Create a new channel with you as its first member.

        Args:
            name: Channel name: 2-80 lowercase letters, digits, '-' or '_', unique in the workspace.
            is_private: Create a private (invite-only) channel instead of a public one.
            topic: Optional channel topic.
        """
        if not _CHANNEL_NAME.match(name):
            raise ToolFailure(f"invalid channel name {name!r}: use 2-80 lowercase letters, digits, '-' or '_'")
        for ch in self.state["channels"].values():
            if ch["kind"] != "direct" and ch["name"] == name:
                raise ToolFailure(f"a channel named #{name} already exists ({ch['channel_id']})")
        if len(topic) > 250:
            raise ToolFailure("topic must be at most 250 characters")
        cid = f"C-{self.state['next_channel_number']:04d}"
        self.state["next_channel_number"] += 1
        ch = {"channel_id": cid, "name": name, "kind": "private" if is_private else "public",
              "topic": topic.strip(), "created_by": self._me, "created_at": self.state["now"],
              "is_archived": False, "is_default": False, "members": [self._me], "pinned_message_ids": []}
        self.state["channels"][cid] = ch
        return ch

    def join_channel(self, channel_id: str) -> Membership:
        """Join a public channel. Private channels need an invitation from a member.

        Args:
            channel_id: Channel identifier.
        """
        ch = self._channel(channel_id)
        self._check_readable(ch)
        if ch["kind"] != "public":
            raise ToolFailure(f"{channel_id} is not a public channel; ask a member to invite you")
        if ch["is_archived"]:
            raise ToolFailure(f"#{ch['name']} ({channel_id}) is archived and cannot be joined")
        if self._me in ch["members"]:
            raise ToolFailure(f"you are already a member of #{ch['name']}")
        ch["members"].append(self._me)
        return self._membership(ch, self._me)

    def leave_channel(self, channel_id: str) -> Membership:
        """Leave a channel you are a member of. The workspace's default channel and direct
        conversations cannot be left.

        Args:
            channel_id: Channel identifier.
        """
        ch = self._channel(channel_id)
        self._check_readable(ch)
        if self._me not in ch["members"]:
            raise ToolFailure(f"you are not a member of #{ch['name']}")
        if ch["kind"] == "direct":
            raise ToolFailure("direct conversations cannot be left")
        if ch["is_default"]:
            raise ToolFailure(f"#{ch['name']} is the workspace's default channel and cannot be left")
        ch["members"].remove(self._me)
        return self._membership(ch, self._me)

    def invite_to_channel(self, channel_id: str, user_id: str) -> Membership:
        """Add a colleague to a public or private channel you are a member of.

        Args:
            channel_id: Channel identifier.
            user_id: The person to add, e.g. "U-007" (from find_users).
        """
        ch = self._channel(channel_id)
        if ch["kind"] == "direct":
            raise ToolFailure("people cannot be added to a direct conversation")
        self._check_writable(ch)
        user = self._user(user_id)
        if user["status"] != "active":
            raise ToolFailure(f"{user['full_name']} ({user_id}) is deactivated")
        if user_id in ch["members"]:
            raise ToolFailure(f"{user['full_name']} is already a member of #{ch['name']}")
        ch["members"].append(user_id)
        return self._membership(ch, user_id)

    def open_direct_message(self, user_id: str) -> Channel:
        """Get the direct conversation between you and another person, creating it if needed.
        Post into it with post_message using its channel_id.

        Args:
            user_id: The other person, e.g. "U-004".
        """
        user = self._user(user_id)
        if user_id == self._me:
            raise ToolFailure("you cannot open a direct conversation with yourself")
        for ch in self.state["channels"].values():
            if ch["kind"] == "direct" and sorted(ch["members"]) == sorted([self._me, user_id]):
                return ch
        if user["status"] != "active":
            raise ToolFailure(f"{user['full_name']} ({user_id}) is deactivated")
        me = self.state["users"][self._me]
        cid = f"D-{self.state['next_channel_number']:04d}"
        self.state["next_channel_number"] += 1
        ch = {"channel_id": cid, "name": "dm:" + ",".join(sorted([me["handle"], user["handle"]])),
              "kind": "direct", "topic": "", "created_by": self._me, "created_at": self.state["now"],
              "is_archived": False, "is_default": False, "members": [self._me, user_id], "pinned_message_ids": []}
        self.state["channels"][cid] = ch
        return ch

    # -- messages ------------------------------------------------------------
    def read_channel_messages(self, channel_id: str, limit: int = 20) -> list[Message]:
        """The latest top-level messages of a channel, oldest first (thread replies are
        not included; see get_thread). Public channels can be read without joining.

        Args:
            channel_id: Channel identifier.
            limit: How many of the most recent messages to return (1-100).
        """
        ch = self._channel(channel_id)
        self._check_readable(ch)
        if not 1 <= limit <= 100:
            raise ToolFailure("limit must be between 1 and 100")
        msgs = sorted((m for m in self.state["messages"].values()
                       if m["channel_id"] == channel_id and m["thread_parent_id"] is None), key=self._order)
        return msgs[-limit:]

    def get_thread(self, message_id: str) -> ThreadView:
        """A message's thread: the top-level message and all its replies, oldest first.
        Given a reply, returns the thread it belongs to.

        Args:
            message_id: Message identifier, e.g. "M-00012".
        """
        msg = self._message(message_id)
        if msg["thread_parent_id"] is not None:
            msg = self._message(msg["thread_parent_id"])
        self._check_readable(self._channel(msg["channel_id"]))
        replies = sorted((m for m in self.state["messages"].values()
                          if m["thread_parent_id"] == msg["message_id"]), key=self._order)
        return {"parent": msg, "replies": replies}

    def post_message(self, channel_id: str, text: str) -> Message:
        """Post a new top-level message in a channel or direct conversation you belong to.

        Args:
            channel_id: Channel identifier (a "C-" channel or a "D-" direct conversation).
            text: Message text, 1-4000 characters.
        """
        ch = self._channel(channel_id)
        self._check_writable(ch)
        if ch["kind"] == "direct":
            for uid in ch["members"]:
                if uid != self._me and self._user(uid)["status"] != "active":
                    raise ToolFailure(f"{self._user(uid)['full_name']} ({uid}) is deactivated and cannot receive messages")
        return self._new_message(channel_id, _clean_text(text), None)

    def reply_in_thread(self, message_id: str, text: str) -> Message:
        """Reply in the thread of a top-level message.

        Args:
            message_id: The top-level message to reply to (not itself a reply).
            text: Reply text, 1-4000 characters.
        """
        parent = self._message(message_id)
        if parent["thread_parent_id"] is not None:
            raise ToolFailure(f"{message_id} is itself a reply; reply to the thread's top-level message "
                              f"{parent['thread_parent_id']} instead")
        self._check_writable(self._channel(parent["channel_id"]))
        reply = self._new_message(parent["channel_id"], _clean_text(text), message_id)
        parent["reply_count"] += 1
        parent["latest_reply_at"] = reply["posted_at"]
        return reply

    def edit_message(self, message_id: str, text: str) -> Message:
        """Change the text of one of your own messages.

        Args:
            message_id: Message identifier; must be a message you wrote.
            text: The new text, 1-4000 characters.
        """
        msg = self._message(message_id)
        if msg["author_id"] != self._me:
            raise ToolFailure(f"you can only edit your own messages; {message_id} was written by {msg['author_id']}")
        self._check_writable(self._channel(msg["channel_id"]))
        text = _clean_text(text)
        if text == msg["text"]:
            raise ToolFailure("the new text is identical to the current text")
        msg["text"] = text
        msg["edited"] = True
        return msg

    def add_reaction(self, message_id: str, emoji: str) -> ReactionSummary:
        """React to a message with an emoji.

        Args:
            message_id: Message identifier.
            emoji: Emoji short name, e.g. "thumbsup", "tada" or ":eyes:".
        """
        msg = self._message(message_id)
        self._check_writable(self._channel(msg["channel_id"]))
        name = _clean_emoji(emoji)
        users = msg["reactions"].get(name, [])
        if self._me in users:
            raise ToolFailure(f"you already reacted with :{name}: to {message_id}")
        if name not in msg["reactions"]:
            if len(msg["reactions"]) >= 20:
                raise ToolFailure(f"{message_id} already has 20 different reactions")
            msg["reactions"][name] = []
        msg["reactions"][name].append(self._me)
        return {"message_id": message_id, "emoji": name, "count": len(msg["reactions"][name]),
                "user_ids": list(msg["reactions"][name])}

    def remove_reaction(self, message_id: str, emoji: str) -> ReactionSummary:
        """Take back one of your emoji reactions.

        Args:
            message_id: Message identifier.
            emoji: Emoji short name you reacted with.
        """
        msg = self._message(message_id)
        self._check_writable(self._channel(msg["channel_id"]))
        name = _clean_emoji(emoji)
        users = msg["reactions"].get(name)
        if not users or self._me not in users:
            raise ToolFailure(f"you have not reacted with :{name}: to {message_id}")
        users.remove(self._me)
        remaining = list(users)
        if not remaining:
            del msg["reactions"][name]
        return {"message_id": message_id, "emoji": name, "count": len(remaining), "user_ids": remaining}

    def pin_message(self, message_id: str) -> PinStatus:
        """Pin a message to its channel. Each channel holds a limited number of pins.

        Args:
            message_id: Message identifier.
        """
        msg = self._message(message_id)
        ch = self._channel(msg["channel_id"])
        self._check_writable(ch)
        if msg["is_pinned"]:
            raise ToolFailure(f"{message_id} is already pinned")
        limit = self.state["max_pins_per_channel"]
        if len(ch["pinned_message_ids"]) >= limit:
            raise ToolFailure(f"#{ch['name']} already has {limit} pinned messages (the maximum); unpin one first")
        msg["is_pinned"] = True
        ch["pinned_message_ids"].append(message_id)
        return {"message_id": message_id, "channel_id": ch["channel_id"], "is_pinned": True,
                "pinned_count": len(ch["pinned_message_ids"])}

    def unpin_message(self, message_id: str) -> PinStatus:
        """Remove a message from its channel's pins.

        Args:
            message_id: Message identifier.
        """
        msg = self._message(message_id)
        ch = self._channel(msg["channel_id"])
        self._check_writable(ch)
        if not msg["is_pinned"]:
            raise ToolFailure(f"{message_id} is not pinned")
        msg["is_pinned"] = False
        ch["pinned_message_ids"].remove(message_id)
        return {"message_id": message_id, "channel_id": ch["channel_id"], "is_pinned": False,
                "pinned_count": len(ch["pinned_message_ids"])}

    def list_pinned_messages(self, channel_id: str) -> list[Message]:
        """The pinned messages of a channel, in the order they were pinned.

        Args:
            channel_id: Channel identifier.
        """
        ch = self._channel(channel_id)
        self._check_readable(ch)
        return [self.state["messages"][mid] for mid in ch["pinned_message_ids"]]

    def search_messages(self, query: str, channel_id: str | None = None, author_id: str | None = None,
                        after: str | None = None, before: str | None = None, limit: int = 20) -> list[Message]:
        """Search messages (including thread replies) you can read, newest first. A message matches
        when it contains every word of the query, case-insensitive.

        Args:
            query: Words to look for, e.g. "release checklist".
            channel_id: Only search this channel.
            author_id: Only messages written by this user.
            after: Only messages posted on or after this date, YYYY-MM-DD.
            before: Only messages posted on or before this date, YYYY-MM-DD.
            limit: Maximum number of results (1-50).
        """
        words = query.lower().split()
        if not words:
            raise ToolFailure("query must contain at least one word")
        if not 1 <= limit <= 50:
            raise ToolFailure("limit must be between 1 and 50")
        if channel_id is not None:
            self._check_readable(self._channel(channel_id))
        if author_id is not None:
            self._user(author_id)
        start = _parse_day(after, "after") if after is not None else None
        end = _parse_day(before, "before") if before is not None else None
        if start and end and start > end:
            raise ToolFailure("after must not be later than before")
        channels = self.state["channels"]
        found = []
        for m in self.state["messages"].values():
            ch = channels[m["channel_id"]]
            if ch["kind"] != "public" and self._me not in ch["members"]:
                continue
            if channel_id is not None and m["channel_id"] != channel_id:
                continue
            if author_id is not None and m["author_id"] != author_id:
                continue
            day = date.fromisoformat(m["posted_at"][:10])
            if (start and day < start) or (end and day > end):
                continue
            text = m["text"].lower()
            if all(w in text for w in words):
                found.append(m)
        found.sort(key=self._order, reverse=True)
        return found[:limit]
