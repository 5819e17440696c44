"""Contract of every policy rule, on resources built by hand: one that passes and ones that fail."""

from __future__ import annotations

import base64
import gzip
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from policies import rules  # noqa: E402
from policies.rules import Resource, Settings  # noqa: E402

DEV = Settings()
PROD = Settings(environment="prod")
ZONES = ("az1", "az2", "az3")


def lbl(role: str, zone: str, host: str | None = None) -> dict[str, str]:
    return {
        "hastack.io/role": role,
        "hastack.io/zone": zone,
        "hastack.io/host": host or f"{role}-{zone}",
        "hastack.io/stack": "t",
    }


def proc(role: str, zone: str, program: str, host: str | None = None) -> Resource:
    name = f"{host or f'{role}-{zone}'}-{program}"
    return Resource(rules.DYNAMIC, name, {"kind": "process", "program": program, "labels": lbl(role, zone, host)})


def local_stack(
    pg: tuple[str, ...] = ZONES, consul: tuple[str, ...] = ZONES, proxy: tuple[str, ...] = ("az1", "az2")
) -> list[Resource]:
    """The local platform's shape: every Postgres and proxy host also runs a Consul client agent."""
    out = []
    for i, z in enumerate(consul):
        out.append(proc("consul", z, "consul", f"consul-{i}"))
    for i, z in enumerate(pg):
        out += [proc("postgres", z, "patroni", f"pg-{i}"), proc("postgres", z, "consul", f"pg-{i}")]
    for i, z in enumerate(proxy):
        out += [proc("proxy", z, "haproxy", f"proxy-{i}"), proc("proxy", z, "consul", f"proxy-{i}")]
    return out


def instance(role: str, zone: str, host: str | None = None, **props: Any) -> Resource:
    tags = lbl(role, zone, host)
    base = {"tags": tags, "rootBlockDevice": {"encrypted": True, "volumeSize": 20}}
    return Resource(
        rules.EC2_INSTANCE, tags["hastack.io/host"], {**base, **props}, urn=f"urn:{tags['hastack.io/host']}"
    )


def aws_stack(pg: tuple[str, ...] = ZONES) -> list[Resource]:
    out = [instance("consul", z) for z in ZONES]
    out += [instance("postgres", z, f"postgres-{i}") for i, z in enumerate(pg)]
    out += [instance("proxy", z) for z in ("az1", "az2")]
    return out


def names(violations: list[rules.Violation]) -> str:
    return "\n".join(v.message for v in violations)


# --------------------------------------------------------------------------------------------------
# Labels and nodes


def test_labels_are_read_from_tags_kubernetes_labels_and_local_inputs() -> None:
    assert rules.labels({"tags": {"hastack.io/role": "postgres"}})["hastack.io/role"] == "postgres"
    assert rules.labels({"metadata": {"labels": {"hastack.io/role": "consul"}}})["hastack.io/role"] == "consul"
    assert rules.labels({"labels": {"hastack.io/zone": "az2"}})["hastack.io/zone"] == "az2"
    asg_tags = [{"key": "hastack.io/role", "value": "proxy", "propagateAtLaunch": True}]
    assert rules.labels({"tags": asg_tags})["hastack.io/role"] == "proxy"
    spec = [{"resourceType": "instance", "tags": {"hastack.io/zone": "az3"}}]
    assert rules.labels({"tagSpecifications": spec})["hastack.io/zone"] == "az3"


def test_a_consul_client_beside_patroni_is_not_a_postgres_or_consul_server_node() -> None:
    nodes = rules.tier_nodes(local_stack())
    tiers = sorted((n.tier, n.host) for n in nodes)
    assert ("postgres", "pg-0") in tiers
    assert sum(1 for t, _ in tiers if t == "consul") == 3
    assert sum(1 for t, _ in tiers if t == "postgres") == 3
    assert sum(1 for t, _ in tiers if t == "proxy") == 2


def test_an_instance_and_its_launch_template_with_one_host_label_count_once() -> None:
    lt = Resource(rules.LAUNCH_TEMPLATE, "lt", {"tags": lbl("postgres", "az1", "postgres-0")})
    nodes = rules.tier_nodes([instance("postgres", "az1", "postgres-0"), lt])
    assert len([n for n in nodes if n.tier == "postgres"]) == 1


