"""hastack's policy rules: pure functions over resources, importable without a policy server.

Every rule takes plain values (a resource's type token and properties, or the list of all resources of
a stack) plus :class:`Settings`, and returns violation messages; an empty list means the rule passes.
``policies/__main__.py`` wires them into a ``pulumi_policy.PolicyPack``; unit tests call them directly.

Rules read resources from all three platforms. A resource belongs to a tier through the labels every
platform puts on what it creates (:data:`hastack.topology.LABEL_ROLE`, ``LABEL_ZONE``, ``LABEL_HOST``):
AWS ``tags`` (or ``tagSpecifications``/ASG tag lists), Kubernetes ``metadata.labels`` and pod template
labels, and the ``labels`` input of local dynamic resources. Safety rules (encryption, ingress, public
buckets, secrets) apply to every resource of the stack, labelled or not.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from hastack.topology import (
    LABEL_HOST,
    LABEL_ROLE,
    LABEL_ZONE,
    ZoneLoss,
    format_blast_radius,
    quorum,
    spread,
    zone_losses,
)


class _Unknown:
    """A value the engine does not know yet (an output of a resource not created during preview)."""

    def __repr__(self) -> str:
        return "<unknown during preview>"

    def __bool__(self) -> bool:
        return False


UNKNOWN: Any = _Unknown()

Tier = Literal["postgres", "consul", "proxy"]

# Types, as Pulumi passes them to policies.
DYNAMIC = "pulumi-python:dynamic:Resource"
EC2_INSTANCE = "aws:ec2/instance:Instance"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
ASG = "aws:autoscaling/group:Group"
SUBNET = "aws:ec2/subnet:Subnet"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
SG_INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
SG_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
EBS_VOLUME = "aws:ebs/volume:Volume"
RDS_INSTANCE = "aws:rds/instance:Instance"
RDS_CLUSTER = "aws:rds/cluster:Cluster"
LOAD_BALANCER = "aws:lb/loadBalancer:LoadBalancer"
S3_BUCKETS = ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2")
S3_PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
S3_SSE = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
)
K8S_WORKLOADS = ("kubernetes:apps/v1:StatefulSet", "kubernetes:apps/v1:Deployment")
K8S_PDBS = ("kubernetes:policy/v1:PodDisruptionBudget", "kubernetes:policy/v1beta1:PodDisruptionBudget")
K8S_CONFIGMAP = "kubernetes:core/v1:ConfigMap"
ZONE_TOPOLOGY_KEY = "topology.kubernetes.io/zone"

WORLD_CIDRS = frozenset({"0.0.0.0/0", "::/0"})
# Postgres, Patroni REST API, Consul server RPC, serf LAN/WAN, HTTP/HTTPS/gRPC and DNS (hastack.spec defaults).
DEFAULT_PROTECTED_PORTS: tuple[int, ...] = (5432, 8008, 8300, 8301, 8302, 8500, 8501, 8502, 8600)


# --------------------------------------------------------------------------------------------------
# Inputs


@dataclass(frozen=True)
class Resource:
    """One resource as a policy sees it. ``deps`` maps a property to the URNs its value came from."""

    type: str
    name: str
    props: Mapping[str, Any]
    urn: str = ""
    id: str | None = None
    deps: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        """How messages name the resource: ``name (type)``."""
        return f"{self.name} ({self.type})"


@dataclass(frozen=True)
class Violation:
    """A failed check; ``urn`` names the offending resource when there is one."""

    message: str
    urn: str | None = None


@dataclass(frozen=True)
class Settings:
    """What a rule needs beyond the resources, read from the policy config of a stack.

    ``environment``: ``prod`` demands Postgres in >= 3 zones and RDS deletion protection. Default: dev.
    ``zones``: the zones a Kubernetes cluster schedules into, used to place replicas spread with
    ``DoNotSchedule``. Default: one zone per replica.
    ``ports``: ports that must never be open to 0.0.0.0/0. Default: Postgres, Patroni and Consul ports.
    """

    environment: str = "dev"
    zones: tuple[str, ...] = ()
    ports: tuple[int, ...] = DEFAULT_PROTECTED_PORTS

    @property
    def prod(self) -> bool:
        return self.environment == "prod"

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None) -> Settings:
        config = config or {}
        return cls(
            environment=str(config.get("environment") or "dev"),
            zones=tuple(str(z) for z in config.get("zones") or ()),
            ports=tuple(int(p) for p in config.get("ports") or DEFAULT_PROTECTED_PORTS),
        )


# JSON schema of the properties above, per policy that reads them (the engine refuses unknown keys).
CONFIG_SCHEMA: dict[str, dict[str, Any]] = {
    "environment": {"type": "string", "description": "Environment; `prod` is strictest. Default: dev."},
    "zones": {
        "type": "array",
        "items": {"type": "string"},
        "description": "Zones a Kubernetes cluster spreads replicas over. Default: one zone per replica.",
    },
    "ports": {
        "type": "array",
        "items": {"type": "integer"},
        "description": "Ports never open to the internet. Default: Postgres, Patroni and Consul ports.",
    },
}


def _get(value: Any, *path: str | int) -> Any:
    for key in path:
        if isinstance(key, int):
            if not isinstance(value, Sequence) or isinstance(value, str) or len(value) <= key:
                return None
            value = value[key]
        else:
            if not isinstance(value, Mapping):
                return None
            value = value.get(key)
    return value


def _int(value: Any) -> int | None:
    """A whole number; the engine passes every number as a float (JSON), mocks and tests as an int."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value) if float(value).is_integer() else None


