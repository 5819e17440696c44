"""Placement, quorum and blast radius."""

import pytest

from hastack.spec import load_spec
from hastack.topology import format_blast_radius, plan, quorum, spread, zone_losses


def test_one_node_of_each_tier_per_zone_named_by_role_and_zone():
    p = plan(load_spec({}))
    assert [h.name for h in p.consul_servers] == ["consul-az1", "consul-az2", "consul-az3"]
    assert [h.name for h in p.postgres] == ["postgres-az1", "postgres-az2", "postgres-az3"]
    assert [h.name for h in p.proxies] == ["proxy-az1", "proxy-az2"]
    assert p.monitoring is not None and p.monitoring.zone == "az1"


def test_every_host_has_its_own_loopback_address_in_its_zone_subnet():
    p = plan(load_spec({}))
    addresses = [h.local_address for h in p.hosts]
    assert len(set(addresses)) == len(addresses)
    for h in p.hosts:
        assert h.local_address.startswith(f"127.0.{11 + h.zone_index}.")


def test_address_base_moves_every_host():
    p = plan(load_spec({"local": {"addressBase": 40}}))
    assert {h.local_address.split(".")[2] for h in p.hosts} == {"41", "42", "43"}


def test_adding_a_zone_never_renames_existing_hosts():
    three = {h.name for h in plan(load_spec({})).hosts}
    four = {h.name for h in plan(load_spec({"zones": ["az1", "az2", "az3", "az4"]})).hosts}
    assert three <= four


def test_extra_nodes_wrap_round_robin_with_an_ordinal():
    assert spread(4, ["a", "b", "c"]) == [("a", 0, 1), ("b", 1, 1), ("c", 2, 1), ("a", 0, 2)]
    p = plan(load_spec({"zones": ["a", "b"], "proxy": {"count": 3}}))
    assert [h.name for h in p.proxies] == ["proxy-a", "proxy-b", "proxy-a-2"]


@pytest.mark.parametrize(("servers", "majority"), [(3, 2), (5, 3), (7, 4)])
def test_quorum_is_a_majority(servers, majority):
    assert quorum(servers) == majority


def test_three_zones_survive_the_loss_of_any_zone():
    p = plan(load_spec({}))
    assert all(z.survives for z in p.blast_radius)


def test_two_zones_lose_consul_quorum_with_the_zone_holding_two_servers():
    p = plan(load_spec({"zones": ["a", "b"]}))
    by_zone = {z.zone: z for z in p.blast_radius}
    assert not by_zone["a"].consul_quorum  # servers a, b, a: losing a leaves one of three
    assert by_zone["b"].consul_quorum


def test_all_postgres_in_one_zone_is_not_promotable_after_that_zone():
    losses = zone_losses(["a", "b", "c"], ["a", "a", "a"], ["a", "b", "c"], ["a", "b"])
    assert not next(z for z in losses if z.zone == "a").postgres_promotable


def test_strict_sync_needs_two_survivors():
    losses = zone_losses(["a", "b"], ["a", "b"], ["a", "b", "a"], ["a", "b"], strict_sync=True)
    assert not any(z.postgres_promotable for z in losses)


def test_blast_radius_table_has_a_row_per_zone():
    table = format_blast_radius(plan(load_spec({})).blast_radius)
    lines = table.splitlines()
    assert lines[0].split()[:2] == ["zone", "lost"]
    assert [line.split()[0] for line in lines[1:]] == ["az1", "az2", "az3"]


def test_rds_mode_plans_no_consul_servers_and_still_survives_every_zone():
    spec = load_spec({"platform": "aws", "zones": ["a", "b", "c"], "postgres": {"mode": "rds"}})
    assert spec.consul_servers == 0  # nothing uses Consul when RDS replaces Patroni
    p = plan(spec)
    assert p.consul_servers == () and p.consul_clients == ()
    assert [h.role for h in p.hosts] == ["monitoring"]
    assert all(z.survives and not z.consul_needed for z in p.blast_radius)
    rows = format_blast_radius(p.blast_radius).splitlines()[1:]
    assert [r.split()[3:5] for r in rows] == [["-", "n/a"]] * 3


def test_patroni_without_consul_servers_is_never_taken_for_managed_postgres():
    losses = zone_losses(["a", "b"], ["a", "b"], [], ["a", "b"])
    assert not any(z.consul_quorum for z in losses)
    managed = zone_losses(["a", "b"], ["a", "b"], None, ["a", "b"])
    assert all(z.consul_quorum and z.survives for z in managed)
