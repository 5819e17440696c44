"""The local platform: the whole architecture as real processes on this machine.

Three (2-5) simulated zones on loopback addresses ``127.0.<10+zone>.<n>``; every simulated host has its
own folder under ``<local.dataDir>/<stack>`` and its own supervisord, which runs the host's services as
the unprivileged service user. Pulumi dynamic providers (``providers.py``) create, update and delete
them, so ``pulumi up``, ``preview --diff`` and ``destroy`` manage processes like any other resource.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from urllib.parse import quote

import pulumi

from ... import render
from ...spec import HaStackSpec
from ...stack import Endpoints
from ...topology import Host, Plan
from . import preflight
from .providers import ConfigFile, GeneratedSecret, HealthGate, Program, SimHost, StackRoot

__all__ = ["ConsulCluster", "Monitoring", "PostgresCluster", "ProxyTier", "deploy"]


def site(plan: Plan, stack: str, postgres_bin_dir: str) -> render.Site:
    """The local platform's site: one loopback address and one folder per simulated host."""
    return render.Site(
        addresses={h.name: h.local_address for h in plan.hosts},
        root=f"{plan.spec.local.data_dir}/{stack}",
        per_host_dirs=True,
        postgres_bin_dir=postgres_bin_dir,
    )


class _Ctx:
    """What every tier of one local stack shares."""

    def __init__(self, name: str, spec: HaStackSpec, plan: Plan, stack: str, bins: preflight.Binaries):
        self.name = name
        self.spec = spec
        self.plan = plan
        self.stack = stack
        self.bins = bins
        self.site = site(plan, stack, bins.postgres_bin)
        self.user = spec.local.service_user
        self.hosts: dict[str, SimHost] = {}
        self.consul_agents: dict[str, Program] = {}

    def labels(self, host: Host) -> dict[str, str]:
        return host.labels(self.stack)

    def file(
        self, parent: pulumi.Resource, host: Host, filename: str, content: pulumi.Input[str], secret: bool
    ) -> ConfigFile:
        return ConfigFile(
            f"{self.name}-{host.name}-{filename}",
            path=f"{self.site.paths(host).conf}/{filename}",
            content=content,
            secret=secret,
            owner=self.user,
            labels=self.labels(host),
            opts=pulumi.ResourceOptions(parent=parent, depends_on=[self.hosts[host.name]]),
        )

    def program(
        self,
        parent: pulumi.Resource,
        host: Host,
        program: str,
        command: str,
        files: Sequence[ConfigFile],
        reload: str,
        *,
        environment: dict[str, str] | None = None,
        depends_on: Sequence[pulumi.Resource] = (),
        stopsignal: str = "TERM",
        start_timeout: int = 30,
    ) -> Program:
        paths = self.site.paths(host)
        sha = pulumi.Output.all(*[f.sha256 for f in files]).apply(
            lambda shas: hashlib.sha256("".join(shas).encode()).hexdigest()
        )
        return Program(
            f"{self.name}-{host.name}-{program}",
            program=program,
            host=host.name,
            host_base=self.hosts[host.name].base,
            command=command,
            user=self.user,
            directory=paths.data,
            environment={"HOME": paths.data, "LANG": "C.UTF-8", **(environment or {})},
            config_sha=sha,
            reload=reload,
            stopsignal=stopsignal,
            start_timeout=start_timeout,
            labels=self.labels(host),
            opts=pulumi.ResourceOptions(parent=parent, depends_on=[self.hosts[host.name], *files, *depends_on]),
        )


