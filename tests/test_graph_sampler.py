"""Tool graph evidence, persistence, and the two samplers' contracts."""

from __future__ import annotations

import networkx as nx
import pytest

from envfactory.catalog import catalog_packages
from envfactory.env.package import EnvPackage
from envfactory.graph.build import build_graph, load_graph, producers, save_graph
from envfactory.graph.fields import output_fields, value_pools
from envfactory.graph.sampler import RandomWalkSampler, SamplerConfig, TopologySampler, ValueSource
from envfactory.graph.stage import unfillable_params
from envfactory.querygen.execute import ChainExecutor, ExecutedChain

PACKAGES = {EnvPackage(p).name: EnvPackage(p) for p in catalog_packages()}


@pytest.fixture(scope="module")
def hotel():
    pkg = PACKAGES["hotel_reservations"]
    g = build_graph([pkg.spec])
    values = {("hotel_reservations", s): ValueSource(value_pools(pkg.scenario(s))) for s in pkg.scenario_ids()}
    return pkg, g, values


def test_edges_carry_evidence(hotel):
    _, g, _ = hotel
    edge = g.edges["hotel_reservations.find_guest", "hotel_reservations.create_reservation"]
    binding = next(b for b in edge["bindings"] if b["param"] == "guest_id")
    assert binding["field"] == "guest_id" and binding["score"] == 1.0 and binding["path"] == ["guest_id"]
    assert "description names the producer" in binding["reason"]  # "Guest identifier from find_guest"
    # A list output supplies an input through its items.
    search = producers(g, "hotel_reservations.get_hotel", "hotel_id")
    assert any(a == "hotel_reservations.search_hotels" and ev["path"] == ["[]", "hotel_id"] for a, ev in search)
    # No self loops, enums are not wired from outputs.
    assert not any(a == b for a, b in g.edges)
    assert not producers(g, "hotel_reservations.check_availability", "room_type")


def test_output_fields_walk_arrays_and_objects():
    schema = {"type": "object", "properties": {"items": {"type": "array", "items": {
        "type": "object", "properties": {"sku": {"type": "string"}, "qty": {"type": "integer"}}}}}}
    paths = {tuple(f.path): f.type for f in output_fields(schema)}
    assert paths[("items", "[]", "sku")] == "string" and paths[("items",)] == "array"


def test_graph_round_trips_as_node_link_json(hotel, tmp_path):
    _, g, _ = hotel
    save_graph(g, tmp_path / "graph.json")
    text = (tmp_path / "graph.json").read_text()
    assert text.lstrip().startswith("{") and '"edges"' in text  # JSON, never pickle
    back = load_graph(tmp_path / "graph.json")
    assert nx.utils.graphs_equal(g, back)


def test_unfillable_params_are_reported():
    spec = PACKAGES["hotel_reservations"].spec.model_copy(deep=True)
    spec.tools[0].input_schema["properties"]["loyalty_tier_code"] = {"type": "string"}
    spec.tools[0].input_schema["required"].append("loyalty_tier_code")
    g = build_graph([spec])
    values = {("hotel_reservations", "x"):
              ValueSource(value_pools(PACKAGES["hotel_reservations"].scenario("spring_iberia")))}
    report = unfillable_params(g, values)
    assert {"tool": "hotel_reservations.search_hotels", "param": "loyalty_tier_code", "type": "string"} in report


def test_topology_chains_resolve_every_required_input(hotel):
    pkg, g, values = hotel
    sampler = TopologySampler(g, values, SamplerConfig(), seed=7)
    chains = [c for c in (sampler.sample("hotel_reservations.cancel_reservation", {}) for _ in range(30)) if c]
    assert chains
    for chain in chains:
        assert chain.steps[-1].tool == "cancel_reservation"
        for i, step in enumerate(chain.steps):
            required = pkg.spec.tool(step.tool).input_schema["required"]
            assert set(required) <= set(step.args)
            for src in step.args.values():
                assert src.kind == "user" or (src.step is not None and src.step < i)
    assert any(len(c.steps) > 1 for c in chains)


def test_samplers_are_deterministic_under_a_seed(hotel):
    _, g, values = hotel
    runs = [[TopologySampler(g, values, SamplerConfig(), seed=3).sample(n, {}) for n in sorted(g.nodes)]
            for _ in range(2)]
    assert [c.model_dump() if c else None for c in runs[0]] == [c.model_dump() if c else None for c in runs[1]]


def test_random_walk_baseline_binds_nothing(hotel):
    _, g, values = hotel
    walk = RandomWalkSampler(g, values, SamplerConfig(), seed=1)
    chain = walk.sample("hotel_reservations.find_guest", {}, length=4)
    assert all(src.kind == "user" for st in chain.steps for src in st.args.values())


def test_gold_execution_records_calls_hash_and_diff(hotel):
    pkg, g, values = hotel
    sampler = TopologySampler(g, values, SamplerConfig(), seed=11)
    executor = ChainExecutor({"hotel_reservations": pkg})
    try:
        done = []
        for _ in range(40):
            chain = sampler.sample("hotel_reservations.create_reservation", {})
            result = executor.run(chain) if chain else None
            if isinstance(result, ExecutedChain):
                done.append(result)
        assert done, "no create_reservation chain executed"
        r = done[0]
        assert r.calls[-1].tool == "create_reservation" and r.calls[-1].output["status"] == "confirmed"
        assert any(ch["path"][0] == "reservations" and ch["op"] == "added" for ch in r.state_diff["hotel_reservations"])
        assert len(r.final_state_hash["hotel_reservations"]) == 64
    finally:
        executor.close()


def test_multi_environment_chains_execute_across_envs():
    from envfactory.querygen.rollouts import offered_tools

    pk = {n: PACKAGES[n] for n in ("hotel_reservations", "car_rental")}
    g = build_graph([p.spec for p in pk.values()], cross_env=True)
    assert any(d["cross_env"] for *_, d in g.edges(data=True))
    values = {(n, s): ValueSource(value_pools(p.scenario(s))) for n, p in pk.items() for s in p.scenario_ids()}
    sampler = TopologySampler(g, values, SamplerConfig(max_envs=2, p_chain=0.95), seed=3)
    executor = ChainExecutor(pk)
    multi = []
    try:
        for target in sorted(g.nodes):
            for _ in range(20):
                chain = sampler.sample(target, {})
                result = executor.run(chain) if chain else None
                if isinstance(result, ExecutedChain) and len(result.envs) == 2:
                    multi.append(result)
    finally:
        executor.close()
    assert multi
    assert all(set(r.final_state_hash) == {"hotel_reservations", "car_rental"} for r in multi)
    # Tool names that collide across environments are offered with an env prefix.
    tools, routes = offered_tools({"bookstore": PACKAGES["bookstore"].spec, "car_rental": PACKAGES["car_rental"].spec},
                                  ["bookstore", "car_rental"])
    assert routes["bookstore__find_customer"] == ("bookstore", "find_customer")
    assert routes["car_rental__find_customer"] == ("car_rental", "find_customer")
    assert "find_customer" not in routes and len(tools) == len(routes)
