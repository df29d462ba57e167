from __future__ import annotations

import copy

import pytest

from envfactory.env.state import canonical_json, state_diff, state_hash
from envfactory.env.tracked import Journal, StateTypeError, plain, track


def test_hash_is_canonical():
    assert state_hash({"b": 1, "a": [1, {"y": 2, "x": 1}]}) == state_hash({"a": [1, {"x": 1, "y": 2}], "b": 1})
    assert state_hash({"a": 1}) != state_hash({"a": 1.5})
    assert canonical_json({"b": 1, "a": "é"}) == '{"a":"é","b":1}'


def test_diff_reports_leaf_changes():
    before = {"orders": {"O1": {"status": "new", "items": [1, 2]}, "O2": {"status": "new"}}, "n": 1}
    after = {"orders": {"O1": {"status": "paid", "items": [1, 2, 3]}, "O3": {"status": "new"}}, "n": 1}
    changes = {(c.op, tuple(c.path)) for c in state_diff(before, after)}
    assert changes == {("changed", ("orders", "O1", "status")), ("added", ("orders", "O1", "items", 2)),
                       ("removed", ("orders", "O2")), ("added", ("orders", "O3"))}
    assert state_diff(before, copy.deepcopy(before)) == []
    assert [c.op for c in state_diff({"x": 1}, {"x": 1.0})] == ["changed"]  # type matters for the hash too


ORIGINAL = {"t": {"a": {"v": 1, "l": [1, 2, 3]}, "b": {"v": 2, "l": []}}, "n": 0}


@pytest.mark.parametrize("mutate", [
    lambda s: s["t"]["a"].__setitem__("v", 9),
    lambda s: s["t"].__setitem__("c", {"v": 3}),
    lambda s: s["t"].__delitem__("a"),
    lambda s: s["t"].pop("b"),
    lambda s: s["t"].popitem(),
    lambda s: s["t"].clear(),
    lambda s: s["t"]["a"].update(v=5, w=6),
    lambda s: s["t"]["a"].setdefault("z", [1]),
    lambda s: s["t"]["a"]["l"].append(4),
    lambda s: s["t"]["a"]["l"].extend([4, 5]),
    lambda s: s["t"]["a"]["l"].insert(0, 0),
    lambda s: s["t"]["a"]["l"].pop(),
    lambda s: s["t"]["a"]["l"].remove(2),
    lambda s: s["t"]["a"]["l"].sort(reverse=True),
    lambda s: s["t"]["a"]["l"].reverse(),
    lambda s: s["t"]["a"]["l"].__setitem__(slice(0, 2), [7]),
    lambda s: s["t"]["a"]["l"].__delitem__(0),
    lambda s: s["t"]["a"]["l"].clear(),
    lambda s: s["t"]["b"]["l"].append({"deep": [1]}) or s["t"]["b"]["l"][0]["deep"].append(2),
])
def test_every_mutation_is_undone_exactly(mutate):
    journal = Journal()
    state = track(copy.deepcopy(ORIGINAL), journal)
    order_before = list(state["t"])
    mark = journal.mark()
    mutate(state)
    assert plain(state) != ORIGINAL
    journal.undo_to(mark)
    assert plain(state) == ORIGINAL
    assert list(state["t"]) == order_before  # iteration order too: tool outputs stay identical


def test_non_json_values_are_refused():
    state = track({"a": {}}, Journal())
    with pytest.raises(StateTypeError):
        state["a"]["s"] = {1, 2}
    with pytest.raises(StateTypeError):
        state["a"][3] = "x"


def test_tracked_values_copy_out_plain():
    state = track({"a": {"b": [1]}}, Journal())
    snap = state["a"].copy()
    state["a"]["b"].append(2)
    assert snap == {"b": [1]} and type(snap) is dict
    assert copy.deepcopy(state) == {"a": {"b": [1, 2]}}
