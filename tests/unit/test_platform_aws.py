"""Contracts of the AWS platform, checked on the resources it registers under Pulumi's mocks."""

from __future__ import annotations

import base64
import json
from collections import Counter

import pytest
import yaml

from hastack.platforms.aws.network import ANYWHERE
from hastack.platforms.aws.site import CONSUL_JOIN_TAG
from hastack.testing import Capture, CapturedResource, capture, walk_strings

from .platform_fixtures import ZONES3, prod_and_dev

PROD = {"platform": "aws", "environment": "prod", "zones": ZONES3, "tags": {"team": "data"}}
DEV = {"platform": "aws", "environment": "dev", "zones": ZONES3[:2]}

INSTANCE = "aws:ec2/instance:Instance"
LT = "aws:ec2/launchTemplate:LaunchTemplate"
SG = "aws:ec2/securityGroup:SecurityGroup"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
RDS = "aws:rds/instance:Instance"


prod, dev, each = prod_and_dev(PROD, DEV, prod_stack="prod")


def _role_zone(r: CapturedResource) -> tuple[str, str]:
    return r.inputs["tags"]["hastack.io/role"], r.inputs["tags"]["hastack.io/zone"]


def _groups(cap: Capture) -> dict[str, str]:
    """security group id -> tier key (hastack.io/group tag)."""
    return {sg.id: sg.inputs["tags"]["hastack.io/group"] for sg in cap.of_type(SG)}


def _rules(cap: Capture, type_: str) -> list[dict]:
    groups = _groups(cap)
    out = []
    for r in cap.of_type(type_):
        i = r.inputs
        out.append(
            {
                "group": groups[i["securityGroupId"]],
                "port": i.get("fromPort"),
                "to_port": i.get("toPort"),
                "protocol": i["ipProtocol"],
                "peer": groups.get(i.get("referencedSecurityGroupId", ""), i.get("cidrIpv4")),
                "description": i.get("description"),
            }
        )
    return out


def _user_data(cap: Capture) -> dict[str, str]:
    return {
        lt.inputs["tags"]["hastack.io/host"]: base64.b64decode(lt.inputs["userData"]).decode() for lt in cap.of_type(LT)
    }


def _file(user_data: str, name: str) -> str:
    doc = yaml.safe_load(user_data)
    return next(f["content"] for f in doc["write_files"] if f["path"].endswith("/" + name))


# --------------------------------------------------------------------------------------------------
# Placement


def test_one_consul_server_and_one_postgres_node_in_every_zone(each):
    config, cap = each
    per = Counter(_role_zone(i) for i in cap.of_type(INSTANCE))
    for zone in config["zones"]:
        assert per[("postgres", zone)] == 1, per
        assert per[("consul", zone)] >= 1, per
    assert sum(n for (role, _), n in per.items() if role == "consul") == 3  # odd, >= 3 even with 2 zones
    assert sum(n for (role, _), n in per.items() if role == "monitoring") == 1


def test_proxies_span_two_zones_behind_an_internal_cross_zone_nlb(each):
    _, cap = each
    proxy_zones = {_role_zone(i)[1] for i in cap.of_type(INSTANCE) if _role_zone(i)[0] == "proxy"}
    assert len(proxy_zones) >= 2
    (nlb,) = cap.of_type("aws:lb/loadBalancer:LoadBalancer")
    assert nlb.inputs["internal"] is True
    assert nlb.inputs["loadBalancerType"] == "network"
    assert nlb.inputs["enableCrossZoneLoadBalancing"] is True
    listeners = {lst.inputs["port"] for lst in cap.of_type("aws:lb/listener:Listener")}
    assert listeners == {5000, 5001}
    for tg in cap.of_type("aws:lb/targetGroup:TargetGroup"):
        assert tg.inputs["healthCheck"]["protocol"] == "HTTP"
    attachments = cap.of_type("aws:lb/targetGroupAttachment:TargetGroupAttachment")
    assert len(attachments) == 2 * len([i for i in cap.of_type(INSTANCE) if _role_zone(i)[0] == "proxy"])


def test_the_nlb_has_a_subnet_in_every_zone_even_without_a_proxy_there(each):
    # Cross-zone balancing lets a client in a proxy-less zone (only Postgres there) still reach a proxy.
    config, cap = each
    subnets = {s.id: s.inputs for s in cap.of_type("aws:ec2/subnet:Subnet")}
    (nlb,) = cap.of_type("aws:lb/loadBalancer:LoadBalancer")
    assert [subnets[i]["availabilityZone"] for i in nlb.inputs["subnets"]] == config["zones"]
    assert all(subnets[i]["tags"]["hastack.io/tier"] == "private" for i in nlb.inputs["subnets"])


