"""User simulator for conversational rollouts: an LLM playing the user, revealing information over turns."""

from __future__ import annotations

import json

from ..agent.loop import STOP
from ..llm import ChatRequest, LLMClient, Message
from .records import QueryRecord


class UserSimulator:
    def __init__(self, client: LLMClient, query: QueryRecord):
        self.client = client
        self.query = query
        self.system = (
            "You are role-playing a user talking to an assistant. Your goal:\n" + query.explicit +
            "\n\nValues you know (reveal them only when asked or when needed, a little at a time): " +
            json.dumps(query.user_values) +
            f"\n\nOpen with a short, natural request like: {query.refined!r}. Never mention tools. "
            f"When the task is done or cannot progress, reply exactly {STOP}.")

    def _ask(self, transcript: list[Message], step: str) -> str:
        # The simulator sees the conversation with roles swapped: the assistant's words are its input.
        flipped = [Message(role="system", content=self.system)]
        for m in transcript:
            if m.role == "assistant" and m.content:
                flipped.append(Message(role="user", content=m.content))
            elif m.role == "user":
                flipped.append(Message(role="assistant", content=m.content))
        if len(flipped) == 1:
            flipped.append(Message(role="user", content="(the conversation starts; write your first message)"))
        req = ChatRequest(model=self.client.cfg.model, messages=flipped, temperature=0.0,
                          metadata={"step": step, "chain": self.query.chain_id})
        return self.client.chat(req).content.strip()

    def first_message(self) -> str:
        return self._ask([], "user_sim_open")

    def reply(self, transcript: list[Message]) -> str:
        return self._ask(transcript, "user_sim")
