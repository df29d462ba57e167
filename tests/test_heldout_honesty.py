"""Honest held-out numbers: requests and gold answers never name a tool, the train view always offers
distractors, whole domains can be held out, held-out names are checked, and environments that resemble a
held-out one stay out of training. Driven through the real stage functions and the CLI."""

from __future__ import annotations

import json
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from pydantic import ValidationError

from envfactory.catalog import CATALOG_DIR
from envfactory.config import ExperimentConfig
from envfactory.env.manifest import admitted_packages, build_manifest
from envfactory.env.package import EnvPackage
from envfactory.graph.stage import run_graph_stage
from envfactory.querygen import sampling, stages
from envfactory.querygen.execute import ExecutedChain, GoldCall
from envfactory.querygen.query import determines
from envfactory.querygen.rollouts import _final_message
from envfactory.querygen.sampling import read_chains
from envfactory.train.rows import MIN_DISTRACTORS, called_tools, row_rng, select_tools

ROOT = Path(__file__).resolve().parents[1]
QUIET = {"log": lambda *_: None}


def _words(name: str) -> list[str]:
    return [w.lower() for w in re.split(r"[^A-Za-z0-9]+", re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)) if w]


def tool_mentions(text: str, names) -> list[str]:
    """Tool names in `text`: the identifier or its words in order (`get_book`, `get book`, `Get-Book`)."""
    found = []
    for n in names:
        rx = r"(?<![A-Za-z0-9])" + r"[\s_\-./]*".join(map(re.escape, _words(n))) + r"(?![A-Za-z0-9])"
        if re.search(rx, text, re.IGNORECASE):
            found.append(n)
    return found


def _run_data(cfg: ExperimentConfig, root: Path, envgen_dir: Path | None = None) -> dict:
    manifest = root / "envs" / "manifest.json"
    m = build_manifest(cfg, manifest, envgen_dir, **QUIET)
    d = root / "data"
    run_graph_stage(cfg, manifest, root / "graph" / "graph.json")
    sampling.run_sample_stage(cfg, manifest, root / "graph" / "graph.json", d / "chains.parquet", **QUIET)
    stages.run_queries_stage(cfg, manifest, d / "chains.parquet", d / "queries.parquet", **QUIET)
    stages.run_rollouts_stage(cfg, manifest, d / "chains.parquet", d / "queries.parquet", d / "trajectories.parquet",
                              **QUIET)
    report = stages.run_datasets_stage(cfg, manifest, d / "chains.parquet", d / "queries.parquet",
                                       d / "trajectories.parquet", d, **QUIET)
    return {"cfg": cfg, "manifest": manifest, "m": m, "dir": d, "datasets": report}


# -- 1-3: every query, gold answer and train view of the default catalog ----------------------------------

@pytest.fixture(scope="module")
def default_data(tmp_path_factory):
    cfg = ExperimentConfig.model_validate({"experiment": "honest", "tracking": {"enabled": False},
                                           "data": {"compare_random_walk": False}})
    return _run_data(cfg, tmp_path_factory.mktemp("honest"))


@pytest.mark.slow
def test_no_request_names_a_tool_of_its_environments(default_data):
    d = default_data["dir"]
    specs = {n: p.spec for n, p in admitted_packages(default_data["manifest"]).items()}
    chains = {c.chain_id: c for c in read_chains(d / "chains.parquet")}
    queries = stages.read_queries(d / "queries.parquet")
    assert len(queries) >= 1000 and set(queries) == set(chains)
    offenders = []
    for cid, q in queries.items():
        chain = chains[cid]
        names = [t.name for e in chain.envs for t in specs[e].tools]  # every tool, called or not
        for field in ("refined", "explicit"):
            if hit := tool_mentions(getattr(q, field), names):
                offenders.append((field, hit, getattr(q, field)))
        assert q.refiner == "rule" and q.determined and determines(q.refined, chain)[0], (cid, q.refined)
    assert not offenders, f"{len(offenders)} requests name a tool, e.g. {offenders[:3]}"
    # all three ambiguity levels are exercised, and requests carry the environment's own nouns
    assert {q.ambiguity for q in queries.values()} == {0, 1, 2}