# --------------------------------------------------------------------------------------------------
# Redundancy


def test_postgres_in_three_zones_passes_in_prod() -> None:
    assert rules.postgres_zone_spread(local_stack(), PROD) == []
    assert rules.postgres_zone_spread(aws_stack(), PROD) == []


def test_postgres_in_one_zone_fails_and_names_the_nodes() -> None:
    violations = rules.postgres_zone_spread(local_stack(pg=("az1", "az1", "az1")), DEV)
    assert len(violations) == 1
    assert "span 1 zone(s), need >= 2" in violations[0].message
    assert "losing zone az1 leaves no promotable replica" in violations[0].message
    assert "pg-0@az1" in violations[0].message and "pg-2@az1" in violations[0].message


def test_postgres_in_two_zones_passes_in_dev_but_not_in_prod() -> None:
    stack = aws_stack(pg=("az1", "az2"))
    assert rules.postgres_zone_spread(stack, DEV) == []
    assert "need >= 3 in prod" in names(rules.postgres_zone_spread(stack, PROD))


def test_consul_three_servers_in_three_zones_passes() -> None:
    assert rules.consul_quorum(local_stack(), DEV) == []


def test_consul_even_server_count_fails() -> None:
    stack = local_stack(consul=("az1", "az2", "az3", "az1"))
    assert "odd count >= 3, got 4" in names(rules.consul_quorum(stack, DEV))


def test_consul_majority_in_one_zone_loses_quorum_with_that_zone() -> None:
    violations = rules.consul_quorum(local_stack(consul=("az1", "az1", "az2")), DEV)
    assert names(violations) == (
        "losing zone az1 leaves 1 of 3 Consul servers, quorum needs 2: consul-0@az1, consul-1@az1 are in az1"
    )


def test_patroni_without_any_consul_server_fails() -> None:
    assert "no Consul server" in names(rules.consul_quorum(local_stack(consul=()), DEV))


def test_proxy_tier_needs_two_members_in_two_zones() -> None:
    assert rules.proxy_tier_spread(local_stack(), DEV) == []
    assert "2 member(s) in 1 zone(s)" in names(rules.proxy_tier_spread(local_stack(proxy=("az1", "az1")), DEV))
    assert "1 member(s) in 1 zone(s)" in names(rules.proxy_tier_spread(local_stack(proxy=("az1",)), DEV))
    assert "no member" in names(rules.proxy_tier_spread(local_stack(proxy=()), DEV))


def subnet(zone: str, tag: bool = True) -> Resource:
    props: dict[str, Any] = {"availabilityZone": f"real-{zone}" if tag else zone, "vpcId": "vpc-1"}
    if tag:
        props["tags"] = {"hastack.io/zone": zone}
    return Resource(rules.SUBNET, f"private-{zone}", props, urn=f"urn:subnet:{zone}", id=f"subnet-{zone}")


def nlb(subnets: list[str], cross_zone: Any = True, deps: tuple[str, ...] = ()) -> Resource:
    props = {"loadBalancerType": "network", "internal": True, "subnets": subnets}
    if cross_zone is not None:
        props["enableCrossZoneLoadBalancing"] = cross_zone
    return Resource(rules.LOAD_BALANCER, "nlb", props, urn="urn:nlb", deps={"subnets": deps} if deps else {})


def test_nlb_with_cross_zone_and_a_subnet_per_database_zone_passes() -> None:
    stack = [*aws_stack(), *(subnet(z) for z in ZONES), nlb([f"subnet-{z}" for z in ZONES])]
    assert rules.nlb_zone_coverage(stack, DEV) == []


def test_nlb_subnets_are_found_by_dependency_when_ids_are_unknown_during_preview() -> None:
    deps = tuple(f"urn:subnet:{z}" for z in ZONES)
    stack = [*aws_stack(), *(subnet(z, tag=False) for z in ZONES), nlb([rules.UNKNOWN] * 3, deps=deps)]
    assert rules.nlb_zone_coverage(stack, DEV) == []


