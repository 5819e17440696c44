"""Contract of the typed stack config: defaults, and every refused value named by key, value and rule."""

import pytest

from hastack.spec import CONFIG_KEYS, HaStackSpec, SpecError, load_spec


def test_defaults_describe_a_three_zone_local_cluster():
    spec = load_spec({})
    assert spec.platform == "local"
    assert spec.zones == ["az1", "az2", "az3"]
    assert spec.consul_servers == 3
    assert spec.postgres_nodes == 3
    assert spec.postgres.synchronous.enabled and spec.postgres.synchronous.standbys == 1
    assert spec.proxy.kind == "haproxy" and spec.proxy.count == 2
    assert spec.acl_default_policy is None  # ACLs are off on local, deny on cloud platforms


def test_cloud_platforms_default_to_acl_deny_and_prod_to_deletion_protection():
    spec = load_spec({"platform": "aws", "environment": "prod"})
    assert spec.acl_default_policy == "deny"
    assert spec.deletion_protection is True
    assert load_spec({"platform": "aws"}).deletion_protection is False


@pytest.mark.parametrize(
    ("zones", "servers"), [(["a", "b"], 3), (["a", "b", "c"], 3), (["a", "b", "c", "d"], 5), (list("abcde"), 5)]
)
def test_consul_servers_default_to_an_odd_count_covering_every_zone(zones, servers):
    assert load_spec({"zones": zones}).consul_servers == servers


def test_camel_case_keys_from_stack_yaml_map_to_fields():
    spec = load_spec({"postgres": {"patroni": {"loopWait": 3, "retryTimeout": 5}}, "ports": {"proxyWrite": 6000}})
    assert spec.postgres.patroni.loop_wait == 3
    assert spec.ports.proxy_write == 6000