def _list(value: Any) -> list[Any]:
    if value is None or value is UNKNOWN or isinstance(value, str | bytes | Mapping):
        return []
    return list(value) if isinstance(value, Iterable) else []


def _label_dict(source: Any) -> dict[str, str]:
    """Tags or labels as a dict, from a mapping or an ASG-style list of ``{key, value}``."""
    if isinstance(source, Mapping):
        return {str(k): str(v) for k, v in source.items() if isinstance(v, str | int | float | bool)}
    out: dict[str, str] = {}
    for item in _list(source):
        if isinstance(item, Mapping) and isinstance(item.get("key"), str) and item.get("value") is not None:
            out[item["key"]] = str(item["value"])
    return out


def labels(props: Mapping[str, Any]) -> dict[str, str]:
    """Every hastack label of a resource, wherever its platform keeps them."""
    out: dict[str, str] = {}
    for spec in _list(props.get("tagSpecifications")):
        out.update(_label_dict(_get(spec, "tags")))
    for source in (
        _get(props, "spec", "template", "metadata", "labels"),
        _get(props, "metadata", "labels"),
        props.get("tagsAll"),
        props.get("tags"),
        props.get("labels"),
    ):
        out.update(_label_dict(source))
    return out


def is_hastack(props: Mapping[str, Any]) -> bool:
    return LABEL_ROLE in labels(props)


# --------------------------------------------------------------------------------------------------
# Nodes of each tier, whatever the platform


@dataclass(frozen=True)
class Node:
    tier: Tier
    zone: str
    host: str
    resource: Resource


_PROGRAMS: dict[Tier, tuple[str, ...]] = {
    "postgres": ("patroni",),
    "consul": ("consul",),
    "proxy": ("haproxy", "nginx"),
}


def _program(props: Mapping[str, Any]) -> str:
    program = props.get("program")
    return program.rsplit("/", 1)[-1] if isinstance(program, str) else ""


def _tier_of(res: Resource) -> Tier | None:
    role = labels(res.props).get(LABEL_ROLE)
    if role not in _PROGRAMS:
        return None
    tier: Tier = role
    if res.type in (EC2_INSTANCE, LAUNCH_TEMPLATE, ASG, *K8S_WORKLOADS):
        return tier
    # Local: a host runs several processes (a Consul client beside Patroni); the program decides.
    if res.props.get("kind") == "process" and _program(res.props).startswith(_PROGRAMS[tier]):
        return tier
    return None


def _has_zone_spread(props: Mapping[str, Any]) -> bool:
    """A hard zone constraint that counts this workload's own pods (one selecting other pods spreads nothing)."""
    pods = _label_dict(_get(props, "spec", "template", "metadata", "labels"))
    return any(
        _get(c, "topologyKey") == ZONE_TOPOLOGY_KEY
        and _get(c, "whenUnsatisfiable") == "DoNotSchedule"
        and _selects(_get(c, "labelSelector"), pods)
        for c in _list(_get(props, "spec", "template", "spec", "topologySpreadConstraints"))
    )


def _replicas(props: Mapping[str, Any], default: int = 1) -> int:
    value = _get(props, "spec", "replicas")
    n = _int(value)
    return n if n is not None else default