@pytest.mark.slow
def test_gold_answers_are_sentences_from_the_results_not_dumps(default_data):
    d = default_data["dir"]
    specs = {n: p.spec for n, p in admitted_packages(default_data["manifest"]).items()}
    chains = {c.chain_id: c for c in read_chains(d / "chains.parquet")}
    rows = pq.read_table(d / "sft.parquet").to_pylist()
    assert len(rows) >= 1000
    for row in rows:
        chain = chains[row["chain_id"]]
        final = row["messages"][-1]
        assert final["role"] == "assistant" and not final["tool_calls"]
        text = final["content"]
        names = [t.name for e in chain.envs for t in specs[e].tools]
        assert not text.startswith("Done:") and "Result:" not in text and '{"' not in text, text
        assert not tool_mentions(text, names), (tool_mentions(text, names), text)
        assert text == _final_message(chain, specs)  # deterministic
        out = chain.calls[-1].output
        if isinstance(out, dict):  # the key values of the last output are in the answer
            scalars = [v for v in out.values() if isinstance(v, (str, int, float)) and not isinstance(v, bool)]
            assert not scalars or any(str(v).split()[0] in text for v in scalars[:3]), text
        elif isinstance(out, list):
            assert (str(len(out)) in text) if out else ("nothing" in text), text


@pytest.mark.slow
def test_every_view_offers_at_least_two_distractors(default_data):
    from envfactory.train.rl import row_tools

    d = default_data["dir"]
    packages = admitted_packages(default_data["manifest"])
    for row in pq.read_table(d / "rl.parquet").to_pylist():
        every = {t.name for e in row["envs"] for t in packages[e].spec.tools}
        gold = {g["name"] for g in json.loads(row["gold_calls"])}
        tools, _ = row_tools(row, packages, 3, seed=0)
        offered = {t["function"]["name"] for t in tools}
        assert gold <= offered
        assert len(offered - gold) >= min(MIN_DISTRACTORS, len(every - gold)), (row["chain_id"], offered, gold)
    for row in pq.read_table(d / "sft.parquet").to_pylist():  # the SFT view: same rule
        tools = json.loads(row["tools"])
        gold = called_tools(row["messages"])
        chosen = {t["function"]["name"] for t in select_tools(tools, gold, 3, row_rng(0, row["traj_id"]))}
        assert len(chosen - gold) >= min(MIN_DISTRACTORS, len(tools) - len(gold))


def test_select_tools_exceeds_max_tools_for_the_minimum_distractors():
    tools = [{"type": "function", "function": {"name": n}} for n in "abcdefg"]

    def names(must, cap):
        return [t["function"]["name"] for t in select_tools(tools, set(must), cap, random.Random(0))]

    assert len(names("a", 1)) == 3 and len(names("a", 3)) == 3 and len(names("a", 5)) == 5
    assert len(names("abc", 3)) == 5 and {"a", "b", "c"} <= set(names("abc", 3))  # 2 distractors beyond max_tools
    assert names("abcdef", 2) == list("abcdefg")  # fewer than 2 others: all of them
    assert names("a", None) == list("abcdefg")
    assert names("ab", 3) == names("ab", 3)  # seeded


def test_gold_answer_reports_what_was_done_with_earlier_values():
    specs = {"hotel_reservations": EnvPackage(CATALOG_DIR / "hotel_reservations").spec}
    chain = ExecutedChain(
        chain_id="x", sampler="topology", target="hotel_reservations.create_reservation",
        scenarios={"hotel_reservations": "default"}, final_state_hash={}, state_diff={"hotel_reservations": [{}]},
        calls=[GoldCall(env="hotel_reservations", tool="find_guest", arguments={"email": "ana@example.com"},
                        output={"guest_id": "G-0007", "name": "Ana Silva"}, user_args=["email"]),
               GoldCall(env="hotel_reservations", tool="create_reservation",
                        arguments={"guest_id": "G-0007", "hotel_id": "HTL-002", "room_type": "double",
                                   "check_in": "2026-05-01", "nights": 2},
                        output={"reservation_id": "RSV-00042", "status": "confirmed", "total_price": 300.0},
                        user_args=["hotel_id", "room_type", "check_in", "nights"])])
    text = _final_message(chain, specs)
    assert text == _final_message(chain, specs)
    assert "RSV-00042" in text and "confirmed" in text and "300" in text and "G-0007" in text
    assert not tool_mentions(text, [t.name for t in specs["hotel_reservations"].tools])
    assert "{" not in text and "Done:" not in text