class ConsulCluster(pulumi.ComponentResource):
    """Consul servers (one per zone first) and a client agent on every Postgres and proxy host."""

    servers: list[Program]
    agents: dict[str, Program]
    ui_url: pulumi.Output[str]

    def __init__(self, name: str, ctx: _Ctx, gossip_key: pulumi.Output[str], opts: pulumi.ResourceOptions):
        super().__init__("hastack:local:ConsulCluster", name, None, opts)
        plan, site = ctx.plan, ctx.site
        self.servers = []
        self.agents = {}
        for host in (*plan.consul_servers, *plan.consul_clients):
            content = gossip_key.apply(functools.partial(render.consul_config, plan, host, site))
            f = ctx.file(self, host, "consul.hcl", content, secret=True)
            proc = ctx.program(
                self, host, "consul", f"{ctx.bins.consul} agent -config-file={site.paths(host).conf}/consul.hcl", [f],
                "HUP", stopsignal="INT",
            )  # fmt: skip
            if host.role == "consul":
                self.servers.append(proc)
            else:
                self.agents[host.name] = proc
        first = plan.consul_servers[0]
        self.ui_url = pulumi.Output.from_input(f"http://{first.local_address}:{ctx.spec.ports.consul_http}/ui/")
        self.register_outputs({"ui_url": self.ui_url, "servers": len(self.servers)})


class PostgresCluster(pulumi.ComponentResource):
    """Patroni-managed Postgres, one node per zone, with a postgres_exporter beside each node."""

    patroni_urls: pulumi.Output[list[str]]

    def __init__(self, name: str, ctx: _Ctx, pw: pulumi.Output[render.Secrets], opts: pulumi.ResourceOptions):
        super().__init__("hastack:local:PostgresCluster", name, None, opts)
        plan, site, spec = ctx.plan, ctx.site, ctx.spec
        self.nodes: list[Program] = []
        for host in plan.postgres:
            paths = site.paths(host)
            patroni_yml = pw.apply(functools.partial(render.patroni_config, plan, host, site))
            f = ctx.file(self, host, "patroni.yml", patroni_yml, secret=True)
            # Two things a real host's init gives Patroni, which supervisord alone does not:
            # - a reaper: Patroni detaches the postmaster and counts a zombie postmaster as running. This
            #   machine's init reaps orphans only every ~2 s, which added 1-2 s to every switchover and
            #   crash; `tini -s` (a child subreaper) reaps at once.
            # - stdin on /dev/null: supervisord hands every program a stdin pipe it never closes. A backend
            #   orphaned by a crashed postmaster can fall back to reading commands from stdin, and it then
            #   blocks forever holding the shared memory, so Postgres cannot start again on that node.
            patroni = f"/bin/sh -c 'exec {ctx.bins.tini} -s -- {ctx.bins.patroni} {paths.conf}/patroni.yml </dev/null'"
            node = ctx.program(
                self, host, "patroni", patroni, [f], "HUP",
                depends_on=[ctx.consul_agents[host.name]], stopsignal="INT", start_timeout=60,
            )  # fmt: skip
            self.nodes.append(node)
            if spec.monitoring.enabled:
                passfile = ctx.file(self, host, "exporter.pass", pw.apply(lambda s: s.superuser), secret=True)
                ctx.program(
                    self,
                    host,
                    "postgres-exporter",
                    f"{ctx.bins.postgres_exporter} "
                    f"--web.listen-address={host.local_address}:{spec.ports.postgres_exporter}",
                    [passfile],
                    "restart",
                    environment={
                        "DATA_SOURCE_URI": f"{host.local_address}:{spec.ports.postgres}/postgres?sslmode=disable",
                        "DATA_SOURCE_USER": render.MONITOR_USER,
                        "DATA_SOURCE_PASS_FILE": f"{paths.conf}/exporter.pass",
                    },
                    depends_on=[node],
                )
        self.patroni_urls = pulumi.Output.from_input(
            [f"http://{h.local_address}:{spec.ports.patroni_api}" for h in plan.postgres]
        )
        self.register_outputs({"patroni_urls": self.patroni_urls})