def tier_nodes(resources: Iterable[Resource], settings: Settings = Settings()) -> list[Node]:
    """Every Postgres, Consul server and proxy node, one per host, with its zone.

    A Kubernetes workload stands for its replicas: in its labelled zone, or spread over
    ``settings.zones`` when a ``DoNotSchedule`` zone constraint selects its pods, which places them
    round-robin, min(replicas, zones) zones wide (all in one zone otherwise).
    """
    out: dict[tuple[str, str], Node] = {}
    for res in resources:
        tier = _tier_of(res)
        if tier is None:
            continue
        lb = labels(res.props)
        zone = lb.get(LABEL_ZONE)
        if res.type in K8S_WORKLOADS:
            count = _replicas(res.props)
            if zone:
                zones = [zone] * count
            elif _has_zone_spread(res.props):
                names = settings.zones or tuple(f"zone-{i + 1}" for i in range(count))
                zones = [z for z, _, _ in spread(count, names)]
            else:
                zones = ["(unspread)"] * count
            for i, z in enumerate(zones):
                out[(tier, f"{res.name}-{i}")] = Node(tier, z, f"{res.name}-{i}", res)
            continue
        size = res.props.get("minSize") if res.type == ASG else 1
        count = max(_int(size) or 1, 1)
        host = lb.get(LABEL_HOST) or res.urn or res.name
        for i in range(count):
            key = host if i == 0 else f"{host}#{i}"
            # The host label dedupes an instance and its launch template; keep the first seen.
            out.setdefault((tier, key), Node(tier, zone or "(no zone label)", key, res))
    return list(out.values())


def _rds_primaries(resources: Iterable[Resource]) -> list[Resource]:
    return [r for r in resources if r.type == RDS_INSTANCE and not r.props.get("replicateSourceDb")]


def stack_zones(resources: Sequence[Resource], nodes: Sequence[Node], settings: Settings) -> list[str]:
    """Every zone the stack uses: configured zones, zone labels and tier nodes, sorted."""
    seen: dict[str, None] = {}
    for z in settings.zones:
        seen[z] = None
    for res in resources:
        label = labels(res.props).get(LABEL_ZONE)
        if label:
            seen[label] = None
    for n in nodes:
        seen[n.zone] = None
    return sorted(seen)


def _names(nodes: Iterable[Node]) -> str:
    return ", ".join(sorted(f"{n.host}@{n.zone}" for n in nodes))


def _by_zone(nodes: Iterable[Node]) -> dict[str, list[Node]]:
    out: dict[str, list[Node]] = {}
    for n in nodes:
        out.setdefault(n.zone, []).append(n)
    return out


# --------------------------------------------------------------------------------------------------
# Redundancy (stack rules)


def postgres_zone_spread(resources: Sequence[Resource], settings: Settings) -> list[Violation]:
    """Postgres nodes span >= 2 zones (>= 3 in prod), so every zone has a promotable node outside it."""
    nodes = [n for n in tier_nodes(resources, settings) if n.tier == "postgres"]
    if not nodes:
        return []
    need = 3 if settings.prod else 2
    zones = _by_zone(nodes)
    if len(zones) >= need:
        return []
    alone = [z for z, members in zones.items() if len(members) == len(nodes)]
    lost = f"; losing zone {alone[0]} leaves no promotable replica" if alone else ""
    return [
        Violation(
            f"Postgres nodes span {len(zones)} zone(s), need >= {need} in {settings.environment}{lost}: {_names(nodes)}"
        )
    ]


def consul_quorum(resources: Sequence[Resource], settings: Settings) -> list[Violation]:
    """Consul servers: an odd count >= 3, placed so that losing any single zone keeps quorum.

    Patroni nodes need them; managed Postgres (RDS instances are not tier nodes) does not."""
    nodes = tier_nodes(resources, settings)
    servers = [n for n in nodes if n.tier == "consul"]
    if not servers:
        if any(n.tier == "postgres" for n in nodes):
            return [Violation("Patroni nodes exist but no Consul server does (Patroni's DCS has no quorum)")]
        return []
    out = []
    n = len(servers)
    if n < 3 or n % 2 == 0:
        out.append(Violation(f"Consul servers must be an odd count >= 3, got {n}: {_names(servers)}"))
    need = quorum(n)
    for zone, members in _by_zone(servers).items():
        if n - len(members) < need:
            out.append(
                Violation(
                    f"losing zone {zone} leaves {n - len(members)} of {n} Consul servers, quorum needs {need}: "
                    f"{_names(members)} are in {zone}"
                )
            )
    return out


def proxy_tier_spread(resources: Sequence[Resource], settings: Settings) -> list[Violation]:
    """Proxy tier: >= 2 members in >= 2 zones (not applicable in RDS mode, which has no proxy tier)."""
    nodes = tier_nodes(resources, settings)
    proxies = [n for n in nodes if n.tier == "proxy"]
    if not proxies:
        if any(n.tier == "postgres" for n in nodes):
            return [Violation("Postgres nodes exist but the proxy tier has no member")]
        return []
    zones = _by_zone(proxies)
    if len(proxies) < 2 or len(zones) < 2:
        return [
            Violation(
                f"proxy tier has {len(proxies)} member(s) in {len(zones)} zone(s), need >= 2 in >= 2 zones: "
                f"{_names(proxies)}"
            )
        ]
    return []