# -- 4: whole domains held out ----------------------------------------------------------------------------

SMALL = {"compare_random_walk": False, "attempts_per_tool": 10, "chains_per_tool": 2}


@pytest.mark.slow
def test_heldout_domain_splits_every_env_of_the_domain(tmp_path):
    cfg = ExperimentConfig.model_validate({
        "experiment": "dom", "tracking": {"enabled": False},
        "envs": {"catalog": ["clinic_appointments", "pharmacy_prescriptions", "hotel_reservations"]},
        "data": {**SMALL, "heldout_envs": ["pharmacy_prescriptions"], "heldout_domains": ["healthcare"]}})
    run = _run_data(cfg, tmp_path)
    m = run["m"]
    assert sorted(m.heldout) == ["clinic_appointments", "pharmacy_prescriptions"] and m.train_envs == 1
    rows = pq.read_table(run["dir"] / "rl.parquet").to_pylist()
    by_env = {}
    for r in rows:
        for e in r["envs"]:
            by_env.setdefault(e, set()).add(r["split"])
    assert by_env["clinic_appointments"] == {"heldout"} and by_env["pharmacy_prescriptions"] == {"heldout"}
    assert by_env["hotel_reservations"] == {"train"}
    assert set(run["datasets"]["heldout_envs"]) == {"clinic_appointments", "pharmacy_prescriptions"}


def test_env_count_keeps_every_env_of_a_heldout_domain(tmp_path):
    cfg = ExperimentConfig.model_validate({
        "experiment": "cnt", "tracking": {"enabled": False},
        "envs": {"catalog": ["clinic_appointments", "pharmacy_prescriptions", "hotel_reservations", "bookstore"],
                 "count": 1},
        "data": {"heldout_envs": [], "heldout_domains": ["healthcare"]}})
    m = build_manifest(cfg, tmp_path / "envs" / "manifest.json", **QUIET)
    names = {e.name for e in m.envs}
    assert {"clinic_appointments", "pharmacy_prescriptions"} <= names and len(names) == 3 and m.train_envs == 1
    assert len(m.held_back) == 1 and m.held_back[0] in {"hotel_reservations", "bookstore"}


# -- 5: held-out names are checked ------------------------------------------------------------------------

def _cli(*args, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "envfactory", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


def test_misspelled_heldout_names_are_config_errors(tmp_path):
    with pytest.raises(ValidationError, match="cinema_ticket.*cinema_tickets"):
        ExperimentConfig.model_validate({"data": {"heldout_envs": ["cinema_ticket"]}})
    with pytest.raises(ValidationError, match="health.*healthcare"):
        ExperimentConfig.model_validate({"data": {"heldout_domains": ["health"]}})
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"experiment": "typo", "tracking": {"enabled": False},
                                   "data": {"heldout_envs": ["pharmacy_prescription"]}}))
    proc = _cli("envs", "manifest", "--config", str(bad), "--out", str(tmp_path / "m.json"), cwd=tmp_path)
    assert proc.returncode != 0 and "pharmacy_prescription" in proc.stderr and "pharmacy_prescriptions" in proc.stderr
    assert not (tmp_path / "m.json").exists()


def _renamed_copy(src: str, dest: Path, name: str, domain: str | None = None) -> Path:
    shutil.copytree(CATALOG_DIR / src, dest, ignore=shutil.ignore_patterns("__pycache__", "report.json"))
    spec = json.loads((dest / "spec.json").read_text())
    spec["name"] = name
    spec["domain"] = domain or spec["domain"]
    (dest / "spec.json").write_text(json.dumps(spec, indent=2))
    return dest


def test_extra_dir_names_and_domains_may_be_held_out(tmp_path):
    pkg = _renamed_copy("hotel_reservations", tmp_path / "lodging_desk", "lodging_desk", "hospitality")
    cfg = ExperimentConfig.model_validate({"envs": {"extra_dirs": [str(pkg)]},
                                           "data": {"heldout_envs": ["lodging_desk"],
                                                    "heldout_domains": ["hospitality"]}})
    assert cfg.data.is_heldout("lodging_desk", "hospitality") and cfg.data.is_heldout("x", "hospitality")
    assert not cfg.data.is_heldout("hotel_reservations", "travel")


