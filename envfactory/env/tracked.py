"""Journaled JSON containers: the environment state's undo log.

Tools mutate the state in place (plain dict/list code, as in the paper's
environments). Every mutation of a tracked container appends an undo record
to the shared journal, so that

* rolling back a failed call costs O(mutations in that call), and
* resetting to the loaded scenario costs O(mutations since the load),

instead of copying a few-hundred-row state on every call (the RL hot path).
Reads are untouched C-speed dict/list operations.
"""

from __future__ import annotations

from typing import Any, Callable

_SCALARS = (str, int, float, bool, type(None))


class StateTypeError(TypeError):
    """A tool tried to store something that is not JSON in the state."""


class Journal:
    """Undo log shared by every container of one state tree."""

    __slots__ = ("records",)

    def __init__(self) -> None:
        self.records: list[Callable[[], None]] = []

    def mark(self) -> int:
        return len(self.records)

    def undo_to(self, mark: int) -> None:
        records = self.records
        while len(records) > mark:
            records.pop()()

    def forget(self) -> None:
        """Make the current contents the new baseline (no undo past here)."""
        self.records.clear()


def track(value: Any, journal: Journal) -> Any:
    """Deep-convert JSON-like `value` into tracked containers bound to `journal`."""
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, dict):
        out = TrackedDict.__new__(TrackedDict)
        dict.__init__(out)
        out._journal = journal
        for k, v in value.items():
            if not isinstance(k, str):
                raise StateTypeError(f"state keys must be strings, got {type(k).__name__}")
            dict.__setitem__(out, k, track(v, journal))
        return out
    if isinstance(value, (list, tuple)):
        out = TrackedList.__new__(TrackedList)
        list.__init__(out, [track(v, journal) for v in value])
        out._journal = journal
        return out
    raise StateTypeError(f"state values must be JSON (dict, list, str, number, bool, null), got {type(value).__name__}")


def plain(value: Any) -> Any:
    """Deep-convert tracked containers back to plain dict/list (a detached copy)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


class TrackedDict(dict):
    __slots__ = ("_journal",)

    def __setitem__(self, key, value):
        if not isinstance(key, str):
            raise StateTypeError(f"state keys must be strings, got {type(key).__name__}")
        value = track(value, self._journal)
        if key in self:
            old = dict.__getitem__(self, key)
            self._journal.records.append(lambda: dict.__setitem__(self, key, old))
        else:
            self._journal.records.append(lambda: dict.__delitem__(self, key))
        dict.__setitem__(self, key, value)

    def _save_all(self) -> None:
        # Deletions change key order; restoring the whole mapping keeps
        # iteration order (and so tool outputs) identical after an undo.
        items = list(self.items())

        def restore():
            dict.clear(self)
            dict.update(self, items)

        self._journal.records.append(restore)

    def __delitem__(self, key):
        if key not in self:
            raise KeyError(key)
        self._save_all()
        dict.__delitem__(self, key)

    def pop(self, key, *default):
        if key in self:
            self._save_all()
        return dict.pop(self, key, *default)

    def popitem(self):
        if self:
            self._save_all()
        return dict.popitem(self)

    def clear(self):
        self._save_all()
        dict.clear(self)

    def setdefault(self, key, default=None):
        if key not in self:
            self[key] = default
        return dict.__getitem__(self, key)

    def update(self, *args, **kwargs):
        for k, v in dict(*args, **kwargs).items():
            self[k] = v

    def __ior__(self, other):
        self.update(other)
        return self

    def copy(self):
        return plain(self)

    def __reduce__(self):  # pickling/deepcopy yields plain, detached data
        return (dict, (plain(self),))


class TrackedList(list):
    __slots__ = ("_journal",)

    def _save_all(self) -> None:
        items = list(self)
        self._journal.records.append(lambda: list.__setitem__(self, slice(None), items))

    def append(self, value):
        value = track(value, self._journal)
        self._journal.records.append(lambda: list.pop(self))
        list.append(self, value)

    def extend(self, values):
        values = [track(v, self._journal) for v in values]
        self._save_all()
        list.extend(self, values)

    def __iadd__(self, values):
        self.extend(values)
        return self

    def __imul__(self, n):
        self._save_all()
        return list.__imul__(self, n)

    def insert(self, index, value):
        value = track(value, self._journal)
        self._save_all()
        list.insert(self, index, value)

    def __setitem__(self, index, value):
        if isinstance(index, slice):
            value = [track(v, self._journal) for v in value]
        else:
            value = track(value, self._journal)
        self._save_all()
        list.__setitem__(self, index, value)

    def __delitem__(self, index):
        self._save_all()
        list.__delitem__(self, index)

    def pop(self, *index):
        self._save_all()
        return list.pop(self, *index)

    def remove(self, value):
        self._save_all()
        list.remove(self, value)

    def clear(self):
        self._save_all()
        list.clear(self)

    def sort(self, *args, **kwargs):
        self._save_all()
        list.sort(self, *args, **kwargs)

    def reverse(self):
        self._save_all()
        list.reverse(self)

    def copy(self):
        return plain(self)

    def __reduce__(self):
        return (list, (plain(self),))