def _subnet_zone(subnet: Resource) -> str | None:
    zone = labels(subnet.props).get(LABEL_ZONE) or subnet.props.get("availabilityZone")
    return zone if isinstance(zone, str) and zone else None


def _subnet_zones(lb: Resource, resources: Sequence[Resource]) -> tuple[set[str], int]:
    """Zones of a load balancer's subnets, and how many subnets could not be placed in a zone."""
    ids = [*_list(lb.props.get("subnets")), *(_get(m, "subnetId") for m in _list(lb.props.get("subnetMappings")))]
    dep_urns = {*lb.deps.get("subnets", ()), *lb.deps.get("subnetMappings", ())}
    subnets: dict[str, Resource] = {}
    for s in resources:
        if s.type != SUBNET:
            continue
        # During preview subnet ids are unknown, but the engine says which subnets a property came from.
        by_dep = bool(s.urn) and s.urn in dep_urns
        by_id = any(isinstance(i, str) and i and i in (s.id, s.props.get("id")) for i in ids)
        if by_dep or by_id:
            subnets[s.urn or s.name] = s
    zones = {z for z in (_subnet_zone(s) for s in subnets.values()) if z}
    placed = sum(1 for s in subnets.values() if _subnet_zone(s))
    return zones, max(0, len(ids) - placed)


def nlb_zone_coverage(resources: Sequence[Resource], settings: Settings) -> list[Violation]:
    """NLBs balance across zones and have a subnet in every zone that holds a database node."""
    lbs = [r for r in resources if r.type == LOAD_BALANCER and r.props.get("loadBalancerType") == "network"]
    if not lbs:
        return []
    db_zones = sorted({n.zone for n in tier_nodes(resources, settings) if n.tier == "postgres"})
    out = []
    for lb in lbs:
        if lb.props.get("enableCrossZoneLoadBalancing") is not True:
            out.append(
                Violation(
                    f"{lb.ref}: enableCrossZoneLoadBalancing must be true, got "
                    f"{lb.props.get('enableCrossZoneLoadBalancing')!r} (a proxy lost in one zone would black-hole "
                    f"that zone's share of clients)",
                    lb.urn or None,
                )
            )
        covered, unresolved = _subnet_zones(lb, resources)
        missing = [z for z in db_zones if z not in covered]
        if missing:
            detail = f" ({unresolved} subnet(s) of unknown zone)" if unresolved else ""
            out.append(
                Violation(
                    f"{lb.ref}: subnets cover zones {sorted(covered)}{detail}, missing database zone(s) {missing}",
                    lb.urn or None,
                )
            )
    return out


def rds_resilience(type_: str, props: Mapping[str, Any], settings: Settings) -> list[str]:
    """RDS: Multi-AZ, backup retention >= 7 days, deletion protection in prod (read replicas: prod only)."""
    if type_ != RDS_INSTANCE:
        return []
    out = []
    replica = bool(props.get("replicateSourceDb"))
    if not replica:
        if props.get("multiAz") is not True:
            out.append(f"multiAz must be true, got {props.get('multiAz')!r}")
        retention = props.get("backupRetentionPeriod")
        if retention is not UNKNOWN and (_int(retention) or 0) < 7:
            out.append(f"backupRetentionPeriod must be >= 7 days, got {retention!r}")
    if settings.prod and props.get("deletionProtection") is not True:
        out.append(f"deletionProtection must be true in prod, got {props.get('deletionProtection')!r}")
    return out


def _selects(selector: Any, pod_labels: Mapping[str, str]) -> bool:
    """Whether a label selector (matchLabels + matchExpressions) matches ``pod_labels``; empty matches nothing."""
    match = _label_dict(_get(selector, "matchLabels"))
    exprs = _list(_get(selector, "matchExpressions"))
    if not match and not exprs:
        return False
    if any(pod_labels.get(k) != v for k, v in match.items()):
        return False
    for e in exprs:
        key, op, values = _get(e, "key"), _get(e, "operator"), [str(v) for v in _list(_get(e, "values"))]
        present = key in pod_labels
        ok = {
            "In": present and pod_labels.get(key) in values,
            "NotIn": not present or pod_labels.get(key) not in values,
            "Exists": present,
            "DoesNotExist": not present,
        }.get(str(op), False)
        if not ok:
            return False
    return True


def _pod_labels(props: Mapping[str, Any]) -> dict[str, str]:
    return _label_dict(_get(props, "spec", "template", "metadata", "labels"))


