"""Composite reward: hand-computed cases and reward-hacking attempts that must not pay."""

from __future__ import annotations

import pytest

from envfactory.train.rewards import REWARD_TERMS, RewardConfig, RolloutOutcome, composite_reward, tau_at

GOLD = [("shop", "find_customer", {"email": "a@b.c"}), ("shop", "place_order", {"customer_id": "C1", "qty": 2.0})]
INIT, DONE, OTHER = {"shop": "h0"}, {"shop": "h1"}, {"shop": "h2"}


def outcome(pred, final, fmt=0, gold=GOLD, expected=DONE, initial=INIT):
    return RolloutOutcome(gold_calls=gold, predicted_calls=pred, format_errors=fmt, final_state_hash=final,
                          expected_state_hash=expected, initial_state_hash=initial)


HONEST = outcome(list(GOLD), DONE)


def r(o, **cfg):
    return composite_reward(o, RewardConfig(**cfg))


def test_registry_holds_every_term():
    assert set(REWARD_TERMS) == {"trace", "state", "length_penalty", "format_penalty"}


def test_honest_solution_scores_one():
    assert r(HONEST) == {"trace": 1.0, "state": 1.0, "length_penalty": 0.0, "format_penalty": 0.0, "tau": 0.5,
                         "reward": 1.0}


def test_numeric_tolerance_and_masked_args():
    close = outcome([GOLD[0], ("shop", "place_order", {"customer_id": "C1", "qty": 2})], DONE)
    assert r(close)["trace"] == 1.0
    noted = [GOLD[0], ("shop", "place_order", {"customer_id": "C1", "qty": 2.0, "note": "x"})]
    gold_noted = [GOLD[0], ("shop", "place_order", {"customer_id": "C1", "qty": 2.0, "note": "y"})]
    assert r(outcome(noted, DONE, gold=gold_noted))["trace"] == 0.0
    assert r(outcome(noted, DONE, gold=gold_noted), masked_args=["note"])["trace"] == 1.0


def test_hand_computed_mixtures():
    # Right calls plus one extra read, state right: 0.5*1 + 0.5*1 - 0.05
    extra = outcome(list(GOLD) + [GOLD[0]], DONE)
    assert r(extra)["reward"] == pytest.approx(0.95)
    # Second call with a wrong argument, state wrong: trace 0 (strict), state 0
    wrong = outcome([GOLD[0], ("shop", "place_order", {"customer_id": "C1", "qty": 3})], OTHER)
    assert r(wrong)["reward"] == 0.0
    # Partial trace: half the calls matched -> 0.5*0.5 + 0.5*0 = 0.25; two format errors -> -0.1
    assert r(outcome([GOLD[0]], OTHER, fmt=2), partial_trace=True)["reward"] == pytest.approx(0.15)
    # Penalties are capped at 0.5 each
    many = outcome(list(GOLD) + [GOLD[0]] * 30, DONE, fmt=30)
    res = r(many)
    assert res["length_penalty"] == 0.5 and res["format_penalty"] == 0.5 and res["reward"] == 0.0


def test_tau_schedule_and_ablations():
    cfg = RewardConfig(tau="linear")
    assert tau_at(cfg, 0.0) == pytest.approx(0.9) and tau_at(cfg, 1.0) == pytest.approx(0.1)
    assert tau_at(cfg, 0.5) == pytest.approx(0.5)
    half = outcome([GOLD[0]], DONE, gold=GOLD)  # state right by luck, trace 0
    assert composite_reward(half, cfg, progress=0.0)["reward"] == pytest.approx(0.1)
    assert composite_reward(half, cfg, progress=1.0)["reward"] == pytest.approx(0.9)
    assert r(half, disabled=["trace"])["reward"] == 1.0 and r(half, disabled=["state"])["reward"] == 0.0
    assert r(outcome(list(GOLD) * 2, DONE), disabled=["length_penalty"])["reward"] == 1.0


def test_claiming_success_in_text_earns_nothing():
    # A write task: nothing happened.
    assert r(outcome([], INIT))["reward"] == 0.0
    # A read-only task: the untouched state equals the expected one, but that is no evidence of work.
    read_gold = [GOLD[0]]
    assert r(outcome([], INIT, gold=read_gold, expected=INIT))["reward"] == 0.0
    assert r(outcome(read_gold, INIT, gold=read_gold, expected=INIT))["reward"] == 1.0


def test_repeating_a_call_does_not_pay():
    repeated_write = outcome(list(GOLD) + [GOLD[1]], OTHER)  # double order: state wrong, one extra call
    assert r(repeated_write)["reward"] < r(HONEST)["reward"]
    assert r(repeated_write)["reward"] <= 0.5
    spam = outcome([GOLD[0]] * 10, INIT)  # the same read again and again, never the write
    assert r(spam)["reward"] == 0.0


def test_calling_every_tool_does_not_pay():
    everything = [("shop", t, {}) for t in ("list_products", "get_cart", "clear_cart", "refund", "delete_account",
                                            "export", "audit", "login")] + list(GOLD)
    res = r(outcome(everything, OTHER))
    assert res["reward"] <= 0.1 and res["length_penalty"] == pytest.approx(0.4)


def test_weights_and_unknown_terms():
    half = outcome([GOLD[0]], DONE, gold=GOLD)  # trace 0, state 1
    assert r(half, weights={"state": 3.0})["reward"] == pytest.approx(0.75)  # (0.5*0 + 1.5*1) / 2
    with pytest.raises(ValueError, match="unknown reward terms"):
        RewardConfig(disabled=["stat"])


def test_a_term_registered_in_one_place_reaches_reward_logs_and_sweep_tags(monkeypatch):
    """Adding a term = one register_term call: the total, the RL log keys and the sweep tags follow."""
    from types import SimpleNamespace

    from envfactory.config import ExperimentConfig
    from envfactory.tracking import member_tags
    from envfactory.train import rewards
    from envfactory.train.rl import make_reward_fn

    monkeypatch.setattr(rewards, "REWARD_TERMS", dict(rewards.REWARD_TERMS))
    import envfactory.train.rl as rl

    monkeypatch.setattr(rl, "REWARD_TERMS", rewards.REWARD_TERMS)
    rewards.register_term("brevity", "penalty")(lambda o, cfg: 0.25)
    res = r(HONEST)
    assert res["brevity"] == 0.25 and res["reward"] == pytest.approx(0.75)
    assert r(HONEST, disabled=["brevity"])["reward"] == 1.0

    logged = {}
    env = SimpleNamespace(outcome=lambda fmt: HONEST)
    totals = make_reward_fn(RewardConfig())([[]], [env], log_metric=lambda k, v: logged.__setitem__(k, v))
    assert totals == [pytest.approx(0.75)] and logged["reward_brevity"] == 0.25

    cfg = ExperimentConfig.model_validate({"train": {"rl": {"reward": {"disabled": ["state"]}}},
                                           "sweep": {"name": "s", "variant": "v", "seed": 0}})
    assert member_tags(cfg)["envfactory.reward_terms"] == "trace+length_penalty+format_penalty+brevity"
