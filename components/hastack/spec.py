"""Typed specification of one hastack cluster, built from stack config.

This is the first layer: pure pydantic models, no Pulumi resources and no I/O. Every invalid value is
refused here, before any resource is registered, with a message that names the config key path, the
value and the rule, e.g. ``hastack:consul.servers must be odd and >= 3, got 4``.

Stack config uses one Pulumi config key per section (``hastack:consul``, ``hastack:postgres``, ...), in
camelCase like the rest of Pulumi's config. :func:`load_spec` takes a mapping of those sections.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

NAMESPACE = "hastack"

Platform = Literal["local", "aws", "kubernetes"]
ProxyKind = Literal["haproxy", "nginx"]
PostgresMode = Literal["patroni", "rds"]

_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$")
_DURATION_RE = re.compile(r"^[0-9]+(ms|s|m|h|d)$")


class SpecError(ValueError):
    """Invalid stack configuration. ``problems`` holds one line per refused value."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid hastack stack config:\n" + "\n".join(f"  - {p}" for p in problems))


class _Rule(ValueError):
    """A rule violation raised inside a validator; ``key`` is relative to the model being validated."""

    def __init__(self, key: str, message: str):
        self.key = key
        super().__init__(message)


class Model(BaseModel):
    """Base: camelCase keys in config, snake_case in Python, unknown keys refused, values frozen."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True, validate_default=True
    )


def _fail(key: str, rule: str, value: Any) -> _Rule:
    return _Rule(key, f"{key} {rule}, got {value!r}")


# --------------------------------------------------------------------------------------------------
# Consul


class GossipSpec(Model):
    probe_interval: str = Field(
        "500ms",
        description="Serf LAN probe interval (`gossip_lan.probe_interval`). Shorter detects a dead host "
        "sooner. Default: 500ms (Consul's own default is 1s).",
    )
    suspicion_mult: int = Field(
        3,
        ge=1,
        le=10,
        description="Serf LAN suspicion multiplier. Lower declares a host failed sooner after a failed "
        "probe. Default: 3 (Consul's own default is 4).",
    )

    @field_validator("probe_interval")
    @classmethod
    def _duration(cls, v: str) -> str:
        if not _DURATION_RE.match(v):
            raise ValueError("must be a duration such as 500ms or 1s")
        return v


class ConsulSpec(Model):
    servers: int | None = Field(
        None,
        description="Number of Consul servers; odd and >= 3, spread one per zone first. Ignored with "
        "`postgres.mode: rds`, which runs no Consul. "
        "Default: one per zone, rounded up to the next odd number (at least 3).",
    )
    version: str = Field(
        "1.8.7",
        description="Consul version. On local it must match the binary setup installed; on aws and "
        "kubernetes it picks the package or image. Default: 1.8.7.",
    )
    datacenter: str = Field("dc1", description="Consul datacenter name. Default: dc1.")
    raft_multiplier: int = Field(
        1, ge=1, le=10, description="`performance.raft_multiplier`; 1 is the production setting. Default: 1."
    )
    gossip: GossipSpec = Field(default_factory=GossipSpec, description="Gossip timings. Default: see fields.")
    acl_default_policy: Literal["allow", "deny"] | None = Field(
        None, description="ACL default policy. Default: deny on aws and kubernetes, ACLs off on local."
    )
    ui: bool = Field(True, description="Serve the Consul UI on the servers. Default: true.")
    image: str = Field(
        "hashicorp/consul:1.8.7", description="Container image on kubernetes. Default: hashicorp/consul:1.8.7."
    )

    @field_validator("servers")
    @classmethod
    def _odd(cls, v: int | None) -> int | None:
        if v is not None and (v < 3 or v % 2 == 0 or v > 7):
            raise _fail("servers", "must be odd and >= 3 (and <= 7)", v)
        return v

    @field_validator("datacenter")
    @classmethod
    def _dc(cls, v: str) -> str:
        if not _NAME_RE.match(v):
            raise _fail("datacenter", "must be lowercase letters, digits and dashes", v)
        return v


# --------------------------------------------------------------------------------------------------
# Postgres


class SynchronousSpec(Model):
    enabled: bool = Field(
        True,
        description="Patroni `synchronous_mode`: a commit is acknowledged only once a standby has it, so "
        "failover loses no acknowledged write. Default: true.",
    )
    standbys: int = Field(
        1, ge=1, description="`synchronous_node_count`. Default: one synchronous standby in another zone."
    )
    strict: bool = Field(
        False,
        description="`synchronous_mode_strict`: refuse writes when no standby is available. "
        "Default: false (writes continue on a lone primary).",
    )


class PatroniSpec(Model):
    ttl: int = Field(20, ge=20, le=300, description="Leader key TTL in seconds (Patroni minimum 20). Default: 20.")
    loop_wait: int = Field(2, ge=1, le=60, description="Seconds between HA loop runs. Default: 2.")
    retry_timeout: int = Field(4, ge=1, le=60, description="DCS and Postgres retry timeout, seconds. Default: 4.")
    maximum_lag_on_failover: int = Field(
        1048576, ge=0, description="Bytes a replica may lag and still be promoted. Default: 1048576 (1 MiB)."
    )
    version: str = Field("4.1.5", description="Patroni version installed on hosts. Default: 4.1.5.")

    @model_validator(mode="after")
    def _ha_loop(self) -> PatroniSpec:
        # Patroni's own rule: a leader must be able to renew its key before it expires.
        if self.loop_wait + 2 * self.retry_timeout > self.ttl:
            raise _Rule(
                "loopWait",
                f"loopWait + 2 * retryTimeout must be <= ttl, got {self.loop_wait} + 2 * {self.retry_timeout} "
                f"> {self.ttl}",
            )
        return self


class BackupSpec(Model):
    enabled: bool = Field(False, description="Archive WAL to object storage (aws: S3). Default: false.")
    retention_days: int = Field(7, ge=1, le=3650, description="Days of backups kept. Default: 7.")


class RdsSpec(Model):
    instance_class: str = Field("db.r6g.large", description="RDS instance class. Default: db.r6g.large.")
    allocated_storage_gb: int = Field(100, ge=20, le=65536, description="Storage in GiB. Default: 100.")
    read_replicas: int = Field(1, ge=0, le=5, description="Read replicas in other zones. Default: 1.")
    backup_retention_days: int = Field(
        7, ge=7, le=35, description="Automated backup retention; at least 7. Default: 7."
    )
    deletion_protection: bool | None = Field(
        None, description="Deletion protection and a final snapshot. Default: on in prod, off elsewhere."
    )
    storage_type: Literal["gp3", "io1", "io2"] = Field("gp3", description="RDS storage type. Default: gp3.")
    performance_insights: bool = Field(True, description="RDS Performance Insights. Default: true.")


class PostgresSpec(Model):
    mode: PostgresMode = Field(
        "patroni", description="`patroni` (self-managed HA) or `rds` (aws only: RDS Multi-AZ). Default: patroni."
    )
    nodes: int | None = Field(None, description="Postgres nodes, spread over zones; >= 2. Default: one per zone.")
    version: int = Field(15, ge=13, le=17, description="Major version. Default: 15 (Debian bookworm's).")
    scope: str = Field(
        "hastack",
        description="Patroni scope (cluster name); also the Consul service name, so the primary is "
        "`primary.<scope>.service.consul`. Default: hastack.",
    )
    synchronous: SynchronousSpec = Field(default_factory=SynchronousSpec, description="Default: see fields.")
    patroni: PatroniSpec = Field(default_factory=PatroniSpec, description="Default: see fields.")
    use_pg_rewind: bool = Field(True, description="Rejoin a failed primary with pg_rewind. Default: true.")
    max_connections: int = Field(200, ge=20, le=10000, description="`max_connections`. Default: 200.")
    parameters: dict[str, str | int | float | bool] = Field(
        default_factory=dict,
        description="Extra postgresql.conf parameters, merged over hastack's. Default: none.",
    )
    backups: BackupSpec = Field(default_factory=BackupSpec, description="Default: off.")
    rds: RdsSpec = Field(default_factory=RdsSpec, description="Managed mode settings. Default: see fields.")
    image: str = Field(
        "ghcr.io/zalando/spilo-15:3.0-p1",
        description="Postgres+Patroni image on kubernetes. Default: ghcr.io/zalando/spilo-15:3.0-p1.",
    )
    passwords: PasswordsSpec = Field(
        default_factory=lambda: PasswordsSpec(), description="Where passwords come from. Default: generated."
    )

    @field_validator("nodes")
    @classmethod
    def _nodes(cls, v: int | None) -> int | None:
        if v is not None and not 2 <= v <= 9:
            raise _fail("nodes", "must be between 2 and 9", v)
        return v

    @field_validator("scope")
    @classmethod
    def _scope(cls, v: str) -> str:
        if not _NAME_RE.match(v):
            raise _fail("scope", "must be lowercase letters, digits and dashes (a DNS label)", v)
        return v

    @field_validator("parameters")
    @classmethod
    def _managed_params(cls, v: dict[str, Any]) -> dict[str, Any]:
        # Patroni owns these; setting them here would silently fight the HA loop.
        owned = {"hot_standby", "wal_level", "synchronous_standby_names", "port", "listen_addresses"}
        for key in v:
            if key in owned:
                raise _fail(f"parameters.{key}", "is managed by Patroni and cannot be set", v[key])
        return v


class PasswordsSpec(Model):
    source: Literal["generated", "config"] = Field(
        "generated",
        description="`generated`: random passwords created at first deploy and kept as Pulumi secrets. "
        "`config`: read the secrets `hastack:superuserPassword`, `hastack:replicationPassword` and "
        "`hastack:rewindPassword`. Default: generated.",
    )
    length: int = Field(32, ge=16, le=128, description="Length of generated passwords. Default: 32.")


# --------------------------------------------------------------------------------------------------
# Proxy tier


class CheckSpec(Model):
    inter_ms: int = Field(500, ge=100, le=60000, description="Health check interval. Default: 500.")
    fastinter_ms: int = Field(250, ge=50, le=60000, description="Interval while a state is changing. Default: 250.")
    downinter_ms: int = Field(250, ge=50, le=60000, description="Interval while a server is down. Default: 250.")
    fall: int = Field(2, ge=1, le=10, description="Failed checks before a server is marked down. Default: 2.")
    rise: int = Field(1, ge=1, le=10, description="Passed checks before a server is marked up. Default: 1.")


class ProxySpec(Model):
    kind: ProxyKind = Field(
        "haproxy",
        description="`haproxy` (routes by Patroni REST checks) or `nginx` (stream proxy resolving the "
        "primary through Consul DNS). Default: haproxy.",
    )
    count: int = Field(2, ge=2, le=10, description="Proxies, spread over zones; >= 2. Default: 2.")
    check: CheckSpec = Field(default_factory=CheckSpec, description="HAProxy check timings. Default: see fields.")
    max_connections: int = Field(1000, ge=10, le=100000, description="Client connections per proxy. Default: 1000.")
    client_timeout_s: int = Field(1800, ge=1, le=86400, description="Idle client timeout. Default: 1800.")
    image: str = Field("haproxy:2.6", description="Container image on kubernetes. Default: haproxy:2.6.")


# --------------------------------------------------------------------------------------------------
# Monitoring, ports, platforms


class MonitoringSpec(Model):
    enabled: bool = Field(True, description="Run Prometheus with hastack's alert rules. Default: true.")
    scrape_interval: str = Field("5s", description="Prometheus scrape interval. Default: 5s.")
    retention: str = Field("2d", description="Prometheus TSDB retention. Default: 2d.")
    replication_lag_bytes: int = Field(
        16 * 1024 * 1024, ge=0, description="Alert when a replica lags more. Default: 16777216 (16 MiB)."
    )
    image: str = Field(
        "prom/prometheus:v2.42.0", description="Container image on kubernetes. Default: prom/prometheus:v2.42.0."
    )

    @field_validator("scrape_interval", "retention")
    @classmethod
    def _duration(cls, v: str) -> str:
        if not _DURATION_RE.match(v):
            raise ValueError("must be a duration such as 5s, 1m or 2d")
        return v


class PortsSpec(Model):
    postgres: int = Field(5432, description="Postgres. Default: 5432.")
    patroni_api: int = Field(8008, description="Patroni REST API. Default: 8008.")
    proxy_write: int = Field(5000, description="Proxy port routed to the primary. Default: 5000.")
    proxy_read: int = Field(5001, description="Proxy port balanced over replicas. Default: 5001.")
    proxy_stats: int = Field(7000, description="HAProxy stats page. Default: 7000.")
    proxy_metrics: int = Field(8405, description="Proxy Prometheus endpoint. Default: 8405.")
    consul_http: int = Field(8500, description="Consul HTTP API and UI. Default: 8500.")
    consul_dns: int = Field(8600, description="Consul DNS. Default: 8600.")
    consul_serf_lan: int = Field(8301, description="Consul LAN gossip. Default: 8301.")
    consul_server: int = Field(8300, description="Consul server RPC. Default: 8300.")
    postgres_exporter: int = Field(9187, description="postgres_exporter. Default: 9187.")
    prometheus: int = Field(9090, description="Prometheus. Default: 9090.")

    @field_validator("*")
    @classmethod
    def _range(cls, v: int) -> int:
        if not 1024 <= v <= 65535:
            raise ValueError("must be between 1024 and 65535")
        return v

    @model_validator(mode="after")
    def _unique(self) -> PortsSpec:
        # Simulated hosts co-locate a Consul agent with Postgres or a proxy, and a cloud host may carry
        # several roles, so every port must be distinct rather than only per role.
        seen: dict[int, str] = {}
        for name in type(self).model_fields:
            port = getattr(self, name)
            key = to_camel(name)
            if port in seen:
                raise _Rule(key, f"{key} must differ from ports.{seen[port]} (ports are unique per host), got {port}")
            seen[port] = key
        return self


class LocalSpec(Model):
    data_dir: str = Field(
        "/var/lib/hastack",
        description="Root of node data and config; each stack gets `<dataDir>/<stack>`. Removed by destroy. "
        "Default: /var/lib/hastack.",
    )
    runtime_dir: str = Field(
        "/opt/hastack",
        description="Where setup installed the service virtualenv (Patroni, supervisor) and Consul. "
        "Default: /opt/hastack.",
    )
    service_user: str = Field("hastack", description="Unprivileged user that runs every service. Default: hastack.")
    address_base: int = Field(
        10,
        ge=1,
        le=240,
        description="Zone i (1-based) uses loopback addresses 127.0.<addressBase+i>.x. Default: 10.",
    )
    postgres_bin_dir: str | None = Field(
        None, description="Postgres binaries. Default: /usr/lib/postgresql/<postgres.version>/bin."
    )
    health_timeout_s: int = Field(
        180, ge=10, le=1800, description="How long `pulumi up` waits for the stack to be healthy. Default: 180."
    )

    @field_validator("data_dir", "runtime_dir")
    @classmethod
    def _abs(cls, v: str) -> str:
        if not v.startswith("/") or v.rstrip("/") in ("", "/usr", "/var", "/etc", "/opt", "/home", "/root"):
            raise ValueError("must be an absolute path below a system folder")
        return v.rstrip("/")


class AwsInstanceTypes(Model):
    consul: str = Field("t3.small", description="Consul servers. Default: t3.small.")
    postgres: str = Field("r6i.large", description="Postgres nodes. Default: r6i.large.")
    proxy: str = Field("c6i.large", description="Proxies. Default: c6i.large.")
    monitoring: str = Field("t3.medium", description="Prometheus. Default: t3.medium.")


class AwsSpec(Model):
    region: str = Field("us-east-1", description="AWS region. Default: us-east-1.")
    vpc_cidr: str = Field(
        "10.40.0.0/16",
        description="IPv4 VPC CIDR, /16 to /20; it must hold a /20 private subnet per zone plus one /20 for the "
        "NAT subnet. Default: 10.40.0.0/16.",
    )
    allowed_cidrs: list[str] = Field(
        default_factory=list,
        description="Extra CIDRs allowed to reach the NLB's write/read ports (never 0.0.0.0/0). Default: only the VPC.",
    )
    instance_types: AwsInstanceTypes = Field(default_factory=AwsInstanceTypes, description="Default: see fields.")
    ami_name_filter: str = Field(
        "debian-12-amd64-*", description="AMI name filter for every host. Default: debian-12-amd64-*."
    )
    ami_owner: str = Field("136693071363", description="AMI owner (Debian). Default: 136693071363.")
    data_volume_gb: int = Field(100, ge=10, le=16384, description="gp3 data volume per Postgres node. Default: 100.")
    data_volume_iops: int = Field(3000, ge=3000, le=16000, description="gp3 IOPS. Default: 3000.")
    nat_gateway: bool = Field(
        True,
        description="One NAT gateway (in the first zone) so hosts can install packages at first boot; secrets "
        "and WAL archives use VPC endpoints, so running nodes never depend on it. Turn off with a pre-baked "
        "AMI. Default: true.",
    )
    detailed_monitoring: bool = Field(
        False, description="EC2 detailed (1-minute) CloudWatch monitoring on every host. Default: false."
    )

    @field_validator("vpc_cidr")
    @classmethod
    def _cidr(cls, v: str) -> str:
        try:
            net = ipaddress.IPv4Network(v)
        except ValueError as exc:
            raise ValueError("must be an IPv4 CIDR such as 10.40.0.0/16") from exc
        if not 16 <= net.prefixlen <= 20:
            # How many /20s the zones need is a cross-field rule: see HaStackSpec._cross.
            raise ValueError(
                "must be an IPv4 CIDR from /16 to /20 (AWS allows /16 at most, hastack cuts it into /20 subnets)"
            )
        return v

    @field_validator("allowed_cidrs")
    @classmethod
    def _no_world(cls, v: list[str]) -> list[str]:
        for i, c in enumerate(v):
            if c in ("0.0.0.0/0", "::/0"):
                raise _fail(f"allowedCidrs[{i}]", "must not open the database to the internet", c)
        return v


class KubernetesSpec(Model):
    namespace: str = Field("hastack", description="Namespace for every object. Default: hastack.")
    storage_class: str | None = Field(None, description="StorageClass for volumes. Default: the cluster's default.")
    storage_gb: int = Field(50, ge=1, le=16384, description="Postgres volume size. Default: 50.")
    render_yaml_to_directory: str | None = Field(
        None,
        description="Write manifests to this folder instead of applying them to a cluster. Default: apply.",
    )
    postgres_exporter_image: str = Field(
        "quay.io/prometheuscommunity/postgres-exporter:v0.11.1",
        description="postgres_exporter sidecar image in each Postgres pod. "
        "Default: quay.io/prometheuscommunity/postgres-exporter:v0.11.1.",
    )
    cluster_domain: str = Field(
        "cluster.local", description="The cluster's DNS domain, used in per-host addresses. Default: cluster.local."
    )
    proxy_service_type: Literal["ClusterIP", "LoadBalancer"] = Field(
        "ClusterIP",
        description="Service type of the write and read Services; LoadBalancer gets an internal load balancer "
        "annotation on AWS/GCP/Azure. Default: ClusterIP.",
    )


class HaStackSpec(Model):
    """The whole cluster. Built from the `hastack:*` keys of a stack's config."""

    platform: Platform = Field("local", description="Where to deploy: local, aws or kubernetes. Default: local.")
    environment: str = Field(
        "dev",
        description="Environment name; `prod` turns on deletion protection and stricter policies. Default: dev.",
    )
    zones: list[str] = Field(
        default_factory=lambda: ["az1", "az2", "az3"],
        description="Availability zones, 2 to 5, distinct. Default: az1, az2, az3 (local's simulated zones).",
    )
    consul: ConsulSpec = Field(default_factory=ConsulSpec, description="Consul cluster. Default: see fields.")
    postgres: PostgresSpec = Field(default_factory=PostgresSpec, description="Postgres. Default: see fields.")
    proxy: ProxySpec = Field(default_factory=ProxySpec, description="Proxy tier. Default: see fields.")
    monitoring: MonitoringSpec = Field(default_factory=MonitoringSpec, description="Default: see fields.")
    ports: PortsSpec = Field(default_factory=PortsSpec, description="Ports. Default: see fields.")
    tags: dict[str, str] = Field(default_factory=dict, description="Tags/labels on every resource. Default: none.")
    local: LocalSpec = Field(default_factory=LocalSpec, description="Local platform. Default: see fields.")
    aws: AwsSpec = Field(default_factory=AwsSpec, description="AWS platform. Default: see fields.")
    kubernetes: KubernetesSpec = Field(default_factory=KubernetesSpec, description="Kubernetes. Default: see fields.")

    @field_validator("zones")
    @classmethod
    def _zones(cls, v: list[str]) -> list[str]:
        if not 2 <= len(v) <= 5:
            raise _Rule("zones", f"zones must list between 2 and 5 zones, got {len(v)} ({v!r})")
        if len(set(v)) != len(v):
            raise _fail("zones", "must be distinct", v)
        for i, z in enumerate(v):
            if not re.match(r"^[a-z0-9][a-z0-9-]*$", z):
                raise _fail(f"zones[{i}]", "must be lowercase letters, digits and dashes", z)
        return v

    @field_validator("environment")
    @classmethod
    def _env(cls, v: str) -> str:
        if not _NAME_RE.match(v):
            raise _fail("environment", "must be lowercase letters, digits and dashes", v)
        return v

    @model_validator(mode="after")
    def _cross(self) -> HaStackSpec:
        if self.postgres.mode == "rds":
            if self.platform != "aws":
                raise _Rule(
                    "postgres.mode",
                    f"postgres.mode rds is only available on platform aws, got platform {self.platform!r}",
                )
        else:
            nodes = self.postgres_nodes
            sync = self.postgres.synchronous
            if sync.enabled and sync.standbys > nodes - 1:
                raise _Rule(
                    "postgres.synchronous.standbys",
                    f"postgres.synchronous.standbys must be <= replicas (postgres nodes - 1 = {nodes - 1}), "
                    f"got {sync.standbys}",
                )
        if self.platform == "aws":
            # platforms/aws/site.py's layout: a /20 private subnet per zone, and the last /20 for the NAT subnet.
            need = len(self.zones) + 1
            vpc = ipaddress.IPv4Network(self.aws.vpc_cidr)
            if 2 ** (20 - vpc.prefixlen) < need:
                raise _Rule(
                    "aws.vpcCidr",
                    f"aws.vpcCidr must hold {need} /20 subnets for {len(self.zones)} zones, got {self.aws.vpc_cidr}",
                )
        if self.consul.acl_default_policy == "deny" and self.platform == "local":
            raise _Rule(
                "consul.aclDefaultPolicy",
                "consul.aclDefaultPolicy deny is not supported on local (no token bootstrap), got 'deny'",
            )
        return self

    # Derived values used by every layer below; plain properties so they are never stored twice.
    @property
    def postgres_nodes(self) -> int:
        return self.postgres.nodes if self.postgres.nodes is not None else len(self.zones)

    @property
    def consul_servers(self) -> int:
        if self.postgres.mode == "rds":
            # Consul is Patroni's DCS and the Nginx proxies' DNS; RDS mode has neither.
            return 0
        if self.consul.servers is not None:
            return self.consul.servers
        n = max(3, len(self.zones))
        return n if n % 2 else n + 1

    @property
    def acl_default_policy(self) -> str | None:
        if self.consul.acl_default_policy is not None:
            return self.consul.acl_default_policy
        return None if self.platform == "local" else "deny"

    @property
    def deletion_protection(self) -> bool:
        rds = self.postgres.rds.deletion_protection
        return rds if rds is not None else self.environment == "prod"