def kubernetes_zone_spread(type_: str, props: Mapping[str, Any], settings: Settings) -> list[str]:
    """A hastack StatefulSet/Deployment spreads its pods over zones with ``whenUnsatisfiable: DoNotSchedule``."""
    if type_ not in K8S_WORKLOADS or not is_hastack(props):
        return []
    constraints = [
        c
        for c in _list(_get(props, "spec", "template", "spec", "topologySpreadConstraints"))
        if _get(c, "topologyKey") == ZONE_TOPOLOGY_KEY
    ]
    if not constraints:
        return [f"no topologySpreadConstraint with topologyKey {ZONE_TOPOLOGY_KEY}: pods may share one zone"]
    out = []
    hard = [c for c in constraints if _get(c, "whenUnsatisfiable") == "DoNotSchedule"]
    if not hard:
        got = [_get(c, "whenUnsatisfiable") for c in constraints]
        out.append(f"zone topologySpreadConstraint must use whenUnsatisfiable DoNotSchedule, got {got}")
    pods = _pod_labels(props)
    if hard and not any(_selects(_get(c, "labelSelector"), pods) for c in hard):
        out.append(f"zone topologySpreadConstraint's labelSelector does not select this workload's pods {pods}")
    return out


def kubernetes_pdb(resources: Sequence[Resource], settings: Settings) -> list[Violation]:
    """Every hastack StatefulSet and Deployment has a PodDisruptionBudget selecting its pods."""
    pdbs = [r for r in resources if r.type in K8S_PDBS]
    out = []
    for w in resources:
        if w.type not in K8S_WORKLOADS or not is_hastack(w.props):
            continue
        ns = _get(w.props, "metadata", "namespace")
        pods = _pod_labels(w.props)
        covered = any(
            _selects(_get(p.props, "spec", "selector"), pods)
            and (ns is None or _get(p.props, "metadata", "namespace") in (None, ns))
            for p in pdbs
        )
        if not covered:
            out.append(Violation(f"{w.ref} has no PodDisruptionBudget selecting its pods {pods}", w.urn or None))
    return out


# --------------------------------------------------------------------------------------------------
# Safety