class ProxyTier(pulumi.ComponentResource):
    """HAProxy (Patroni REST checks) or Nginx (Consul DNS) on >= 2 hosts in different zones."""

    write_endpoints: list[str]
    read_endpoints: list[str]

    def __init__(self, name: str, ctx: _Ctx, opts: pulumi.ResourceOptions):
        super().__init__("hastack:local:ProxyTier", name, None, opts)
        plan, site, spec = ctx.plan, ctx.site, ctx.spec
        self.proxies: list[Program] = []
        for host in plan.proxies:
            paths = site.paths(host)
            filename, content = render.proxy_config(plan, host, site)
            f = ctx.file(self, host, filename, content, secret=False)
            if spec.proxy.kind == "haproxy":
                # Master-worker mode: USR2 reloads the config without dropping established sessions.
                cmd, reload, deps = f"{ctx.bins.haproxy} -W -db -f {paths.conf}/{filename}", "USR2", []
            else:
                cmd = f"{ctx.bins.nginx} -c {paths.conf}/{filename} -p {paths.run}/ -e stderr"
                reload, deps = "HUP", [ctx.consul_agents[host.name]]
            self.proxies.append(ctx.program(self, host, spec.proxy.kind, cmd, [f], reload, depends_on=deps))
        self.write_endpoints = [f"{h.local_address}:{spec.ports.proxy_write}" for h in plan.proxies]
        self.read_endpoints = [f"{h.local_address}:{spec.ports.proxy_read}" for h in plan.proxies]
        self.register_outputs({"write_endpoints": self.write_endpoints, "read_endpoints": self.read_endpoints})


class Monitoring(pulumi.ComponentResource):
    """Prometheus with hastack's alert rules, scraping Patroni, postgres_exporter, HAProxy and Consul."""

    url: pulumi.Output[str]

    def __init__(self, name: str, ctx: _Ctx, opts: pulumi.ResourceOptions):
        super().__init__("hastack:local:Monitoring", name, None, opts)
        plan, site, spec = ctx.plan, ctx.site, ctx.spec
        host = plan.monitoring
        assert host is not None
        paths = site.paths(host)
        rules = ctx.file(self, host, "alerts.yml", render.alert_rules(plan), secret=False)
        config = ctx.file(
            self, host, "prometheus.yml", render.prometheus_config(plan, site, f"{paths.conf}/alerts.yml"), False
        )
        address = f"{host.local_address}:{spec.ports.prometheus}"
        self.prometheus = ctx.program(
            self,
            host,
            "prometheus",
            f"{ctx.bins.prometheus} --config.file={paths.conf}/prometheus.yml --storage.tsdb.path={paths.data}/tsdb "
            f"--storage.tsdb.retention.time={spec.monitoring.retention} --web.listen-address={address} "
            "--web.enable-lifecycle",
            [config, rules],
            "HUP",
        )
        self.url = pulumi.Output.from_input(f"http://{address}")
        self.register_outputs({"url": self.url})


def _passwords(
    name: str, spec: HaStackSpec, parent: pulumi.Resource, labels: dict[str, str]
) -> pulumi.Output[render.Secrets]:
    """(superuser, replication, rewind, gossip key) as one secret Output of :class:`render.Secrets`."""
    opts = pulumi.ResourceOptions(parent=parent)
    length = spec.postgres.passwords.length
    gossip_seed = GeneratedSecret(f"{name}-consul-gossip-seed", 32, labels, opts).value
    if spec.postgres.passwords.source == "config":
        cfg = pulumi.Config("hastack")
        su, rep, rew = (cfg.require_secret(k) for k in ("superuserPassword", "replicationPassword", "rewindPassword"))
    else:
        su, rep, rew = (
            GeneratedSecret(f"{name}-{role}-password", length, labels, opts).value
            for role in ("superuser", "replication", "rewind")
        )
    return pulumi.Output.secret(
        pulumi.Output.all(su, rep, rew, gossip_seed).apply(
            lambda v: render.Secrets(v[0], v[1], v[2], render.gossip_key_from(v[3]))
        )
    )