def test_every_instance_sits_in_its_zones_subnet_at_a_fixed_private_address(each):
    _, cap = each
    subnets = {s.id: s.inputs for s in cap.of_type("aws:ec2/subnet:Subnet")}
    ips = set()
    for inst in cap.of_type(INSTANCE):
        subnet = subnets[inst.inputs["subnetId"]]
        assert subnet["availabilityZone"] == _role_zone(inst)[1] == inst.inputs["availabilityZone"]
        import ipaddress

        assert ipaddress.ip_address(inst.inputs["privateIp"]) in ipaddress.ip_network(subnet["cidrBlock"])
        ips.add(inst.inputs["privateIp"])
    assert len(ips) == len(cap.of_type(INSTANCE))


def test_tier_children_are_named_by_role_and_zone_under_their_component(prod):
    tiers = {r.type.rsplit(":", 1)[1]: r for r in prod.resources if r.type.startswith("hastack:aws:")}
    for tier in ("HaStack", "ConsulCluster", "PostgresCluster", "ProxyTier", "Monitoring"):
        assert tier in tiers
    for inst in prod.of_type(INSTANCE):
        role, zone = _role_zone(inst)
        assert inst.name == f"hastack-{role}-{zone}"
        parent_type = inst.parent.split("::")[2].rsplit("$", 1)[-1]
        expected = {"consul": "ConsulCluster", "postgres": "PostgresCluster", "proxy": "ProxyTier"}
        assert parent_type == f"hastack:aws:{expected.get(role, 'Monitoring')}"


# --------------------------------------------------------------------------------------------------
# Security groups


def test_no_security_group_rule_admits_the_internet(each):
    _, cap = each
    ingress = _rules(cap, INGRESS)
    assert ingress
    for rule in ingress:
        assert rule["peer"] not in (ANYWHERE, "::/0", None), rule
    for sg in cap.of_type(SG):
        assert not sg.inputs.get("ingress"), f"{sg.name} has inline ingress rules"


def test_postgres_accepts_sql_only_from_proxies_and_its_peers(prod):
    peers = {r["peer"] for r in _rules(prod, INGRESS) if r["group"] == "postgres" and r["port"] == 5432}
    assert peers == {"proxy", "postgres"}


def test_patroni_api_only_from_proxies_monitoring_and_peers(prod):
    peers = {r["peer"] for r in _rules(prod, INGRESS) if r["group"] == "postgres" and r["port"] == 8008}
    assert peers == {"proxy", "monitoring", "postgres"}


def test_consul_ports_are_open_only_inside_the_cluster(prod):
    consul_ports = {8300, 8301, 8500, 8600}
    for rule in _rules(prod, INGRESS):
        if rule["port"] in consul_ports:
            # Agents talk to agents; the only outsider is Prometheus reading the servers' metrics endpoint.
            allowed = {"agents"} if rule["port"] != 8500 else {"monitoring"}
            assert rule["peer"] in allowed, rule
    gossip = {(r["protocol"], r["peer"]) for r in _rules(prod, INGRESS) if r["port"] == 8301}
    assert gossip == {("tcp", "agents"), ("udp", "agents")}


def test_proxies_accept_clients_only_through_the_nlb_and_the_nlb_only_from_the_vpc(prod):
    rules = _rules(prod, INGRESS)
    for rule in rules:
        if rule["group"] == "proxy" and rule["port"] in (5000, 5001):
            assert rule["peer"] == "nlb"
    nlb_peers = {r["peer"] for r in rules if r["group"] == "nlb"}
    assert nlb_peers == {"10.40.0.0/16"}


def test_every_rule_is_a_single_port_with_a_reason(each):
    _, cap = each
    for rule in _rules(cap, INGRESS):
        assert rule["port"] == rule["to_port"] and rule["port"] is not None, rule
        assert rule["description"], rule
    for rule in _rules(cap, EGRESS):
        assert rule["description"], rule


def test_allowed_cidrs_open_only_the_nlb_and_prometheus():
    cap = capture({**DEV, "aws": {"allowedCidrs": ["192.168.10.0/24"]}}, stack="dev")
    opened = {(r["group"], r["port"]) for r in _rules(cap, INGRESS) if r["peer"] == "192.168.10.0/24"}
    assert opened == {("nlb", 5000), ("nlb", 5001), ("monitoring", 9090)}


