"""Render: every file a node needs, from a plan. Pure functions: plan -> {path: content}.

The same templates serve every platform; a :class:`Site` carries the only things that differ between
them: how hosts reach each other (addresses), where files live (paths) and how Consul finds its peers.

Secrets are plain strings here. Callers on the platforms pass them inside ``Output.apply`` so the result
stays a Pulumi secret; cloud platforms pass ``secrets=None`` and read them from the environment at boot
(Patroni's ``PATRONI_*_PASSWORD`` variables), so user data never carries a password.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import jinja2

from .spec import HaStackSpec
from .topology import Host, Plan

SUPERUSER = "postgres"
REPLICATION_USER = "replicator"
REWIND_USER = "rewind_user"
MONITOR_USER = "postgres"  # postgres_exporter needs pg_monitor or superuser; Debian's 0.11 expects superuser


@dataclass(frozen=True)
class Secrets:
    """Plain secret values; only ever built inside ``Output.apply``."""

    superuser: str
    replication: str
    rewind: str
    gossip_key: str


@dataclass(frozen=True)
class HostPaths:
    conf: str
    data: str
    log: str
    run: str

    @classmethod
    def under(cls, base: str) -> HostPaths:
        """The one place that lays out a host's folders below ``base``."""
        return cls(conf=f"{base}/conf", data=f"{base}/data", log=f"{base}/log", run=f"{base}/run")


@dataclass(frozen=True)
class Site:
    """What differs between platforms. ``addresses`` maps host name -> address peers use."""

    addresses: Mapping[str, str]
    root: str = "/var/lib/hastack"
    per_host_dirs: bool = False  # local: every simulated host has its own folder under root
    bind_all: bool = False  # containers bind 0.0.0.0 and advertise their address
    postgres_bin_dir: str = "/usr/lib/postgresql/15/bin"
    consul_join: tuple[str, ...] | None = None  # cloud auto-join strings; default: server addresses
    consul_servers_dns: str | None = None  # kubernetes: a headless service name instead of addresses
    client_cidrs: tuple[str, ...] = ("127.0.0.0/8",)  # who may connect to Postgres (pg_hba)
    # Platform specifics: archive_command, nginx_stream_module, consul_metrics_token_file (where Prometheus
    # finds the Consul ACL token for /v1/agent/metrics; unset: no token is sent).
    extra: Mapping[str, Any] = field(default_factory=dict)

    def paths(self, host: Host) -> HostPaths:
        return HostPaths.under(f"{self.root}/{host.name}" if self.per_host_dirs else self.root)

    def addr(self, host: Host) -> str:
        return self.addresses[host.name]

    def bind(self, host: Host) -> str:
        return "0.0.0.0" if self.bind_all else self.addresses[host.name]


@cache
def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("hastack", "templates"),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["hcl"] = _hcl
    env.filters["yaml_str"] = _yaml_str
    return env