PostgresSpec.model_rebuild()

# Top-level config keys, as they appear after the `hastack:` namespace.
CONFIG_KEYS: tuple[str, ...] = tuple(to_camel(f) for f in HaStackSpec.model_fields)


def _format_loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("function-after", "function-before"):
            continue
        else:
            out += ("." if out else "") + str(part)
    return out


_PYDANTIC_RULES = {
    "greater_than_equal": "must be >= {ge}",
    "less_than_equal": "must be <= {le}",
    "literal_error": "must be one of {expected}",
    "extra_forbidden": "is not a known setting",
    "int_parsing": "must be an integer",
    "int_type": "must be an integer",
    "bool_parsing": "must be true or false",
    "bool_type": "must be true or false",
    "string_type": "must be a string",
    "list_type": "must be a list",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
    "missing": "is required",
}


def _message(err: Mapping[str, Any], prefix: str) -> str:
    loc = _format_loc(tuple(err["loc"]))
    ctx = err.get("ctx") or {}
    inner = ctx.get("error")
    if isinstance(inner, _Rule):
        # A rule names its key relative to the model (model validators) or starting with the field
        # (field validators); join it to the location pydantic reports without repeating the field.
        parts = loc.split(".") if loc else []
        head = re.split(r"[.\[]", inner.key, maxsplit=1)[0]
        if (parts and _format_loc((parts[-1],)) == head) or (parts and parts[-1].startswith(head + "[")):
            parts = parts[:-1]
        full = ".".join([*parts, inner.key])
        text = str(inner)
        if text.startswith(inner.key):
            text = text[len(inner.key) :]
        return f"{prefix}{full}{text}"
    rule = _PYDANTIC_RULES.get(err["type"])
    if rule is None:
        rule = str(err.get("msg", "is invalid")).removeprefix("Value error, ")
    else:
        rule = rule.format(**{k: str(v) for k, v in ctx.items()})
    if err["type"] == "missing":
        return f"{prefix}{loc} {rule}"
    return f"{prefix}{loc} {rule}, got {err.get('input')!r}"


