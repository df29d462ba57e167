"""The environment contract: a pydantic state schema + a class whose public methods are tools.

    class State(BaseModel):
        orders: dict[str, Order]
        next_order_number: int = 1

    class ShopEnv(Environment):
        '''One-paragraph description of the environment.'''
        name = "shop"
        domain = "retail"
        State = State

        def get_order(self, order_id: str) -> OrderView:
            '''Docstring = tool description.'''
            order = self.state["orders"].get(order_id)
            if order is None:
                raise ToolFailure(f"order {order_id} not found")
            return order

At run time `self.state` is the scenario as JSON (journaled dicts/lists, see
`tracked.py`), validated against `State` whenever a scenario is loaded. Tools
must be deterministic (no clock, no randomness): IDs come from counters in the
state, "today" from the scenario.
"""

from __future__ import annotations

import inspect
from typing import Any, ClassVar

from pydantic import BaseModel

from .tracked import Journal, plain, track


class Environment:
    name: ClassVar[str] = ""
    domain: ClassVar[str] = ""
    State: ClassVar[type[BaseModel] | None] = None

    def __init__(self) -> None:
        self._journal = Journal()
        self._state: Any = track({}, self._journal)

    @property
    def state(self) -> Any:
        return self._state

    @state.setter
    def state(self, value: Any) -> None:
        # Replacing the whole state is journaled too, so a failed call can undo it.
        old = self._state
        self._state = track(value, self._journal)
        self._journal.records.append(lambda: setattr(self, "_state", old))

    # -- tools ---------------------------------------------------------------
    @classmethod
    def tool_names(cls) -> list[str]:
        """Public methods defined by subclasses, in definition order."""
        names: list[str] = []
        for klass in reversed(cls.__mro__):
            if klass in (Environment, object) or not issubclass(klass, Environment):
                continue
            for attr, value in vars(klass).items():
                if attr.startswith("_") or attr in names or not inspect.isfunction(value):
                    continue
                names.append(attr)
        return names

    # -- scenario I/O (the paper's load_scenario / save_scenario) ------------
    def load_scenario(self, scenario: dict) -> None:
        data = scenario
        if self.State is not None:
            data = self.State.model_validate(scenario).model_dump(mode="json")
        self._journal = Journal()
        self._state = track(data, self._journal)

    def save_scenario(self) -> dict:
        return plain(self.state)

    def _state_view(self) -> Any:
        """The state for read-only use (hashing, serializing) without a copy."""
        return self.state

    # -- journal (used by the runtime) ---------------------------------------
    def _mark(self) -> int:
        return self._journal.mark()

    def _undo_to(self, mark: int) -> None:
        self._journal.undo_to(mark)