def _unencrypted_block_devices(type_: str, props: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    if type_ == EC2_INSTANCE:
        devices = [("rootBlockDevice", props.get("rootBlockDevice"))]
        devices += [(f"ebsBlockDevices[{i}]", d) for i, d in enumerate(_list(props.get("ebsBlockDevices")))]
    elif type_ == LAUNCH_TEMPLATE:
        devices = [
            (f"blockDeviceMappings[{i}].ebs", _get(m, "ebs"))
            for i, m in enumerate(_list(props.get("blockDeviceMappings")))
            if _get(m, "ebs") is not None
        ]
    else:
        return out
    for where, device in devices:
        if isinstance(device, Mapping):
            enc = device.get("encrypted")
            if enc is not UNKNOWN and enc not in (True, "true"):
                out.append(f"{where}.encrypted must be true, got {enc!r}")
    return out


def encryption_at_rest(resources: Sequence[Resource], settings: Settings) -> list[Violation]:
    """EBS volumes, instance/launch template block devices, RDS storage and S3 buckets are encrypted."""
    out = []
    for r in resources:
        p = r.props
        if r.type == EBS_VOLUME and p.get("encrypted") is not True and p.get("encrypted") is not UNKNOWN:
            out.append(Violation(f"{r.ref}: encrypted must be true, got {p.get('encrypted')!r}", r.urn or None))
        elif r.type in (RDS_INSTANCE, RDS_CLUSTER) and not p.get("replicateSourceDb"):
            if p.get("storageEncrypted") is not True and p.get("storageEncrypted") is not UNKNOWN:
                out.append(
                    Violation(
                        f"{r.ref}: storageEncrypted must be true, got {p.get('storageEncrypted')!r}", r.urn or None
                    )
                )
        elif r.type in (EC2_INSTANCE, LAUNCH_TEMPLATE):
            out += [Violation(f"{r.ref}: {m}", r.urn or None) for m in _unencrypted_block_devices(r.type, p)]
        elif r.type in S3_BUCKETS:
            inline = _get(p, "serverSideEncryptionConfiguration", "rule", "applyServerSideEncryptionByDefault")
            inline = inline or _get(p, "serverSideEncryptionConfiguration", "rules", 0)
            config = next((c for c in resources if c.type in S3_SSE and _points_at(c, "bucket", r)), None)
            if not inline and config is None:
                out.append(
                    Violation(
                        f"{r.ref}: no server-side encryption configuration "
                        f"(add a BucketServerSideEncryptionConfiguration for it)",
                        r.urn or None,
                    )
                )
    return out


def _points_at(res: Resource, prop: str, target: Resource) -> bool:
    """Whether ``res.props[prop]`` refers to ``target``: by dependency, id or bucket name."""
    if target.urn and target.urn in res.deps.get(prop, ()):
        return True
    value = res.props.get(prop)
    return (
        isinstance(value, str)
        and value not in ("", UNKNOWN)
        and value in (target.id, target.props.get("id"), target.props.get("bucket"), target.name)
    )


def _ports_hit(from_port: Any, to_port: Any, protocol: Any, protected: Iterable[int]) -> list[int]:
    proto = str(protocol).lower() if protocol is not None else "tcp"
    if proto in ("icmp", "icmpv6", "1", "58"):
        return []
    if proto in ("-1", "all"):
        return sorted(protected)
    lo = _int(from_port)
    hi = _int(to_port) if _int(to_port) is not None else lo
    if lo is None:
        return []
    if lo == 0 and hi in (0, 65535):
        return sorted(protected)
    return sorted(p for p in protected if lo <= p <= (hi if hi is not None else lo))


def no_public_database_ingress(type_: str, props: Mapping[str, Any], settings: Settings) -> list[str]:
    """No ingress from 0.0.0.0/0 or ::/0 on Postgres, Patroni or Consul ports."""
    rules: list[tuple[str, list[str], Any, Any, Any]] = []
    if type_ == SECURITY_GROUP:
        for i, r in enumerate(_list(props.get("ingress"))):
            cidrs = [*_list(_get(r, "cidrBlocks")), *_list(_get(r, "ipv6CidrBlocks"))]
            rules.append((f"ingress[{i}]", cidrs, _get(r, "fromPort"), _get(r, "toPort"), _get(r, "protocol")))
    elif type_ == SG_INGRESS_RULE:
        cidrs = [c for c in (props.get("cidrIpv4"), props.get("cidrIpv6")) if c]
        rules.append(("rule", cidrs, props.get("fromPort"), props.get("toPort"), props.get("ipProtocol")))
    elif type_ == SG_RULE and props.get("type") == "ingress":
        cidrs = [*_list(props.get("cidrBlocks")), *_list(props.get("ipv6CidrBlocks"))]
        rules.append(("rule", cidrs, props.get("fromPort"), props.get("toPort"), props.get("protocol")))
    out = []
    for where, cidrs, lo, hi, proto in rules:
        world = sorted(WORLD_CIDRS.intersection(c for c in cidrs if isinstance(c, str)))
        if not world:
            continue
        hit = _ports_hit(lo, hi, proto, settings.ports)
        if hit:
            out.append(f"{where} opens port(s) {hit} to {', '.join(world)} (ports {lo}-{hi}, protocol {proto})")
    return out


def backup_bucket_private(resources: Sequence[Resource], settings: Settings) -> list[Violation]:
    """Every S3 bucket (the backup bucket) has a public access block with all four settings on."""
    flags = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    blocks = [r for r in resources if r.type == S3_PUBLIC_ACCESS_BLOCK]
    out = []
    for bucket in (r for r in resources if r.type in S3_BUCKETS):
        block = next((b for b in blocks if _points_at(b, "bucket", bucket)), None)
        if block is None:
            out.append(Violation(f"{bucket.ref} has no BucketPublicAccessBlock", bucket.urn or None))
            continue
        off = [f for f in flags if block.props.get(f) is not True and block.props.get(f) is not UNKNOWN]
        if off:
            out.append(Violation(f"{block.ref} for {bucket.ref} must set {off} to true", block.urn or None))
    return out


# A key that names a secret, then `:` or `=`, then a value. The key must *end* with the secret word so
# settings such as `password_encryption` or `enable_token_persistence` are not taken for secrets.
_SECRET_ASSIGNMENT = re.compile(
    r"""(?imx)
    (?P<key>[A-Za-z0-9_.\-]*(?:password|passwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|encrypt))
    ["']?[ \t]*[:=][ \t]*(?P<value>[^\r\n]*)
    """
)
_CREDENTIALS_IN_URI = re.compile(r"(?i)\b[a-z][a-z0-9+.-]*://[^/\s:@]+:(?P<value>[^@\s/]+)@")
# Values that say where a secret comes from instead of holding it.
_REFERENCE = re.compile(
    r"""(?ix)^(
      | null | none | ~ | true | false | \d{1,4}
      | \$\{?[A-Za-z_]\w*\}? | \$\(.*\) | .*\{\{.*\}\}.* | .*\$\{.*\}.* | <.*> | \*+ | %\(.*\)s
      | (arn|ssm|secretsmanager|vault|file|env|sm|aws-sm|k8s-secret):.* | /\S*
    )$"""
)


# Anywhere in a value: a shell substitution, a template or a printf format fills the secret in at boot.
_FILLED_IN = re.compile(r"\$\(|\$\{|\{\{|%s|%\(\w+\)s")


def _is_reference(value: str) -> bool:
    return bool(_REFERENCE.match(value) or _FILLED_IN.search(value))


def find_plaintext_secrets(text: str) -> list[str]:
    """Keys (or URIs) in ``text`` that are given a literal secret value; values are never echoed."""
    found = []
    for m in _SECRET_ASSIGNMENT.finditer(text):
        value = m.group("value").strip().rstrip(",;").strip().strip("'\"").strip()
        if not _is_reference(value):
            found.append(m.group("key"))
    found += ["credentials in a URI" for m in _CREDENTIALS_IN_URI.finditer(text) if not _is_reference(m["value"])]
    return found


def decode_user_data(value: Any) -> str:
    """User data as text: plain, base64 (launch templates, ``userDataBase64``) or gzip inside base64."""
    if not isinstance(value, str) or not value or value is UNKNOWN:
        return ""
    text = value
    compact = value.strip()
    if re.fullmatch(r"[A-Za-z0-9+/=\s]+", compact) and len(compact) % 4 == 0 and len(compact) >= 16:
        try:
            raw = base64.b64decode(compact, validate=False)
            if raw[:2] == b"\x1f\x8b":
                raw = gzip.decompress(raw)
            text = raw.decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, OSError, EOFError):
            text = value
    return text


