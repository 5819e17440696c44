"""`make status` for the local platform: per zone, each host's roles, Postgres role and lag, Consul
membership and what each proxy routes to. Reads the services' own APIs; changes nothing."""

from __future__ import annotations

import csv
import io
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from ...topology import Plan
from .health import get_json, patroni_cluster


@dataclass
class HostStatus:
    name: str
    zone: str
    role: str
    address: str
    details: list[str] = field(default_factory=list)
    ok: bool = True


def _consul_members(plan: Plan) -> dict[str, str]:
    port = plan.spec.ports.consul_http
    for h in plan.consul_servers:
        try:
            members = get_json(f"http://{h.local_address}:{port}/v1/agent/members")
        except OSError:
            continue
        # Serf status codes: 1 alive, 2 leaving, 3 left, 4 failed.
        names = {1: "alive", 2: "leaving", 3: "left", 4: "failed"}
        return {m["Name"]: names.get(m["Status"], str(m["Status"])) for m in members}
    return {}


def _consul_leader(plan: Plan) -> str | None:
    port = plan.spec.ports.consul_http
    for h in plan.consul_servers:
        try:
            leader = get_json(f"http://{h.local_address}:{port}/v1/status/leader")
            if leader:
                return str(leader).split(":")[0]
        except OSError:
            continue
    return None


def haproxy_backends(address: str, stats_port: int) -> dict[str, dict[str, str]]:
    """{listen section: {server: status}} from HAProxy's CSV stats."""
    with urllib.request.urlopen(f"http://{address}:{stats_port}/;csv", timeout=2) as resp:
        text = resp.read().decode().lstrip("# ")
    out: dict[str, dict[str, str]] = {}
    for row in csv.DictReader(io.StringIO(text)):
        if row["svname"] in ("FRONTEND", "BACKEND"):
            continue
        out.setdefault(row["pxname"], {})[row["svname"]] = row["status"]
    return out


def collect(plan: Plan) -> tuple[list[HostStatus], dict[str, Any]]:
    spec = plan.spec
    members = _consul_members(plan)
    consul_leader = _consul_leader(plan)
    cluster = patroni_cluster({h.name: f"http://{h.local_address}:{spec.ports.patroni_api}" for h in plan.postgres})
    pg = {m["name"]: m for m in (cluster or {}).get("members", [])}
    rows: list[HostStatus] = []
    for h in plan.hosts:
        st = HostStatus(h.name, h.zone, h.role, h.local_address)
        if h.role != "monitoring":
            state = members.get(h.name, "unreachable")
            leader = " (leader)" if h.role == "consul" and consul_leader == h.local_address else ""
            st.details.append(f"consul {'server' if h.role == 'consul' else 'agent'} {state}{leader}")
            st.ok &= state == "alive"
        if h.role == "postgres":
            m = pg.get(h.name)
            if m is None:
                st.details.append("patroni: not answering")
                st.ok = False
            else:
                lag = m.get("lag")
                lag_text = "" if m.get("role") == "leader" else f", lag {lag if lag is not None else '?'} B"
                st.details.append(f"postgres {m.get('role')} {m.get('state')} (timeline {m.get('timeline')}{lag_text})")
                st.ok &= m.get("state") in ("running", "streaming")
        elif h.role == "proxy":
            if spec.proxy.kind == "haproxy":
                try:
                    backends = haproxy_backends(h.local_address, spec.ports.proxy_stats)
                    for section, label in (("primary", "write"), ("replicas", "read")):
                        up = [s for s, status in backends.get(section, {}).items() if status == "UP"]
                        st.details.append(f"{label} -> {', '.join(up) or 'NOTHING'}")
                        st.ok &= bool(up) or section == "replicas"
                except OSError:
                    st.details.append("haproxy: stats not answering")
                    st.ok = False
            else:
                st.details.append(f"nginx: routes by primary.{spec.postgres.scope}.service.consul")
        elif h.role == "monitoring":
            try:
                targets = get_json(f"http://{h.local_address}:{spec.ports.prometheus}/api/v1/targets")
                active = targets["data"]["activeTargets"]
                healthy = sum(1 for t in active if t["health"] == "up")
                # "unknown" is a target not scraped yet (right after a deploy), not a failing one.
                pending = sum(1 for t in active if t["health"] == "unknown")
                note = f" ({pending} not scraped yet)" if pending else ""
                st.details.append(f"prometheus: {healthy}/{len(active)} targets up{note}")
                st.ok &= healthy + pending == len(active)
            except OSError:
                st.details.append("prometheus: not answering")
                st.ok = False
        rows.append(st)
    summary = {
        "leader": next((n for n, m in pg.items() if m.get("role") == "leader"), None),
        "sync_standbys": [n for n, m in pg.items() if m.get("role") == "sync_standby"],
        "consul_leader": consul_leader,
    }
    return rows, summary