def test_envs_stage_fails_when_a_heldout_name_matches_no_admitted_env(tmp_path):
    """With an EnvGen provider an unknown name may be a synthesized one: the envs stage must then find it."""
    cfg_file = tmp_path / "synth.yaml"
    cfg_file.write_text(yaml.safe_dump({
        "experiment": "synth", "tracking": {"enabled": False}, "envs": {"catalog": ["hotel_reservations"]},
        "envgen": {"provider": {"name": "scripted", "model": "scripted"}},
        "data": {"heldout_envs": ["veterinary_clinic"]}}))
    proc = _cli("envs", "manifest", "--config", str(cfg_file), "--out", str(tmp_path / "envs" / "manifest.json"),
                cwd=tmp_path)
    assert proc.returncode != 0
    assert "veterinary_clinic" in proc.stderr and "matches no admitted environment" in proc.stderr
    assert "hotel_reservations" in proc.stderr  # the message lists what is known
    assert not (tmp_path / "envs" / "manifest.json").exists()


# -- 6: look-alikes of held-out environments --------------------------------------------------------------

def test_renamed_copy_of_a_heldout_env_is_kept_out_of_training(tmp_path):
    copy = _renamed_copy("hotel_reservations", tmp_path / "pkgs" / "lodging_desk", "lodging_desk", "hospitality")
    other = _renamed_copy("bookstore", tmp_path / "pkgs" / "book_corner", "book_corner")
    cfg = ExperimentConfig.model_validate({
        "experiment": "sim", "tracking": {"enabled": False},
        "envs": {"catalog": ["hotel_reservations", "car_rental"], "extra_dirs": [str(copy), str(other)]},
        "data": {"heldout_envs": ["hotel_reservations"]}})
    lines = []
    path = tmp_path / "envs" / "manifest.json"
    m = build_manifest(cfg, path, log=lines.append)
    names = {e.name for e in m.envs}
    assert "lodging_desk" not in names and "book_corner" in names and "car_rental" in names
    assert not (path.parent / "lodging_desk").exists()
    [ex] = m.excluded_similar
    assert (ex.name, ex.source, ex.resembles, ex.score) == ("lodging_desk", "extra", "hotel_reservations", 1.0)
    assert m.heldout == ["hotel_reservations"] and m.train_envs == 2
    assert json.loads(path.read_text())["excluded_similar"][0]["name"] == "lodging_desk"
    assert any("lodging_desk" in line and "hotel_reservations" in line for line in lines)


def test_similar_catalog_envs_are_reported_not_dropped(tmp_path):
    cfg = ExperimentConfig.model_validate({
        "experiment": "cat", "tracking": {"enabled": False},
        "envs": {"catalog": ["clinic_appointments", "pharmacy_prescriptions"]},
        "data": {"heldout_envs": ["pharmacy_prescriptions"], "heldout_domains": [], "heldout_similarity": 0.05}})
    m = build_manifest(cfg, tmp_path / "envs" / "manifest.json", **QUIET)
    assert {e.name for e in m.envs} == {"clinic_appointments", "pharmacy_prescriptions"}
    [w] = m.similar_catalog
    assert (w.name, w.resembles) == ("clinic_appointments", "pharmacy_prescriptions") and 0.05 <= w.score < 0.5
    assert not m.excluded_similar
    # holding out the domain keeps the sibling out of training
    cfg = ExperimentConfig.model_validate({
        "experiment": "cat", "tracking": {"enabled": False},
        "envs": {"catalog": ["clinic_appointments", "pharmacy_prescriptions"]},
        "data": {"heldout_envs": ["pharmacy_prescriptions"], "heldout_domains": ["healthcare"]}})
    m = build_manifest(cfg, tmp_path / "envs2" / "manifest.json", **QUIET)
    assert m.train_envs == 0 and sorted(m.heldout) == ["clinic_appointments", "pharmacy_prescriptions"]