INVALID = [
    ({"consul": {"servers": 4}}, "hastack:consul.servers must be odd and >= 3 (and <= 7), got 4"),
    ({"consul": {"servers": 1}}, "hastack:consul.servers must be odd and >= 3 (and <= 7), got 1"),
    ({"zones": ["a"]}, "hastack:zones must list between 2 and 5 zones, got 1 (['a'])"),
    ({"zones": list("abcdef")}, "hastack:zones must list between 2 and 5 zones, got 6"),
    ({"zones": ["a", "a"]}, "hastack:zones must be distinct, got ['a', 'a']"),
    ({"zones": ["a", "B"]}, "hastack:zones[1] must be lowercase letters, digits and dashes, got 'B'"),
    ({"proxy": {"kind": "envoy"}}, "hastack:proxy.kind must be one of 'haproxy' or 'nginx', got 'envoy'"),
    ({"proxy": {"count": 1}}, "hastack:proxy.count must be >= 2, got 1"),
    ({"platform": "gcp"}, "hastack:platform must be one of 'local', 'aws' or 'kubernetes', got 'gcp'"),
    (
        {"ports": {"proxyRead": 5432}},
        "hastack:ports.proxyRead must differ from ports.postgres (ports are unique per host), got 5432",
    ),
    ({"ports": {"postgres": 80}}, "hastack:ports.postgres must be between 1024 and 65535, got 80"),
    (
        {"postgres": {"synchronous": {"standbys": 3}}},
        "hastack:postgres.synchronous.standbys must be <= replicas (postgres nodes - 1 = 2), got 3",
    ),
    (
        {"postgres": {"patroni": {"loopWait": 10, "retryTimeout": 10}}},
        "hastack:postgres.patroni.loopWait + 2 * retryTimeout must be <= ttl, got 10 + 2 * 10 > 20",
    ),
    ({"postgres": {"patroni": {"ttl": 10}}}, "hastack:postgres.patroni.ttl must be >= 20, got 10"),
    ({"postgres": {"nodes": 1}}, "hastack:postgres.nodes must be between 2 and 9, got 1"),
    ({"postgres": {"version": 11}}, "hastack:postgres.version must be >= 13, got 11"),
    (
        {"postgres": {"mode": "rds"}},
        "hastack:postgres.mode rds is only available on platform aws, got platform 'local'",
    ),
    (
        {"postgres": {"parameters": {"wal_level": "minimal"}}},
        "hastack:postgres.parameters.wal_level is managed by Patroni and cannot be set, got 'minimal'",
    ),
    ({"postgres": {"scope": "My_Cluster"}}, "hastack:postgres.scope must be lowercase letters, digits and dashes"),
    (
        {"aws": {"allowedCidrs": ["0.0.0.0/0"]}},
        "hastack:aws.allowedCidrs[0] must not open the database to the internet, got '0.0.0.0/0'",
    ),
    ({"consul": {"gossip": {"probeInterval": "fast"}}}, "hastack:consul.gossip.probeInterval must be a duration"),
    ({"monitoring": {"scrapeInterval": "5 seconds"}}, "hastack:monitoring.scrapeInterval must be a duration"),
    ({"consul": {"servrs": 3}}, "hastack:consul.servrs is not a known setting, got 3"),
    ({"proxies": {"count": 2}}, "hastack:proxies is not a known setting"),
    ({"consul": {"servers": "three"}}, "hastack:consul.servers must be an integer, got 'three'"),
    ({"local": {"dataDir": "relative/path"}}, "hastack:local.dataDir must be an absolute path"),
    (
        {"consul": {"aclDefaultPolicy": "deny"}},
        "hastack:consul.aclDefaultPolicy deny is not supported on local (no token bootstrap), got 'deny'",
    ),
    (
        {"platform": "aws", "zones": ["a", "b", "c"], "aws": {"vpcCidr": "10.0.0.0/20"}},
        "hastack:aws.vpcCidr must hold 4 /20 subnets for 3 zones, got 10.0.0.0/20",
    ),
    (
        {"platform": "aws", "zones": ["a", "b", "c", "d"], "aws": {"vpcCidr": "10.0.0.0/18"}},
        "hastack:aws.vpcCidr must hold 5 /20 subnets for 4 zones, got 10.0.0.0/18",
    ),
    (
        {"platform": "aws", "aws": {"vpcCidr": "10.0.0.0/24"}},
        "hastack:aws.vpcCidr must be an IPv4 CIDR from /16 to /20 (AWS allows /16 at most, hastack cuts it into "
        "/20 subnets), got '10.0.0.0/24'",
    ),
    ({"platform": "aws", "aws": {"vpcCidr": "10.0.0.0/8"}}, "hastack:aws.vpcCidr must be an IPv4 CIDR from /16"),
    ({"platform": "aws", "aws": {"vpcCidr": "fd00::/16"}}, "hastack:aws.vpcCidr must be an IPv4 CIDR"),
]


@pytest.mark.parametrize(("config", "message"), INVALID, ids=[m.split(" ")[0] for _, m in INVALID])
def test_invalid_config_is_refused_with_key_value_and_rule(config, message):
    with pytest.raises(SpecError) as exc:
        load_spec(config)
    assert any(p.startswith(message) for p in exc.value.problems), exc.value.problems


def test_a_vpc_just_big_enough_for_every_zone_and_the_nat_subnet_is_accepted():
    spec = load_spec({"platform": "aws", "zones": ["a", "b", "c"], "aws": {"vpcCidr": "10.0.0.0/18"}})
    assert spec.aws.vpc_cidr == "10.0.0.0/18"
    # The aws section is only read on aws.
    assert load_spec({"zones": list("abcde"), "aws": {"vpcCidr": "10.0.0.0/18"}}).platform == "local"


def test_every_problem_is_reported_at_once():
    with pytest.raises(SpecError) as exc:
        load_spec({"consul": {"servers": 4}, "proxy": {"kind": "envoy"}})
    assert len(exc.value.problems) == 2


def test_config_keys_cover_every_section():
    assert set(CONFIG_KEYS) == {
        "platform", "environment", "zones", "consul", "postgres", "proxy", "monitoring", "ports", "tags",
        "local", "aws", "kubernetes",
    }  # fmt: skip


def test_every_field_documents_its_default():
    def walk(model, path):
        for name, field in model.model_fields.items():
            assert field.description and "Default:" in field.description, f"{path}.{name} has no documented default"
            ann = field.annotation
            if isinstance(ann, type) and hasattr(ann, "model_fields"):
                walk(ann, f"{path}.{name}")

    walk(HaStackSpec, "hastack")