def _hcl(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_hcl(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _yaml_str(value: Any) -> str:
    # Single-quoted YAML scalars only need the quote doubled; safe for generated passwords.
    return "'" + str(value).replace("'", "''") + "'"


def render_template(name: str, **ctx: Any) -> str:
    return _env().get_template(name).render(**ctx)


def gossip_key_from(seed: str) -> str:
    """A 32-byte base64 Consul gossip key derived from a random secret (``consul keygen`` format)."""
    return base64.b64encode(hashlib.sha256(seed.encode()).digest()).decode()


# --------------------------------------------------------------------------------------------------
# Consul


def consul_config(plan: Plan, host: Host, site: Site, gossip_key: str | None) -> str:
    """Consul agent config (HCL): a server on consul hosts, a client agent on every other host."""
    spec = plan.spec
    server = host.role == "consul"
    join = (
        list(site.consul_join)
        if site.consul_join
        else (
            [site.consul_servers_dns]
            if site.consul_servers_dns
            else [f"{site.addr(s)}:{spec.ports.consul_serf_lan}" for s in plan.consul_servers]
        )
    )
    return render_template(
        "consul.hcl.j2",
        spec=spec,
        host=host,
        server=server,
        servers=len(plan.consul_servers),
        bind=site.bind(host),
        advertise=site.addr(host),
        client_addr=site.bind(host),
        paths=site.paths(host),
        join=join,
        gossip_key=gossip_key,
        acl_policy=spec.acl_default_policy,
    )


# --------------------------------------------------------------------------------------------------
# Postgres / Patroni


def postgres_parameters(spec: HaStackSpec) -> dict[str, Any]:
    """postgresql.conf parameters hastack sets; user parameters win."""
    params: dict[str, Any] = {
        "max_connections": spec.postgres.max_connections,
        "max_wal_senders": 10,
        "max_replication_slots": 10,
        "wal_keep_size": "256MB",
        "wal_log_hints": "on",
        "hot_standby_feedback": "on",
        "password_encryption": "scram-sha-256",
        "shared_buffers": "128MB",
    }
    params.update(spec.postgres.parameters)
    return params


def patroni_config(plan: Plan, host: Host, site: Site, secrets: Secrets | None) -> str:
    """patroni.yml for one node; passwords inline (local, file mode 0600) or from the environment."""
    spec = plan.spec
    return render_template(
        "patroni.yml.j2",
        spec=spec,
        host=host,
        addr=site.addr(host),
        bind=site.bind(host),
        paths=site.paths(host),
        bin_dir=site.postgres_bin_dir,
        # Patroni talks to its own host's Consul agent, so the leader session can be bound to the
        # agent's serfHealth check and dies at gossip speed with the host.
        consul_addr=f"{site.addr(host) if not site.bind_all else '127.0.0.1'}:{spec.ports.consul_http}",
        secrets=secrets,
        users={"superuser": SUPERUSER, "replication": REPLICATION_USER, "rewind": REWIND_USER},
        parameters=postgres_parameters(spec),
        client_cidrs=site.client_cidrs,
        backups=spec.postgres.backups,
        archive=site.extra.get("archive_command"),
    )


# --------------------------------------------------------------------------------------------------
# Proxy tier


def haproxy_config(plan: Plan, host: Host, site: Site) -> str:
    spec = plan.spec
    return render_template(
        "haproxy.cfg.j2",
        spec=spec,
        host=host,
        bind=site.bind(host),
        paths=site.paths(host),
        servers=[(h.name, site.addr(h)) for h in plan.postgres],
        check=spec.proxy.check,
    )


def nginx_config(plan: Plan, host: Host, site: Site) -> str:
    spec = plan.spec
    return render_template(
        "nginx.conf.j2",
        spec=spec,
        host=host,
        bind=site.bind(host),
        paths=site.paths(host),
        resolver=f"{site.addr(host) if not site.bind_all else '127.0.0.1'}:{spec.ports.consul_dns}",
        module=site.extra.get("nginx_stream_module", "/usr/lib/nginx/modules/ngx_stream_module.so"),
    )


def proxy_config(plan: Plan, host: Host, site: Site) -> tuple[str, str]:
    """(file name, content) of the proxy config for the configured proxy kind."""
    if plan.spec.proxy.kind == "haproxy":
        return "haproxy.cfg", haproxy_config(plan, host, site)
    return "nginx.conf", nginx_config(plan, host, site)


# --------------------------------------------------------------------------------------------------
# Monitoring


def prometheus_config(plan: Plan, site: Site, rules_path: str) -> str:
    spec = plan.spec
    p = spec.ports
    jobs: dict[str, list[tuple[str, Host]]] = {
        "patroni": [(f"{site.addr(h)}:{p.patroni_api}", h) for h in plan.postgres],
        "postgres": [(f"{site.addr(h)}:{p.postgres_exporter}", h) for h in plan.postgres],
        "consul": [(f"{site.addr(h)}:{p.consul_http}", h) for h in plan.consul_servers],
    }
    if spec.proxy.kind == "haproxy":
        jobs["haproxy"] = [(f"{site.addr(h)}:{p.proxy_metrics}", h) for h in plan.proxies]
    # A tier the plan does not run (RDS mode: Patroni, proxies, Consul) gets no job rather than an empty one.
    jobs = {job: targets for job, targets in jobs.items() if targets}
    return render_template(
        "prometheus.yml.j2",
        spec=spec,
        jobs=jobs,
        rules_path=rules_path,
        # Cloud platforms with Consul ACLs deliver a token file out of band (never inside this file).
        consul_token_file=site.extra.get("consul_metrics_token_file"),
    )


def alert_rules(plan: Plan) -> str:
    return render_template("alerts.yml.j2", spec=plan.spec, plan=plan)


def host_files(plan: Plan, host: Host, site: Site, secrets: Secrets | None) -> dict[str, str]:
    """Every config file of one host, keyed by path. Used by cloud-init and ConfigMaps alike."""
    paths = site.paths(host)
    files: dict[str, str] = {}
    if host.role != "monitoring":
        files[f"{paths.conf}/consul.hcl"] = consul_config(plan, host, site, secrets.gossip_key if secrets else None)
    if host.role == "postgres":
        files[f"{paths.conf}/patroni.yml"] = patroni_config(plan, host, site, secrets)
    elif host.role == "proxy":
        name, content = proxy_config(plan, host, site)
        files[f"{paths.conf}/{name}"] = content
    elif host.role == "monitoring":
        rules = f"{paths.conf}/alerts.yml"
        files[f"{paths.conf}/prometheus.yml"] = prometheus_config(plan, site, rules)
        files[rules] = alert_rules(plan)
    return files
