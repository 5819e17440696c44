"""Checks the local machine before any local resource is registered: binaries, the service user and
free ports. Problems are reported like spec errors: the config key, the value and the rule."""

from __future__ import annotations

import os
import pwd
import socket
from dataclasses import dataclass

from ...spec import HaStackSpec, SpecError
from ...topology import Plan
from . import supervisor as sv


@dataclass(frozen=True)
class Binaries:
    consul: str
    patroni: str
    supervisord: str
    postgres_bin: str
    haproxy: str = "/usr/sbin/haproxy"
    nginx: str = "/usr/sbin/nginx"
    nginx_stream_module: str = "/usr/lib/nginx/modules/ngx_stream_module.so"
    prometheus: str = "/usr/bin/prometheus"
    postgres_exporter: str = "/usr/bin/prometheus-postgres-exporter"
    tini: str = "/usr/bin/tini"


def binaries(spec: HaStackSpec) -> Binaries:
    rt = spec.local.runtime_dir
    return Binaries(
        consul=f"{rt}/bin/consul",
        patroni=f"{rt}/venv/bin/patroni",
        supervisord=f"{rt}/venv/bin/supervisord",
        postgres_bin=spec.local.postgres_bin_dir or f"/usr/lib/postgresql/{spec.postgres.version}/bin",
    )


def bound_ports(plan: Plan) -> list[tuple[str, int, str]]:
    """(address, port, what) for every listening socket the local stack will open."""
    p = plan.spec.ports
    out: list[tuple[str, int, str]] = []
    for h in plan.hosts:
        a = h.local_address
        if h.role != "monitoring":
            out += [(a, p.consul_http, f"{h.name} consul http"), (a, p.consul_dns, f"{h.name} consul dns"),
                    (a, p.consul_serf_lan, f"{h.name} consul serf")]  # fmt: skip
        if h.role == "consul":
            out.append((a, p.consul_server, f"{h.name} consul server rpc"))
        elif h.role == "postgres":
            out += [(a, p.postgres, f"{h.name} postgres"), (a, p.patroni_api, f"{h.name} patroni api"),
                    (a, p.postgres_exporter, f"{h.name} postgres_exporter")]  # fmt: skip
        elif h.role == "proxy":
            out += [(a, p.proxy_write, f"{h.name} write port"), (a, p.proxy_read, f"{h.name} read port"),
                    (a, p.proxy_stats, f"{h.name} stats")]  # fmt: skip
            if plan.spec.proxy.kind == "haproxy":
                out.append((a, p.proxy_metrics, f"{h.name} metrics"))
        elif h.role == "monitoring":
            out.append((a, p.prometheus, f"{h.name} prometheus"))
    return out


def _listening(address: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex((address, port)) == 0


def check(spec: HaStackSpec, plan: Plan, stack: str) -> Binaries:
    """Raise :class:`SpecError` listing every problem; return the binaries to use."""
    b = binaries(spec)
    ns = "hastack"
    problems: list[str] = []
    for path, key, hint in (
        (b.consul, "local.runtimeDir", "consul 1.8.7"),
        (b.patroni, "local.runtimeDir", "Patroni"),
        (b.supervisord, "local.runtimeDir", "supervisord"),
        (b.tini, "postgres.mode", "tini (reaps the postmaster Patroni detaches)"),
        (f"{b.postgres_bin}/postgres", "local.postgresBinDir", f"PostgreSQL {spec.postgres.version}"),
        (b.prometheus if spec.monitoring.enabled else None, "monitoring.enabled", "Prometheus"),
        (b.postgres_exporter if spec.monitoring.enabled else None, "monitoring.enabled", "postgres_exporter"),
        (b.haproxy if spec.proxy.kind == "haproxy" else None, "proxy.kind", "HAProxy"),
        (b.nginx if spec.proxy.kind == "nginx" else None, "proxy.kind", "Nginx"),
        (b.nginx_stream_module if spec.proxy.kind == "nginx" else None, "proxy.kind", "Nginx's stream module"),
    ):
        if path and not os.access(path, os.X_OK if not path.endswith(".so") else os.R_OK):
            problems.append(f"{ns}:{key} needs {hint} at {path}, which is missing (run `make setup`)")
    try:
        pwd.getpwnam(spec.local.service_user)
    except KeyError:
        problems.append(
            f"{ns}:local.serviceUser must name an existing user (run `make setup`), got {spec.local.service_user!r}"
        )
    # Ports are checked only while this stack runs nothing: once deployed, its own processes hold them.
    root = f"{spec.local.data_dir}/{stack}"
    running = any(sv.supervisord_pid(sv.HostLayout(f"{root}/{h.name}")) for h in plan.hosts)
    if not running:
        for address, port, what in bound_ports(plan):
            if _listening(address, port):
                problems.append(
                    f"{ns}:ports: {address}:{port} ({what}) is already in use by another process; "
                    "free it or change the port"
                )
    if problems:
        raise SpecError(problems)
    return b
