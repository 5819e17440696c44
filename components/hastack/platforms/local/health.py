"""Health of a running local stack: Consul, Patroni, the proxy tier and Prometheus.

Used by the health gate at the end of ``pulumi up``, by ``hastack status`` and by the drills.
"""

from __future__ import annotations

import json
import urllib.request
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class HealthTargets:
    consul_servers: list[str]  # http base URLs
    patroni: dict[str, str]  # node name -> REST base URL
    node_addresses: dict[str, str]  # node name -> postgres address
    proxies: dict[str, str]  # proxy name -> address
    write_port: int
    read_port: int
    password: str
    sync_standbys: int
    prometheus: str | None

    @classmethod
    def from_props(cls, props: dict[str, Any]) -> HealthTargets:
        return cls(
            consul_servers=list(props["consul_servers"]),
            patroni=dict(props["patroni"]),
            node_addresses=dict(props["node_addresses"]),
            proxies=dict(props["proxies"]),
            write_port=int(props["write_port"]),
            read_port=int(props["read_port"]),
            password=props["password"],
            sync_standbys=int(props["sync_standbys_expected"]),
            prometheus=props.get("prometheus") or None,
        )


def get_json(url: str, timeout: float = 2.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return json.loads(resp.read().decode() or "null")


def consul_leader(servers: list[str]) -> str | None:
    for base in servers:
        try:
            leader = get_json(f"{base}/v1/status/leader")
            if leader:
                return str(leader)
        except OSError:
            continue
    return None


def patroni_cluster(patroni: dict[str, str]) -> dict[str, Any] | None:
    """Patroni's /cluster view from the first node that answers."""
    for base in patroni.values():
        try:
            return dict(get_json(f"{base}/cluster"))
        except OSError:
            continue
    return None


def routed_to(address: str, port: int, password: str, timeout: int = 2) -> tuple[str, bool]:
    """(server address, in recovery) of the Postgres a proxy port leads to."""
    import psycopg

    with psycopg.connect(
        host=address, port=port, user="postgres", password=password, dbname="postgres", connect_timeout=timeout
    ) as conn:
        row = conn.execute("select host(inet_server_addr()), pg_is_in_recovery()").fetchone()
        assert row is not None
        return str(row[0]), bool(row[1])


def healthy(t: HealthTargets) -> dict[str, Any] | None:
    """A report if every check passes, else None (the caller retries until its deadline)."""
    if not consul_leader(t.consul_servers):
        return None
    cluster = patroni_cluster(t.patroni)
    if not cluster:
        return None
    members = cluster.get("members", [])
    leaders = [m for m in members if m.get("role") == "leader" and m.get("state") == "running"]
    if len(leaders) != 1:
        return None
    leader = leaders[0]["name"]
    syncs = [m["name"] for m in members if m.get("role") == "sync_standby" and m.get("state") == "streaming"]
    if len(syncs) < t.sync_standbys:
        return None
    if any(m.get("state") not in ("running", "streaming") for m in members):
        return None
    leader_addr = t.node_addresses[leader]
    for address in t.proxies.values():
        try:
            server, recovery = routed_to(address, t.write_port, t.password)
            if server != leader_addr or recovery:
                return None
            _, recovery = routed_to(address, t.read_port, t.password)
            if not recovery:
                return None
        except Exception:
            return None
    if t.prometheus:
        try:
            with urllib.request.urlopen(f"{t.prometheus}/-/ready", timeout=2) as resp:
                if resp.status != 200:
                    return None
        except OSError:
            return None
    return {"leader": leader, "sync_standbys": syncs}