# --------------------------------------------------------------------------------------------------
# Encryption and secrets


def test_data_volumes_are_encrypted_gp3_one_per_postgres_node(each):
    config, cap = each
    vols = cap.of_type("aws:ebs/volume:Volume")
    assert sorted(v.inputs["availabilityZone"] for v in vols) == sorted(config["zones"])
    for v in vols:
        assert v.inputs["encrypted"] is True
        assert v.inputs["type"] == "gp3"
        assert v.inputs["tags"]["hastack.io/role"] == "postgres"
    attached = {a.inputs["volumeId"] for a in cap.of_type("aws:ec2/volumeAttachment:VolumeAttachment")}
    assert attached == {v.id for v in vols}
    for lt in cap.of_type(LT):
        for bdm in lt.inputs["blockDeviceMappings"]:
            assert bdm["ebs"]["encrypted"] == "true"
        assert lt.inputs["metadataOptions"]["httpTokens"] == "required"


def test_no_generated_secret_reaches_user_data_or_any_instance_input(each):
    _, cap = each
    secrets = cap.generated_secrets
    assert len(secrets) >= 5  # three passwords, the gossip seed, the Consul token
    for r in (*cap.of_type(LT), *cap.of_type(INSTANCE)):
        blobs = list(walk_strings(r.inputs))
        blobs += [base64.b64decode(r.inputs["userData"]).decode()] if "userData" in r.inputs else []
        for blob in blobs:
            for secret in secrets:
                assert secret not in blob, f"{r.name} carries a generated secret"


def test_passwords_live_in_ssm_securestrings_read_at_boot_through_the_role(prod):
    params = {p.inputs["name"]: p for p in prod.of_type("aws:ssm/parameter:Parameter")}
    assert len(params) == 5
    for p in params.values():
        assert p.inputs["type"] == "SecureString"
        assert "value" in p.secret_paths
    stored = {p.inputs["value"] for p in params.values()}
    # The three passwords themselves are stored; the gossip key is derived from its seed.
    assert sum(1 for s in prod.generated_secrets if s in stored) == 4
    boot = _file(_user_data(prod)["postgres-us-east-1a"], "hastack-boot")
    for name in params:
        assert f"ssm {name}" in boot
    for var in ("PATRONI_SUPERUSER_PASSWORD", "PATRONI_REPLICATION_PASSWORD", "PATRONI_REWIND_PASSWORD"):
        assert var in boot
    policy = json.loads(
        next(p for p in prod.of_type("aws:iam/rolePolicy:RolePolicy") if p.name == "hastack-postgres").inputs["policy"]
    )
    readable = {arn for s in policy["Statement"] if s["Action"] == ["ssm:GetParameter"] for arn in s["Resource"]}
    assert readable == {p.outputs["arn"] for p in params.values()}


def test_proxies_and_consul_servers_cannot_read_database_passwords(prod):
    params = {p.inputs["name"]: p.outputs["arn"] for p in prod.of_type("aws:ssm/parameter:Parameter")}
    password_arns = {arn for name, arn in params.items() if name.endswith("-password")}
    for role in ("hastack-consul", "hastack-proxy"):
        policy = json.loads(
            next(p for p in prod.of_type("aws:iam/rolePolicy:RolePolicy") if p.name == role).inputs["policy"]
        )
        granted = {
            a
            for s in policy["Statement"]
            for a in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])
        }
        assert not granted & password_arns, role
        assert any(s["Action"] == ["ec2:DescribeInstances"] for s in policy["Statement"]), role


def test_prometheus_reads_the_consul_token_from_ssm_at_boot_into_a_file_only_it_reads(prod):
    params = {p.inputs["name"]: p.outputs["arn"] for p in prod.of_type("aws:ssm/parameter:Parameter")}
    (token_param,) = [name for name in params if name.endswith("/consul-token")]
    ud = _user_data(prod)["monitoring-us-east-1a"]
    jobs = {j["job_name"]: j for j in yaml.safe_load(_file(ud, "prometheus.yml"))["scrape_configs"]}
    path = jobs["consul"]["authorization"]["credentials_file"]
    assert path.startswith("/etc/hastack/")
    boot = _file(ud, "hastack-boot")
    assert f"ssm {token_param} > {path}" in boot
    assert f"chown prometheus: {path}" in boot
    before = boot.split(f"ssm {token_param}")[0]
    assert before.rstrip().endswith("umask 077")  # created 0600, never readable by others
    policy = json.loads(
        next(p for p in prod.of_type("aws:iam/rolePolicy:RolePolicy") if p.name == "hastack-monitoring").inputs[
            "policy"
        ]
    )
    readable = {arn for s in policy["Statement"] if s["Action"] == ["ssm:GetParameter"] for arn in s["Resource"]}
    assert readable == {params[token_param]}