def deploy(name: str, spec: HaStackSpec, plan: Plan, parent: pulumi.Resource, stack: str) -> Endpoints:
    bins = preflight.check(spec, plan, stack)
    ctx = _Ctx(name, spec, plan, stack, bins)
    stack_labels = {"hastack.io/stack": stack}
    root = StackRoot(
        f"{name}-root", ctx.site.root, spec.local.data_dir, stack_labels, pulumi.ResourceOptions(parent=parent)
    )
    for host in plan.hosts:
        ctx.hosts[host.name] = SimHost(
            f"{name}-{host.name}",
            host=host.name,
            base=f"{ctx.site.root}/{host.name}",
            guard=spec.local.data_dir,
            supervisord=bins.supervisord,
            service_user=spec.local.service_user,
            labels=ctx.labels(host),
            opts=pulumi.ResourceOptions(parent=parent, depends_on=[root]),
        )
    secrets = _passwords(name, spec, parent, stack_labels)
    consul = ConsulCluster(
        f"{name}-consul", ctx, secrets.apply(lambda s: s.gossip_key), pulumi.ResourceOptions(parent=parent)
    )
    ctx.consul_agents = consul.agents
    postgres = PostgresCluster(f"{name}-postgres", ctx, secrets, pulumi.ResourceOptions(parent=parent))
    proxy = ProxyTier(f"{name}-proxy", ctx, pulumi.ResourceOptions(parent=parent))
    tiers: dict[str, pulumi.ComponentResource] = {"consul": consul, "postgres": postgres, "proxy": proxy}
    monitoring = None
    if spec.monitoring.enabled:
        monitoring = Monitoring(f"{name}-monitoring", ctx, pulumi.ResourceOptions(parent=parent))
        tiers["monitoring"] = monitoring
    p = spec.ports
    superuser = secrets.apply(lambda s: s.superuser)
    programs: list[Program] = [*consul.servers, *consul.agents.values(), *postgres.nodes, *proxy.proxies]
    if monitoring:
        programs.append(monitoring.prometheus)
    # Any config change re-runs the gate, so an update also returns only once the stack is healthy again.
    revision = pulumi.Output.all(*[r.config_sha for r in programs]).apply(
        lambda shas: hashlib.sha256("".join(shas).encode()).hexdigest()
    )
    gate = HealthGate(
        f"{name}-health",
        {
            "consul_servers": [f"http://{h.local_address}:{p.consul_http}" for h in plan.consul_servers],
            "patroni": {h.name: f"http://{h.local_address}:{p.patroni_api}" for h in plan.postgres},
            "node_addresses": {h.name: h.local_address for h in plan.postgres},
            "proxies": {h.name: h.local_address for h in plan.proxies},
            "write_port": p.proxy_write,
            "read_port": p.proxy_read,
            "password": superuser,
            "sync_standbys_expected": spec.postgres.synchronous.standbys if spec.postgres.synchronous.enabled else 0,
            "prometheus": monitoring.url if monitoring else "",
            "expect": ["consul leader", "patroni leader", "sync standby streaming", "proxies route to the leader"],
            "timeout": spec.local.health_timeout_s,
            "revision": revision,
            "labels": stack_labels,
        },
        pulumi.ResourceOptions(parent=parent, depends_on=programs),
    )

    def dsn(port: int, attrs: str) -> pulumi.Output[str]:
        # Every proxy in one libpq URI: a client whose proxy dies moves on to the next one.
        hosts = ",".join(f"{h.local_address}:{port}" for h in plan.proxies)
        return pulumi.Output.secret(
            pulumi.Output.all(superuser, gate.leader).apply(
                lambda v: f"postgresql://postgres:{quote(v[0], safe='')}@{hosts}/postgres?{attrs}"
            )
        )

    return Endpoints(
        write_endpoint=gate.leader.apply(lambda _: proxy.write_endpoints[0]),
        read_endpoint=gate.leader.apply(lambda _: proxy.read_endpoints[0]),
        write_dsn=dsn(p.proxy_write, "target_session_attrs=read-write&connect_timeout=2"),
        read_dsn=dsn(p.proxy_read, "connect_timeout=2"),
        consul_ui=consul.ui_url,
        prometheus_url=monitoring.url if monitoring else pulumi.Output.from_input(""),
        patroni_urls=postgres.patroni_urls,
        tiers=tiers,
    )