def test_nlb_without_cross_zone_fails() -> None:
    stack = [*aws_stack(), *(subnet(z) for z in ZONES), nlb([f"subnet-{z}" for z in ZONES], cross_zone=None)]
    violations = rules.nlb_zone_coverage(stack, DEV)
    assert "enableCrossZoneLoadBalancing must be true, got None" in names(violations)
    assert violations[0].urn == "urn:nlb"


def test_nlb_missing_a_database_zone_fails() -> None:
    stack = [*aws_stack(), *(subnet(z) for z in ZONES), nlb(["subnet-az1", "subnet-az2"])]
    assert "missing database zone(s) ['az3']" in names(rules.nlb_zone_coverage(stack, DEV))


def rds(**props: Any) -> dict[str, Any]:
    base = {
        "engine": "postgres",
        "multiAz": True,
        "backupRetentionPeriod": 7,
        "deletionProtection": True,
        "storageEncrypted": True,
    }
    return {**base, **props}


def test_rds_multi_az_with_retention_and_protection_passes_in_prod() -> None:
    assert rules.rds_resilience(rules.RDS_INSTANCE, rds(), PROD) == []


@pytest.mark.parametrize(
    ("props", "settings", "expected"),
    [
        ({"multiAz": False}, DEV, "multiAz must be true, got False"),
        ({"backupRetentionPeriod": 1}, DEV, "backupRetentionPeriod must be >= 7 days, got 1"),
        ({"deletionProtection": False}, PROD, "deletionProtection must be true in prod, got False"),
    ],
)
def test_rds_resilience_failures(props: dict[str, Any], settings: Settings, expected: str) -> None:
    assert expected in rules.rds_resilience(rules.RDS_INSTANCE, rds(**props), settings)


def test_rds_deletion_protection_is_not_required_outside_prod() -> None:
    assert rules.rds_resilience(rules.RDS_INSTANCE, rds(deletionProtection=False), DEV) == []


def test_rds_read_replica_needs_no_multi_az_or_retention_of_its_own() -> None:
    replica = {"replicateSourceDb": "primary-id", "storageEncrypted": True}
    assert rules.rds_resilience(rules.RDS_INSTANCE, replica, DEV) == []


def workload(kind: str = "StatefulSet", role: str = "postgres", spread: Any = "DoNotSchedule", **spec: Any) -> dict:
    pod_labels = {"app.kubernetes.io/name": f"hastack-{role}", "hastack.io/role": role}
    constraints = (
        [
            {
                "maxSkew": 1,
                "topologyKey": rules.ZONE_TOPOLOGY_KEY,
                "whenUnsatisfiable": spread,
                "labelSelector": {"matchLabels": {"app.kubernetes.io/name": f"hastack-{role}"}},
            }
        ]
        if spread
        else []
    )
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {"name": f"hastack-{role}", "namespace": "hastack", "labels": {"hastack.io/role": role}},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app.kubernetes.io/name": f"hastack-{role}"}},
            "template": {
                "metadata": {"labels": pod_labels},
                "spec": {"topologySpreadConstraints": constraints, "containers": []},
            },
            **spec,
        },
    }


STS = "kubernetes:apps/v1:StatefulSet"
PDB = "kubernetes:policy/v1:PodDisruptionBudget"


def test_kubernetes_zone_spread_with_do_not_schedule_passes() -> None:
    assert rules.kubernetes_zone_spread(STS, workload(), DEV) == []


def test_kubernetes_zone_spread_schedule_anyway_or_missing_fails() -> None:
    soft = rules.kubernetes_zone_spread(STS, workload(spread="ScheduleAnyway"), DEV)
    assert soft == ["zone topologySpreadConstraint must use whenUnsatisfiable DoNotSchedule, got ['ScheduleAnyway']"]
    assert "no topologySpreadConstraint" in rules.kubernetes_zone_spread(STS, workload(spread=None), DEV)[0]