def _octal_mode(mode: Any) -> int | None:
    if _int(mode) is not None:
        return _int(mode)
    if isinstance(mode, str) and re.fullmatch(r"0?o?[0-7]{3,4}", mode):
        return int(mode.replace("o", ""), 8)
    return None


def no_plaintext_secrets(type_: str, props: Mapping[str, Any], settings: Settings) -> list[str]:
    """No literal secret in user data or ConfigMaps; local secret files are 0600 and marked secret."""
    out = []
    if type_ in (EC2_INSTANCE, LAUNCH_TEMPLATE):
        for key in ("userData", "userDataBase64"):
            keys = find_plaintext_secrets(decode_user_data(props.get(key)))
            if keys:
                out.append(f"{key} holds plain-text secret(s) for {sorted(set(keys))}; read them at boot instead")
    elif type_ == K8S_CONFIGMAP:
        for name, content in _label_dict(props.get("data")).items():
            keys = find_plaintext_secrets(content)
            if re.search(r"(?i)(password|passwd|secret|token|api[_-]?key)$", name) and content.strip():
                keys.append(name)
            if keys:
                out.append(f"data[{name}] holds plain-text secret(s) for {sorted(set(keys))}; use a Secret")
    elif not type_.startswith(("aws:", "kubernetes:")) and props.get("kind") in ("file", "secret"):
        # A `secret` resource without a path is a generated value kept only in (encrypted) Pulumi state.
        on_disk = props.get("kind") == "file" or bool(props.get("path"))
        secret = props.get("secret") is True or props.get("kind") == "secret"
        mode = _octal_mode(props.get("mode"))
        path = str(props.get("path") or "(no path)")
        if on_disk and secret and props.get("mode") is not UNKNOWN and (mode is None or mode & 0o077):
            out.append(f"{path} holds a secret but its mode is {props.get('mode')!r}; it must be 0600")
        text = props.get("content")
        if not secret and isinstance(text, str):
            keys = find_plaintext_secrets(text)
            if keys:
                out.append(f"{path} holds plain-text secret(s) for {sorted(set(keys))} but is not marked secret")
    return out


# --------------------------------------------------------------------------------------------------
# Blast radius


def blast_radius(resources: Sequence[Resource], settings: Settings = Settings()) -> tuple[ZoneLoss, ...]:
    """Per zone: what survives its loss, from the zone of every node (RDS Multi-AZ counts in every zone).

    Managed Postgres (RDS, no Patroni node) needs no Consul: without Consul servers the quorum question
    does not apply. Consul servers that do exist are always held to their quorum."""
    nodes = tier_nodes(resources, settings)
    zones = stack_zones(resources, nodes, settings)
    pg = [n.zone for n in nodes if n.tier == "postgres"]
    proxies = [n.zone for n in nodes if n.tier == "proxy"]
    consul: list[str] | None = [n.zone for n in nodes if n.tier == "consul"]
    rds = _rds_primaries(resources)
    if rds and not pg and not consul:
        consul = None
    for db in rds:
        # Multi-AZ keeps a synchronous standby in another zone and moves the endpoint with it.
        pg += list(zones) if db.props.get("multiAz") is True else [str(db.props.get("availabilityZone") or "?")]
        if not any(n.tier == "proxy" for n in nodes):
            proxies = list(zones)
    return zone_losses(zones, pg, consul, proxies)


