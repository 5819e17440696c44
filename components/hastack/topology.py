"""Plan: where each node of a cluster runs, quorum math and the blast radius of losing a zone.

Pure functions of a :class:`~hastack.spec.HaStackSpec`; shared by every platform and by the policy pack.
Hosts are keyed by role and zone (never by list position), so adding a zone never renames a host.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from .spec import HaStackSpec

Role = Literal["consul", "postgres", "proxy", "monitoring"]
ROLES: tuple[Role, ...] = ("consul", "postgres", "proxy", "monitoring")

# Labels every platform puts on what it creates (instance tags, Kubernetes labels, local resource
# inputs), so policies can find a tier and its zone whatever the platform.
LABEL_ROLE = "hastack.io/role"
LABEL_ZONE = "hastack.io/zone"
LABEL_STACK = "hastack.io/stack"
LABEL_HOST = "hastack.io/host"

# Host byte of a local loopback address for the first host of each role in a zone; the k-th extra
# host of a role adds k. Kept apart so a zone can hold up to 9 hosts of a role.
_LOCAL_HOST_BYTE: dict[Role, int] = {"consul": 1, "postgres": 11, "proxy": 21, "monitoring": 31}


@dataclass(frozen=True)
class Host:
    """One simulated or real machine of one role."""

    name: str
    role: Role
    zone: str
    zone_index: int
    ordinal: int  # 1-based index of this role's hosts within the zone
    local_address: str

    def labels(self, stack: str | None = None) -> dict[str, str]:
        out = {LABEL_ROLE: self.role, LABEL_ZONE: self.zone, LABEL_HOST: self.name}
        if stack:
            out[LABEL_STACK] = stack
        return out


@dataclass(frozen=True)
class ZoneLoss:
    """What survives the loss of one zone."""

    zone: str
    postgres_left: int
    postgres_promotable: bool
    consul_left: int
    consul_quorum: bool  # also true when the design has no Consul (managed Postgres)
    proxies_left: int
    consul_needed: bool = True  # false for managed Postgres (RDS): no Patroni, so no DCS to keep

    @property
    def survives(self) -> bool:
        return self.postgres_promotable and self.consul_quorum and self.proxies_left >= 1


@dataclass(frozen=True)
class Plan:
    spec: HaStackSpec
    consul_servers: tuple[Host, ...]
    postgres: tuple[Host, ...]
    proxies: tuple[Host, ...]
    monitoring: Host | None
    blast_radius: tuple[ZoneLoss, ...] = field(default=())

    @property
    def hosts(self) -> tuple[Host, ...]:
        mon = (self.monitoring,) if self.monitoring else ()
        return (*self.consul_servers, *self.postgres, *self.proxies, *mon)

    @property
    def consul_clients(self) -> tuple[Host, ...]:
        """Hosts that run a Consul client agent: every Postgres and proxy host."""
        return (*self.postgres, *self.proxies)

    @property
    def consul_quorum(self) -> int:
        return quorum(len(self.consul_servers))

    def host(self, name: str) -> Host:
        for h in self.hosts:
            if h.name == name:
                return h
        raise KeyError(name)

    def in_zone(self, zone: str) -> tuple[Host, ...]:
        return tuple(h for h in self.hosts if h.zone == zone)


def quorum(servers: int) -> int:
    """Raft majority for ``servers`` voters."""
    return servers // 2 + 1


def spread(count: int, zones: Sequence[str]) -> list[tuple[str, int, int]]:
    """Place ``count`` nodes round-robin over ``zones``: (zone, zone index, ordinal within zone)."""
    out = []
    per_zone: dict[str, int] = {}
    for i in range(count):
        zi = i % len(zones)
        zone = zones[zi]
        per_zone[zone] = per_zone.get(zone, 0) + 1
        out.append((zone, zi, per_zone[zone]))
    return out


def _hosts(role: Role, count: int, spec: HaStackSpec) -> tuple[Host, ...]:
    hosts = []
    for zone, zi, ordinal in spread(count, spec.zones):
        name = f"{role}-{zone}" if ordinal == 1 else f"{role}-{zone}-{ordinal}"
        byte = _LOCAL_HOST_BYTE[role] + ordinal - 1
        address = f"127.0.{spec.local.address_base + zi + 1}.{byte}"
        hosts.append(Host(name, role, zone, zi, ordinal, address))
    return tuple(hosts)


def zone_losses(
    zones: Iterable[str],
    postgres_zones: Sequence[str],
    consul_zones: Sequence[str] | None,
    proxy_zones: Sequence[str],
    *,
    strict_sync: bool = False,
) -> tuple[ZoneLoss, ...]:
    """Blast radius from the zone of every node; shared with the policy pack, which reads zones off
    resources rather than from a spec. ``consul_zones=None``: the design has no Consul at all (RDS), as
    opposed to ``[]``, Consul servers that are missing."""
    out = []
    consul_needed = consul_zones is not None
    consul_zones = consul_zones or []
    need_consul = quorum(len(consul_zones))
    for zone in zones:
        pg_left = sum(1 for z in postgres_zones if z != zone)
        # A synchronous standby is always placed outside the primary's zone, so any survivor holds every
        # acknowledged commit; strict mode also needs a second survivor to keep accepting writes.
        promotable = pg_left >= (2 if strict_sync else 1)
        c_left = sum(1 for z in consul_zones if z != zone)
        out.append(
            ZoneLoss(
                zone=zone,
                postgres_left=pg_left,
                postgres_promotable=promotable,
                consul_left=c_left,
                consul_quorum=c_left >= need_consul or not consul_needed,
                proxies_left=sum(1 for z in proxy_zones if z != zone),
                consul_needed=consul_needed,
            )
        )
    return tuple(out)


def plan(spec: HaStackSpec) -> Plan:
    """Place every node of ``spec`` in a zone and compute the blast radius."""
    consul = _hosts("consul", spec.consul_servers, spec)  # none in rds mode
    postgres = _hosts("postgres", spec.postgres_nodes, spec) if spec.postgres.mode == "patroni" else ()
    proxies = _hosts("proxy", spec.proxy.count, spec) if spec.postgres.mode == "patroni" else ()
    monitoring = _hosts("monitoring", 1, spec)[0] if spec.monitoring.enabled else None
    if spec.postgres.mode == "rds":
        # RDS Multi-AZ keeps a standby in another zone by construction.
        pg_zones: Sequence[str] = list(spec.zones)
        proxy_zones: Sequence[str] = list(spec.zones)
    else:
        pg_zones = [h.zone for h in postgres]
        proxy_zones = [h.zone for h in proxies]
    losses = zone_losses(
        spec.zones,
        pg_zones,
        [h.zone for h in consul] if spec.postgres.mode == "patroni" else None,
        proxy_zones,
        strict_sync=spec.postgres.synchronous.enabled and spec.postgres.synchronous.strict,
    )
    return Plan(spec, consul, postgres, proxies, monitoring, losses)


def format_blast_radius(losses: Iterable[ZoneLoss]) -> str:
    """A small fixed-width table, one row per zone; used in preview output and `make status`."""
    rows = [("zone lost", "postgres left", "promotable", "consul left", "quorum", "proxies left", "ok")]
    for z in losses:
        rows.append(
            (
                z.zone,
                str(z.postgres_left),
                "yes" if z.postgres_promotable else "NO",
                str(z.consul_left) if z.consul_needed else "-",
                ("yes" if z.consul_quorum else "NO") if z.consul_needed else "n/a",
                str(z.proxies_left),
                "yes" if z.survives else "NO",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)