def test_kubernetes_zone_spread_selector_must_select_the_pods() -> None:
    w = workload()
    w["spec"]["template"]["spec"]["topologySpreadConstraints"][0]["labelSelector"] = {"matchLabels": {"a": "b"}}
    assert "does not select" in rules.kubernetes_zone_spread(STS, w, DEV)[0]
    # Nor does the blast radius count such a workload as spread: its replicas may share one zone.
    assert {n.zone for n in rules.tier_nodes([Resource(STS, "pg", w)], Settings(zones=ZONES))} == {"(unspread)"}


def test_kubernetes_replicas_are_placed_min_of_replicas_and_zones_wide() -> None:
    two = Resource("kubernetes:apps/v1:Deployment", "proxy", workload("Deployment", "proxy", replicas=2))
    assert sorted(n.zone for n in rules.tier_nodes([two], Settings(zones=ZONES))) == sorted(ZONES[:2])
    five = Resource(STS, "pg", workload(replicas=5))
    zones = [n.zone for n in rules.tier_nodes([five], Settings(zones=ZONES))]
    assert sorted(set(zones)) == sorted(ZONES) and max(zones.count(z) for z in ZONES) == 2


def test_kubernetes_rules_ignore_workloads_that_are_not_hastacks() -> None:
    w = workload(spread=None)
    del w["metadata"]["labels"]
    del w["spec"]["template"]["metadata"]["labels"]["hastack.io/role"]
    assert rules.kubernetes_zone_spread(STS, w, DEV) == []
    assert rules.kubernetes_pdb([Resource(STS, "other", w)], DEV) == []


