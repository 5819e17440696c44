"""The policy rules on what the aws and kubernetes platforms really register (captured under mocks).

The prod configs pass every rule; a broken variant (a config or a captured resource changed the way a
mistake would) fails the rule named for it.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from hastack.testing import CapturedResource, capture_resources
from policies import rules
from policies.rules import Resource, Settings

ZONES3 = ("us-east-1a", "us-east-1b", "us-east-1c")
AWS_PROD = {"platform": "aws", "environment": "prod", "zones": list(ZONES3)}
RDS_PROD = {**AWS_PROD, "postgres": {"mode": "rds"}}
K8S_PROD = {"platform": "kubernetes", "environment": "prod", "zones": ["az1", "az2", "az3"]}
PROD = Settings(environment="prod")
K8S = Settings(environment="prod", zones=("az1", "az2", "az3"))


def _resources(captured: list[CapturedResource]) -> list[Resource]:
    return [Resource(r.type, r.name, r.inputs, r.urn, r.id or None) for r in captured]


@pytest.fixture(scope="module")
def aws() -> list[Resource]:
    return _resources(capture_resources(AWS_PROD, "prod"))


@pytest.fixture(scope="module")
def rds() -> list[Resource]:
    return _resources(capture_resources(RDS_PROD, "prod"))


@pytest.fixture(scope="module")
def k8s() -> list[Resource]:
    return _resources(capture_resources(K8S_PROD, "k8s"))


def _failing(resources: list[Resource], settings: Settings) -> dict[str, list[str]]:
    return {name: [v.message for v in vs] for name, vs in rules.run_stack(resources, settings).items() if vs}


def _changed(resources: list[Resource], type_: str, change: Any, name_has: str = "") -> list[Resource]:
    """A copy of the stack where ``change(props)`` edits every resource of ``type_`` (whose name has ``name_has``)."""
    out = []
    for r in resources:
        if r.type == type_ and name_has in r.name:
            props = copy.deepcopy(dict(r.props))
            change(props)
            r = Resource(r.type, r.name, props, r.urn, r.id)
        out.append(r)
    return out


# --------------------------------------------------------------------------------------------------
# Prod configs pass


# What the platforms do not meet yet, each reported to their owner. Fixing one makes its test fail here:
# remove the entry then, so a prod config must pass every rule again.
OPEN_FINDINGS: dict[str, set[str]] = {
    "aws": set(),
    "rds": set(),
    "kubernetes": set(),
}


def test_aws_prod_passes_every_rule(aws: list[Resource]) -> None:
    assert set(_failing(aws, PROD)) == OPEN_FINDINGS["aws"], _failing(aws, PROD)


def test_aws_rds_prod_passes_every_rule(rds: list[Resource]) -> None:
    assert set(_failing(rds, PROD)) == OPEN_FINDINGS["rds"], _failing(rds, PROD)


def test_kubernetes_prod_passes_every_rule(k8s: list[Resource]) -> None:
    assert set(_failing(k8s, K8S)) == OPEN_FINDINGS["kubernetes"], _failing(k8s, K8S)


def test_the_captured_stacks_are_what_the_rules_read(aws: list[Resource], k8s: list[Resource]) -> None:
    # Guards against a pass for the wrong reason: the rules must find every tier on both platforms.
    for resources, settings in ((aws, PROD), (k8s, K8S)):
        tiers = sorted(n.tier for n in rules.tier_nodes(resources, settings))
        assert tiers.count("postgres") == 3 and tiers.count("consul") == 3 and tiers.count("proxy") == 2
    table, violations = rules.blast_radius_report(aws, PROD)
    assert violations == [] and [line.split()[0] for line in table.splitlines()[1:]] == list(ZONES3)


def test_the_rds_stack_has_no_consul_tier_and_survives_every_zone(rds: list[Resource]) -> None:
    assert [n for n in rules.tier_nodes(rds, PROD) if n.tier == "consul"] == []
    table, violations = rules.blast_radius_report(rds, PROD)
    assert violations == []
    assert [line.split()[3:] for line in table.splitlines()[1:]] == [["-", "n/a", "2", "yes"]] * 3


# --------------------------------------------------------------------------------------------------
# Broken variants fail the named rule


def test_aws_prod_in_two_zones_fails_postgres_zone_spread() -> None:
    two = _resources(capture_resources({**AWS_PROD, "zones": list(ZONES3[:2])}, "prod"))
    assert "need >= 3 in prod" in "\n".join(_failing(two, PROD)["postgres-zone-spread"])


def test_aws_rds_without_deletion_protection_in_prod_fails_rds_resilience() -> None:
    config = {**AWS_PROD, "postgres": {"mode": "rds", "rds": {"deletionProtection": False}}}
    failing = _failing(_resources(capture_resources(config, "prod")), PROD)
    assert "deletionProtection must be true in prod" in "\n".join(failing["rds-resilience"])


def test_aws_nlb_without_cross_zone_fails_nlb_zone_coverage(aws: list[Resource]) -> None:
    broken = _changed(aws, rules.LOAD_BALANCER, lambda p: p.update(enableCrossZoneLoadBalancing=False))
    assert "enableCrossZoneLoadBalancing must be true" in "\n".join(_failing(broken, PROD)["nlb-zone-coverage"])


def test_aws_security_group_open_to_the_world_fails_no_public_database_ingress(aws: list[Resource]) -> None:
    world = {"fromPort": 5432, "toPort": 5432, "protocol": "tcp", "cidrBlocks": ["0.0.0.0/0"]}
    broken = _changed(aws, rules.SECURITY_GROUP, lambda p: p.setdefault("ingress", []).append(world))
    assert _failing(broken, PROD)["no-public-database-ingress"]


def test_aws_unencrypted_data_volume_fails_encryption_at_rest(aws: list[Resource]) -> None:
    broken = _changed(aws, rules.EBS_VOLUME, lambda p: p.update(encrypted=False))
    assert _failing(broken, PROD)["encryption-at-rest"]


def test_aws_password_in_user_data_fails_no_plaintext_secrets(aws: list[Resource]) -> None:
    def leak(props: dict[str, Any]) -> None:
        props["userData"] = rules.decode_user_data(props.get("userData")) + "\nexport PGPASSWORD=hunter2\n"

    broken = _changed(aws, rules.LAUNCH_TEMPLATE, leak, name_has="postgres")
    assert _failing(broken, PROD)["no-plaintext-secrets"]


def test_aws_every_postgres_node_in_one_zone_fails_blast_radius(aws: list[Resource]) -> None:
    def move(props: dict[str, Any]) -> None:
        for key in ("tags", "tagsAll"):
            if isinstance(props.get(key), dict) and props[key].get("hastack.io/role") == "postgres":
                props[key]["hastack.io/zone"] = ZONES3[0]
        for spec in props.get("tagSpecifications") or []:
            if spec.get("tags", {}).get("hastack.io/role") == "postgres":
                spec["tags"]["hastack.io/zone"] = ZONES3[0]

    broken = _changed(_changed(aws, rules.EC2_INSTANCE, move), rules.LAUNCH_TEMPLATE, move)
    failing = _failing(broken, PROD)
    assert "losing zone us-east-1a: Postgres keeps no promotable synchronous copy" in failing["blast-radius"][0]
    assert failing["postgres-zone-spread"]


def test_kubernetes_schedule_anyway_fails_kubernetes_zone_spread(k8s: list[Resource]) -> None:
    def soften(props: dict[str, Any]) -> None:
        for c in props["spec"]["template"]["spec"].get("topologySpreadConstraints") or []:
            c["whenUnsatisfiable"] = "ScheduleAnyway"

    broken = _changed(k8s, "kubernetes:apps/v1:StatefulSet", soften)
    assert _failing(broken, K8S)["kubernetes-zone-spread"]


def test_kubernetes_without_pdbs_fails_kubernetes_pdb(k8s: list[Resource]) -> None:
    broken = [r for r in k8s if r.type not in rules.K8S_PDBS]
    assert len(_failing(broken, K8S)["kubernetes-pdb"]) >= 3


def test_kubernetes_password_in_a_configmap_fails_no_plaintext_secrets(k8s: list[Resource]) -> None:
    broken = _changed(k8s, rules.K8S_CONFIGMAP, lambda p: p.setdefault("data", {}).update(pgpass="password: x9"))
    assert _failing(broken, K8S)["no-plaintext-secrets"]