def test_config_passwords_are_used_and_kept_out_of_user_data():
    given = {
        "superuserPassword": "Cfg-su-9f8e7d",
        "replicationPassword": "Cfg-repl-1a2b",
        "rewindPassword": "Cfg-rw-3c4d",
    }
    cap = capture({**DEV, "postgres": {"passwords": {"source": "config"}}, **given}, stack="dev")
    stored = {p.inputs["value"] for p in cap.of_type("aws:ssm/parameter:Parameter")}
    assert set(given.values()) <= stored
    for text in _user_data(cap).values():
        for value in given.values():
            assert value not in text
    assert not any(
        r.type == "random:index/randomPassword:RandomPassword" and "superuser" in r.name for r in cap.resources
    )


# --------------------------------------------------------------------------------------------------
# Consul auto-join, labels, alarms, AMI, outputs


def test_consul_servers_carry_the_join_tag_every_agent_joins_by(prod):
    servers = [i for i in prod.of_type(INSTANCE) if _role_zone(i)[0] == "consul"]
    values = {i.inputs["tags"][CONSUL_JOIN_TAG] for i in servers}
    assert len(values) == 1
    others = [i for i in prod.of_type(INSTANCE) if _role_zone(i)[0] != "consul"]
    assert all(CONSUL_JOIN_TAG not in i.inputs["tags"] for i in others)
    expected = f"provider=aws region=us-east-1 tag_key={CONSUL_JOIN_TAG} tag_value={values.pop()}"
    for host, ud in _user_data(prod).items():
        if not host.startswith("monitoring"):
            assert expected in _file(ud, "consul.hcl"), host


def test_every_instance_and_volume_carries_the_hastack_labels_and_user_tags(prod):
    for r in (*prod.of_type(INSTANCE), *prod.of_type("aws:ebs/volume:Volume")):
        tags = r.inputs["tags"]
        assert {"hastack.io/role", "hastack.io/zone", "hastack.io/host", "hastack.io/stack"} <= set(tags), r.name
        assert tags["hastack.io/stack"] == "prod"
        assert tags["team"] == "data"
        assert tags["Name"] == r.name.removesuffix("-data") or tags["Name"] == r.name


def test_cloudwatch_alarms_cover_every_instance_and_both_target_groups(prod):
    alarms = prod.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
    checked = {a.inputs["dimensions"]["InstanceId"] for a in alarms if a.inputs["metricName"] == "StatusCheckFailed"}
    assert checked == {i.id for i in prod.of_type(INSTANCE)}
    unhealthy = [a for a in alarms if a.inputs["metricName"] == "UnHealthyHostCount"]
    assert len(unhealthy) == 2


def test_ami_is_looked_up_by_the_configured_filter_and_owner(prod):
    calls = [args for token, args in prod.calls if token == "aws:ec2/getAmi:getAmi"]
    assert calls
    assert calls[0]["owners"] == ["136693071363"]
    assert {"name": "name", "values": ["debian-12-amd64-*"]} in calls[0]["filters"]
    assert {lt.inputs["imageId"] for lt in prod.of_type(LT)} == {"ami-0mock"}


def test_outputs_point_at_the_nlb_and_every_patroni_node(prod):
    nlb = prod.of_type("aws:lb/loadBalancer:LoadBalancer")[0].outputs["dnsName"]
    assert prod.outputs["write_endpoint"] == f"{nlb}:5000"
    assert prod.outputs["read_endpoint"] == f"{nlb}:5001"
    assert prod.outputs["write_dsn"].startswith("postgresql://postgres:")
    assert prod.outputs["write_dsn"].endswith(f"@{nlb}:5000/postgres")
    pg_ips = sorted(i.inputs["privateIp"] for i in prod.of_type(INSTANCE) if _role_zone(i)[0] == "postgres")
    assert sorted(prod.outputs["patroni_urls"]) == sorted(f"http://{ip}:8008" for ip in pg_ips)
    mon_ip = next(i.inputs["privateIp"] for i in prod.of_type(INSTANCE) if _role_zone(i)[0] == "monitoring")
    assert prod.outputs["prometheus_url"] == f"http://{mon_ip}:9090"