def pdb(selector: dict[str, str], namespace: str = "hastack") -> Resource:
    props = {"metadata": {"namespace": namespace}, "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector}}}
    return Resource(PDB, "pdb", props)


def test_every_workload_needs_a_pdb_selecting_its_pods() -> None:
    sts = Resource(STS, "hastack-postgres", workload(), urn="urn:sts")
    dep = Resource("kubernetes:apps/v1:Deployment", "hastack-proxy", workload("Deployment", "proxy"), urn="urn:dep")
    pg_pdb = pdb({"app.kubernetes.io/name": "hastack-postgres"})
    assert rules.kubernetes_pdb([sts, pg_pdb], DEV) == []
    violations = rules.kubernetes_pdb([sts, dep, pg_pdb], DEV)
    assert [v.urn for v in violations] == ["urn:dep"]
    assert rules.kubernetes_pdb([sts, pdb({"app.kubernetes.io/name": "hastack-postgres"}, "other")], DEV)


def test_a_pdb_with_an_empty_selector_selects_nothing() -> None:
    sts = Resource(STS, "hastack-postgres", workload())
    assert rules.kubernetes_pdb([sts, pdb({})], DEV)


def test_kubernetes_replicas_spread_over_configured_zones_count_in_the_blast_radius() -> None:
    k8s = [
        Resource(STS, "consul", workload(role="consul")),
        Resource(STS, "pg", workload(role="postgres")),
        Resource("kubernetes:apps/v1:Deployment", "proxy", workload("Deployment", "proxy")),
    ]
    losses = rules.blast_radius(k8s, Settings(zones=ZONES))
    assert [z.zone for z in losses] == list(ZONES)
    assert all(z.survives for z in losses)
    unspread = [Resource(STS, "pg", workload(role="postgres", spread=None)), *k8s[:1], *k8s[2:]]
    assert "(unspread)" in {n.zone for n in rules.tier_nodes(unspread, Settings(zones=ZONES))}
    assert rules.postgres_zone_spread(unspread, Settings(zones=ZONES))


# --------------------------------------------------------------------------------------------------
# Safety


def test_encryption_at_rest_passes_when_everything_is_encrypted() -> None:
    bucket = Resource("aws:s3/bucket:Bucket", "backups", {"bucket": "hastack-backups"}, urn="urn:bucket")
    sse = Resource(rules.S3_SSE[0], "backups-sse", {"bucket": rules.UNKNOWN}, deps={"bucket": ("urn:bucket",)})
    stack = [
        Resource(rules.EBS_VOLUME, "data", {"encrypted": True, "size": 100}),
        Resource(rules.RDS_INSTANCE, "db", rds()),
        instance("postgres", "az1"),
        Resource(rules.LAUNCH_TEMPLATE, "lt", {"blockDeviceMappings": [{"ebs": {"encrypted": "true"}}]}),
        bucket,
        sse,
    ]
    assert rules.encryption_at_rest(stack, DEV) == []


@pytest.mark.parametrize(
    ("resource", "expected"),
    [
        (Resource(rules.EBS_VOLUME, "data", {"size": 100}), "data (aws:ebs/volume:Volume): encrypted must be true"),
        (Resource(rules.RDS_INSTANCE, "db", rds(storageEncrypted=False)), "storageEncrypted must be true"),
        (instance("postgres", "az1", rootBlockDevice={"encrypted": False}), "rootBlockDevice.encrypted must be true"),
        (
            instance("postgres", "az1", ebsBlockDevices=[{"deviceName": "/dev/xvdf"}]),
            "ebsBlockDevices[0].encrypted must be true, got None",
        ),
        (
            Resource(rules.LAUNCH_TEMPLATE, "lt", {"blockDeviceMappings": [{"ebs": {"volumeSize": 8}}]}),
            "blockDeviceMappings[0].ebs.encrypted must be true",
        ),
        (Resource("aws:s3/bucket:Bucket", "backups", {}), "no server-side encryption configuration"),
    ],
)
def test_encryption_at_rest_failures(resource: Resource, expected: str) -> None:
    assert expected in names(rules.encryption_at_rest([resource], DEV))


def test_an_encryption_flag_unknown_during_preview_is_not_a_violation() -> None:
    assert rules.encryption_at_rest([Resource(rules.EBS_VOLUME, "data", {"encrypted": rules.UNKNOWN})], DEV) == []


def sg(ingress: list[dict[str, Any]]) -> dict[str, Any]:
    return {"vpcId": "vpc-1", "ingress": ingress}


def test_ingress_from_the_vpc_on_database_ports_passes() -> None:
    rule = {"fromPort": 5432, "toPort": 5432, "protocol": "tcp", "cidrBlocks": ["10.40.0.0/16"]}
    web = {"fromPort": 443, "toPort": 443, "protocol": "tcp", "cidrBlocks": ["0.0.0.0/0"]}
    assert rules.no_public_database_ingress(rules.SECURITY_GROUP, sg([rule, web]), DEV) == []


@pytest.mark.parametrize(
    ("type_", "props", "port"),
    [
        (
            rules.SECURITY_GROUP,
            sg([{"fromPort": 5432, "toPort": 5432, "protocol": "tcp", "cidrBlocks": ["0.0.0.0/0"]}]),
            5432,
        ),
        (
            rules.SECURITY_GROUP,
            sg([{"fromPort": 8000, "toPort": 8100, "protocol": "tcp", "ipv6CidrBlocks": ["::/0"]}]),
            8008,
        ),
        (rules.SECURITY_GROUP, sg([{"fromPort": 0, "toPort": 0, "protocol": "-1", "cidrBlocks": ["0.0.0.0/0"]}]), 8500),
        (rules.SG_INGRESS_RULE, {"cidrIpv4": "0.0.0.0/0", "fromPort": 8300, "toPort": 8302, "ipProtocol": "tcp"}, 8301),
        (
            rules.SG_RULE,
            {"type": "ingress", "cidrBlocks": ["0.0.0.0/0"], "fromPort": 8600, "toPort": 8600, "protocol": "udp"},
            8600,
        ),
    ],
)
def test_world_ingress_on_a_database_port_fails(type_: str, props: dict[str, Any], port: int) -> None:
    messages = rules.no_public_database_ingress(type_, props, DEV)
    assert len(messages) == 1 and str(port) in messages[0]


def test_egress_rules_and_other_ports_are_not_ingress_violations() -> None:
    egress = {"type": "egress", "cidrBlocks": ["0.0.0.0/0"], "fromPort": 0, "toPort": 0, "protocol": "-1"}
    assert rules.no_public_database_ingress(rules.SG_RULE, egress, DEV) == []
    custom = Settings(ports=(6432,))
    pgbouncer = {"cidrIpv4": "0.0.0.0/0", "fromPort": 6432, "toPort": 6432, "ipProtocol": "tcp"}
    assert rules.no_public_database_ingress(rules.SG_INGRESS_RULE, pgbouncer, DEV) == []
    assert rules.no_public_database_ingress(rules.SG_INGRESS_RULE, pgbouncer, custom)


def access_block(**flags: Any) -> Resource:
    props = {"bucket": "hastack-backups", "blockPublicAcls": True, "blockPublicPolicy": True}
    props |= {"ignorePublicAcls": True, "restrictPublicBuckets": True, **flags}
    return Resource(rules.S3_PUBLIC_ACCESS_BLOCK, "backups-block", props)


def test_backup_bucket_with_a_full_public_access_block_passes() -> None:
    bucket = Resource("aws:s3/bucket:Bucket", "backups", {"bucket": "hastack-backups"})
    assert rules.backup_bucket_private([bucket, access_block()], DEV) == []


def test_backup_bucket_without_a_block_or_with_a_partial_one_fails() -> None:
    bucket = Resource("aws:s3/bucket:Bucket", "backups", {"bucket": "hastack-backups"}, urn="urn:bucket")
    assert [v.urn for v in rules.backup_bucket_private([bucket], DEV)] == ["urn:bucket"]
    partial = rules.backup_bucket_private([bucket, access_block(restrictPublicBuckets=False)], DEV)
    assert "must set ['restrictPublicBuckets'] to true" in names(partial)


PATRONI_WITH_PASSWORD = """
scope: hastack
postgresql:
  parameters:
    password_encryption: scram-sha-256
  authentication:
    superuser:
      username: postgres
      password: 'Zq8-generated-secret'
"""
PATRONI_FROM_ENV = """
postgresql:
  parameters:
    password_encryption: scram-sha-256
  authentication:
    superuser:
      username: postgres
      password: ${PATRONI_SUPERUSER_PASSWORD}
"""


def test_secret_detection_ignores_settings_that_only_mention_a_secret_word() -> None:
    assert rules.find_plaintext_secrets(PATRONI_FROM_ENV) == []
    assert rules.find_plaintext_secrets("encrypt_verify_incoming = true\nenable_token_persistence = true\n") == []
    assert rules.find_plaintext_secrets('password: \'{{ lookup("env", "PW") }}\'') == []
    boot = """printf 'encrypt = "%s"\\n' "$(ssm /hastack/prod/consul-gossip-key)" > consul-encrypt.hcl"""
    assert rules.find_plaintext_secrets(boot) == []


def test_secret_detection_finds_assignments_keys_and_uri_credentials() -> None:
    assert rules.find_plaintext_secrets(PATRONI_WITH_PASSWORD) == ["password"]
    assert rules.find_plaintext_secrets('encrypt = "pUqJrVyVRj5jsiYEkM/tFQ=="') == ["encrypt"]
    assert rules.find_plaintext_secrets("export PGPASSWORD=hunter2") == ["PGPASSWORD"]
    assert rules.find_plaintext_secrets('{"api_key": "abc123"}') == ["api_key"]
    assert rules.find_plaintext_secrets("dsn: postgres://app:hunter2@db:5432/app") == ["credentials in a URI"]


def test_user_data_with_a_password_fails_plain_or_base64_or_gzipped() -> None:
    plain_ud = "#cloud-config\nwrite_files:\n- content: |\n" + PATRONI_WITH_PASSWORD
    b64 = base64.b64encode(plain_ud.encode()).decode()
    gz = base64.b64encode(gzip.compress(plain_ud.encode())).decode()
    assert rules.no_plaintext_secrets(rules.EC2_INSTANCE, {"userData": plain_ud}, DEV)
    assert rules.no_plaintext_secrets(rules.LAUNCH_TEMPLATE, {"userData": b64}, DEV)
    assert rules.no_plaintext_secrets(rules.EC2_INSTANCE, {"userDataBase64": gz}, DEV)
    clean = base64.b64encode(("#cloud-config\n" + PATRONI_FROM_ENV).encode()).decode()
    assert rules.no_plaintext_secrets(rules.LAUNCH_TEMPLATE, {"userData": clean}, DEV) == []


def test_configmaps_must_not_carry_passwords() -> None:
    assert rules.no_plaintext_secrets(rules.K8S_CONFIGMAP, {"data": {"patroni.yml": PATRONI_FROM_ENV}}, DEV) == []
    bad = rules.no_plaintext_secrets(rules.K8S_CONFIGMAP, {"data": {"patroni.yml": PATRONI_WITH_PASSWORD}}, DEV)
    assert bad == ["data[patroni.yml] holds plain-text secret(s) for ['password']; use a Secret"]
    assert rules.no_plaintext_secrets(rules.K8S_CONFIGMAP, {"data": {"REPLICATION_PASSWORD": "x"}}, DEV)


def local_file(mode: Any, secret: bool, content: str | None = None) -> dict[str, Any]:
    props = {"kind": "file", "path": "/var/lib/hastack/t/pg-0/conf/patroni.yml", "mode": mode, "secret": secret}
    props["labels"] = lbl("postgres", "az1")
    if content is not None:
        props["content"] = content
    return props


def test_local_secret_files_must_be_0600() -> None:
    assert rules.no_plaintext_secrets(rules.DYNAMIC, local_file("0600", True), DEV) == []
    assert rules.no_plaintext_secrets(rules.DYNAMIC, local_file("0400", True), DEV) == []
    assert rules.no_plaintext_secrets(rules.DYNAMIC, local_file("0640", True), DEV) == [
        "/var/lib/hastack/t/pg-0/conf/patroni.yml holds a secret but its mode is '0640'; it must be 0600"
    ]
    assert rules.no_plaintext_secrets(rules.DYNAMIC, local_file(None, True), DEV)


def test_a_generated_secret_kept_only_in_state_has_no_file_mode_to_check() -> None:
    generated = {"kind": "secret", "length": 32, "labels": lbl("postgres", "az1"), "value": None}
    assert rules.no_plaintext_secrets(rules.DYNAMIC, generated, DEV) == []
    on_disk = {**generated, "path": "/var/lib/hastack/t/gossip.key", "mode": "0644"}
    assert rules.no_plaintext_secrets(rules.DYNAMIC, on_disk, DEV)


def test_a_local_file_holding_a_password_must_be_marked_secret() -> None:
    assert rules.no_plaintext_secrets(rules.DYNAMIC, local_file("0644", False, PATRONI_FROM_ENV), DEV) == []
    bad = rules.no_plaintext_secrets(rules.DYNAMIC, local_file("0644", False, PATRONI_WITH_PASSWORD), DEV)
    assert "is not marked secret" in bad[0]


# --------------------------------------------------------------------------------------------------
# Blast radius


def test_blast_radius_of_a_three_zone_local_stack_survives_every_zone() -> None:
    table, violations = rules.blast_radius_report(local_stack())
    assert violations == []
    assert table.splitlines()[0].split() == [
        "zone", "lost", "postgres", "left", "promotable", "consul", "left", "quorum", "proxies", "left", "ok"
    ]  # fmt: skip
    assert [line.split()[0] for line in table.splitlines()[1:]] == list(ZONES)
    assert table.splitlines()[3].split() == ["az3", "2", "yes", "2", "yes", "2", "yes"]


def test_blast_radius_flags_the_zone_whose_loss_breaks_the_stack() -> None:
    table, violations = rules.blast_radius_report(local_stack(pg=("az1", "az1", "az1"), proxy=("az1", "az1")))
    assert names(violations) == (
        "losing zone az1: Postgres keeps no promotable synchronous copy (0 left); the proxy tier keeps no member"
    )
    assert table.splitlines()[1].split() == ["az1", "0", "NO", "2", "yes", "0", "NO"]


def test_blast_radius_counts_rds_multi_az_in_every_zone() -> None:
    stack = [instance("consul", z) for z in ZONES] + [Resource(rules.RDS_INSTANCE, "db", rds())]
    assert all(z.survives for z in rules.blast_radius(stack))
    single = [instance("consul", z) for z in ZONES] + [
        Resource(rules.RDS_INSTANCE, "db", rds(multiAz=False, availabilityZone="az1"))
    ]
    assert [z.zone for z in rules.blast_radius(single) if not z.survives] == ["az1"]


def test_an_rds_stack_expects_no_consul_servers() -> None:
    stack = [Resource(rules.RDS_INSTANCE, "db", rds()), instance("monitoring", "az1")]
    settings = Settings(zones=ZONES)
    assert rules.consul_quorum(stack, settings) == []
    table, violations = rules.blast_radius_report(stack, settings)
    assert violations == []
    assert [line.split()[3:5] for line in table.splitlines()[1:]] == [["-", "n/a"]] * 3
    # Consul servers that do exist beside RDS still have to keep quorum.
    lopsided = [*stack, instance("consul", "az1", "c1"), instance("consul", "az1", "c2"), instance("consul", "az2")]
    assert "losing zone az1: Consul loses quorum" in names(rules.blast_radius_report(lopsided, settings)[1])


def test_patroni_next_to_rds_still_needs_consul() -> None:
    stack = [Resource(rules.RDS_INSTANCE, "db", rds()), *aws_stack()[3:]]
    assert "no Consul server" in names(rules.consul_quorum(stack, DEV))
    assert "Consul loses quorum" in names(rules.blast_radius_report(stack, DEV)[1])


def test_numbers_arrive_as_floats_from_the_engine_and_still_count() -> None:
    sts = workload(role="postgres")
    sts["spec"]["replicas"] = 3.0
    assert len(rules.tier_nodes([Resource(STS, "pg", sts)], Settings(zones=ZONES))) == 3
    world = {"fromPort": 5432.0, "toPort": 5432.0, "protocol": "tcp", "cidrBlocks": ["0.0.0.0/0"]}
    assert rules.no_public_database_ingress(rules.SECURITY_GROUP, sg([world]), DEV)
    assert rules.rds_resilience(rules.RDS_INSTANCE, rds(backupRetentionPeriod=7.0), PROD) == []
    assert rules.rds_resilience(rules.RDS_INSTANCE, rds(backupRetentionPeriod=3.0), PROD)


# --------------------------------------------------------------------------------------------------
# The pack


def test_every_rule_is_registered_once_with_a_description() -> None:
    assert len(set(rules.RULE_NAMES)) == len(rules.RULES) == 12
    for rule in rules.RULES:
        assert (rule.stack is None) != (rule.resource is None), rule.name
        assert rule.description.endswith("."), rule.name
        assert set(rule.config) <= set(rules.CONFIG_SCHEMA), rule.name


def test_a_healthy_local_stack_passes_every_rule() -> None:
    assert {k: v for k, v in rules.run_stack(local_stack()).items() if v} == {}


def test_the_pack_entry_point_builds_one_policy_per_rule_and_unwraps_unknowns() -> None:
    pytest.importorskip("pulumi_policy")
    from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, unknown_checking_proxy

    from policies import __main__ as pack

    assert [p.name for p in pack.policies()] == list(rules.RULE_NAMES)
    proxied = unknown_checking_proxy({"subnets": [UNKNOWN_STRING_VALUE], "tags": {"a": "b"}})
    assert pack.plain(proxied) == {"subnets": [rules.UNKNOWN], "tags": {"a": "b"}}


def test_policy_config_files_set_the_documented_enforcement_levels() -> None:
    import json

    levels = {
        env: json.loads((ROOT / "stacks" / f"policy.{env}.json").read_text()) for env in ("dev", "prod", "local", "k8s")
    }
    assert levels["dev"]["all"] == "advisory"
    assert levels["prod"]["all"] == "mandatory"
    assert levels["prod"]["postgres-zone-spread"]["environment"] == "prod"
    assert levels["prod"]["rds-resilience"]["environment"] == "prod"
    for env, config in levels.items():
        for key, value in config.items():
            assert key == "all" or key in rules.RULE_NAMES, (env, key)
            if isinstance(value, dict):
                rule = next(r for r in rules.RULES if r.name == key)
                assert set(value) - {"enforcementLevel"} <= set(rule.config), (env, key)