def load_spec(config: Mapping[str, Any], namespace: str = NAMESPACE) -> HaStackSpec:
    """Validate config sections (``{"consul": {...}, "zones": [...]}``) into a spec.

    Raises :class:`SpecError` listing every refused value as ``<namespace>:<key path> <rule>, got <value>``.
    """
    unknown = [k for k in config if k not in CONFIG_KEYS and k not in _SECRET_KEYS]
    problems = [
        f"{namespace}:{k} is not a known setting (known: {', '.join(CONFIG_KEYS)}), got {config[k]!r}" for k in unknown
    ]
    data = {k: v for k, v in config.items() if k in CONFIG_KEYS}
    try:
        spec = HaStackSpec.model_validate(data)
    except ValidationError as exc:
        problems += [_message(e, f"{namespace}:") for e in exc.errors(include_url=False)]
        raise SpecError(problems) from None
    if problems:
        raise SpecError(problems)
    return spec


# Secret config keys read by the program, not part of the spec (they never enter plain state).
_SECRET_KEYS = ("superuserPassword", "replicationPassword", "rewindPassword")
SECRET_KEYS: tuple[str, ...] = _SECRET_KEYS

__all__ = ["CONFIG_KEYS", "SECRET_KEYS", "HaStackSpec", "SpecError", "load_spec"]