# --------------------------------------------------------------------------------------------------
# Backups and managed mode


def test_wal_bucket_is_encrypted_versioned_private_and_named_in_patroni():
    cap = capture({**DEV, "postgres": {"backups": {"enabled": True, "retentionDays": 14}}}, stack="dev")
    (bucket,) = cap.of_type("aws:s3/bucket:Bucket")
    (pab,) = cap.of_type("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    assert all(
        pab.inputs[k] is True
        for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    )
    (sse,) = cap.of_type("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")
    assert sse.inputs["rules"][0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "aws:kms"
    (ver,) = cap.of_type("aws:s3/bucketVersioning:BucketVersioning")
    assert ver.inputs["versioningConfiguration"]["status"] == "Enabled"
    (life,) = cap.of_type("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
    assert life.inputs["rules"][0]["expiration"]["days"] == 14
    name = bucket.outputs["bucket"]
    for host, ud in _user_data(cap).items():
        if host.startswith("postgres"):
            patroni = yaml.safe_load(_file(ud, "patroni.yml"))
            params = patroni["bootstrap"]["dcs"]["postgresql"]["parameters"]
            assert params["archive_mode"] == "on"
            assert f"s3://{name}/" in params["archive_command"]


def test_no_wal_bucket_unless_backups_are_enabled(prod):
    assert not prod.of_type("aws:s3/bucket:Bucket")


@pytest.fixture(scope="module")
def rds_prod() -> Capture:
    return capture({**PROD, "postgres": {"mode": "rds", "rds": {"readReplicas": 2}}}, stack="prod")


def test_rds_mode_is_multi_az_encrypted_retained_and_protected_in_prod(rds_prod):
    rds = {r.name: r.inputs for r in rds_prod.of_type(RDS)}
    primary = rds["hastack-postgres-primary"]
    assert primary["multiAz"] is True
    assert primary["storageEncrypted"] is True
    assert primary["backupRetentionPeriod"] >= 7
    assert primary["deletionProtection"] is True
    assert primary["skipFinalSnapshot"] is False and primary["finalSnapshotIdentifier"]
    assert primary["manageMasterUserPassword"] is True and "password" not in primary
    assert primary["publiclyAccessible"] is False
    replicas = [v for k, v in rds.items() if "replica" in k]
    assert len(replicas) == 2
    assert {r["availabilityZone"] for r in replicas} == {"us-east-1b", "us-east-1c"}
    assert all(r["storageEncrypted"] and r["replicateSourceDb"] == primary["identifier"] for r in replicas)
    assert rds_prod.of_type("aws:rds/subnetGroup:SubnetGroup") and rds_prod.of_type(
        "aws:rds/parameterGroup:ParameterGroup"
    )
    assert not [i for i in rds_prod.of_type(INSTANCE) if _role_zone(i)[0] in ("postgres", "proxy")]
    assert not rds_prod.of_type("aws:lb/loadBalancer:LoadBalancer")
    assert rds_prod.outputs["write_endpoint"].startswith("hastack-postgres-primary.rds.")


def test_rds_mode_runs_no_consul_at_all(rds_prod):
    # Consul is Patroni's DCS and the proxies' DNS; with RDS neither exists, so neither do its servers.
    assert [_role_zone(i)[0] for i in rds_prod.of_type(INSTANCE)] == ["monitoring"]
    assert not [r for r in rds_prod.resources if r.type.startswith("aws:iam/") and "consul" in r.name]
    assert rds_prod.outputs["consul_ui"] == ""
    mon = _user_data(rds_prod)["monitoring-us-east-1a"]
    prometheus = yaml.safe_load(_file(mon, "prometheus.yml"))
    assert prometheus["scrape_configs"] is None  # no Patroni, exporter, proxy or Consul to scrape
    alerts = yaml.safe_load(_file(mon, "alerts.yml"))
    assert alerts["groups"] is None  # Patroni and Consul alerts would fire for ever on targets that never exist
    assert "ssm " not in _file(mon, "hastack-boot").split("install -d", 1)[1]


def test_rds_mode_outside_prod_skips_deletion_protection_and_final_snapshot():
    cap = capture({**DEV, "postgres": {"mode": "rds", "rds": {"readReplicas": 1}}}, stack="dev")
    primary = next(r.inputs for r in cap.of_type(RDS) if r.name.endswith("primary"))
    assert primary["deletionProtection"] is False
    assert primary["skipFinalSnapshot"] is True
    assert primary["backupRetentionPeriod"] >= 7