def blast_radius_violations(losses: Sequence[ZoneLoss]) -> list[Violation]:
    out = []
    for z in losses:
        broken = []
        if not z.postgres_promotable:
            broken.append(f"Postgres keeps no promotable synchronous copy ({z.postgres_left} left)")
        if z.consul_needed and not z.consul_quorum:
            broken.append(f"Consul loses quorum ({z.consul_left} servers left)")
        if z.proxies_left < 1:
            broken.append("the proxy tier keeps no member")
        if broken:
            out.append(Violation(f"losing zone {z.zone}: " + "; ".join(broken)))
    return out


def blast_radius_report(resources: Sequence[Resource], settings: Settings = Settings()) -> tuple[str, list[Violation]]:
    """The per-zone table for the preview output and the violations it implies."""
    losses = blast_radius(resources, settings)
    if not losses:
        return "", []
    table = format_blast_radius(losses)
    return table, blast_radius_violations(losses)


# --------------------------------------------------------------------------------------------------
# Registry: what __main__ wires into the pack, and what the docs list


ResourceRule = Callable[[str, Mapping[str, Any], Settings], list[str]]
StackRule = Callable[[Sequence[Resource], Settings], list[Violation]]


@dataclass(frozen=True)
class Rule:
    """A named rule: exactly one of ``resource`` (per resource) or ``stack`` (whole stack) is set."""

    name: str
    description: str
    resource: ResourceRule | None = None
    stack: StackRule | None = None
    config: tuple[str, ...] = ()


def _blast_radius_rule(resources: Sequence[Resource], settings: Settings) -> list[Violation]:
    return blast_radius_report(resources, settings)[1]


RULES: tuple[Rule, ...] = (
    Rule(
        "postgres-zone-spread",
        "Postgres nodes span >= 2 zones (>= 3 in prod), each zone with a promotable node outside it.",
        stack=postgres_zone_spread,
        config=("environment", "zones"),
    ),
    Rule(
        "consul-quorum",
        "Consul servers are an odd count >= 3 and keep quorum when any one zone is lost.",
        stack=consul_quorum,
        config=("zones",),
    ),
    Rule(
        "proxy-tier-spread",
        "The proxy tier has >= 2 members in >= 2 zones.",
        stack=proxy_tier_spread,
        config=("zones",),
    ),
    Rule(
        "nlb-zone-coverage",
        "NLBs balance across zones and have a subnet in every zone with a database node.",
        stack=nlb_zone_coverage,
    ),
    Rule(
        "rds-resilience",
        "RDS is Multi-AZ, keeps >= 7 days of backups and, in prod, has deletion protection.",
        resource=rds_resilience,
        config=("environment",),
    ),
    Rule(
        "kubernetes-zone-spread",
        "hastack StatefulSets and Deployments spread their pods over zones with DoNotSchedule.",
        resource=kubernetes_zone_spread,
    ),
    Rule(
        "kubernetes-pdb",
        "Every hastack StatefulSet and Deployment has a PodDisruptionBudget selecting its pods.",
        stack=kubernetes_pdb,
    ),
    Rule(
        "encryption-at-rest",
        "EBS volumes, instance block devices, RDS storage and S3 buckets are encrypted at rest.",
        stack=encryption_at_rest,
    ),
    Rule(
        "no-public-database-ingress",
        "No 0.0.0.0/0 or ::/0 ingress on Postgres, Patroni or Consul ports.",
        resource=no_public_database_ingress,
        config=("ports",),
    ),
    Rule(
        "backup-bucket-private",
        "The backup bucket blocks every form of public access.",
        stack=backup_bucket_private,
    ),
    Rule(
        "no-plaintext-secrets",
        "No plain-text secrets in user data, ConfigMaps or local config files (secret files are 0600).",
        resource=no_plaintext_secrets,
    ),
    Rule(
        "blast-radius",
        "Losing any one zone leaves Postgres a promotable synchronous copy, Consul its quorum and the proxy "
        "tier a member.",
        stack=_blast_radius_rule,
        config=("zones",),
    ),
)
RULE_NAMES: tuple[str, ...] = tuple(r.name for r in RULES)


def run_stack(resources: Sequence[Resource], settings: Settings = Settings()) -> dict[str, list[Violation]]:
    """Every rule over a whole stack, as the pack would run them; used by tests and ``make`` helpers."""
    out: dict[str, list[Violation]] = {}
    for rule in RULES:
        if rule.stack is not None:
            out[rule.name] = rule.stack(resources, settings)
        elif rule.resource is not None:
            check = rule.resource
            out[rule.name] = [
                Violation(f"{r.ref}: {m}", r.urn or None) for r in resources for m in check(r.type, r.props, settings)
            ]
    return out
