"""HaStack: the four tiers of one cluster on one platform."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

import pulumi

from .spec import HaStackSpec
from .topology import Plan, plan


@dataclass
class Endpoints:
    """What a platform hands back to :class:`HaStack`; the same shape on every platform."""

    write_endpoint: pulumi.Output[str]
    read_endpoint: pulumi.Output[str]
    write_dsn: pulumi.Output[str]  # secret
    read_dsn: pulumi.Output[str]  # secret
    consul_ui: pulumi.Output[str]
    prometheus_url: pulumi.Output[str]
    patroni_urls: pulumi.Output[list[str]]
    tiers: dict[str, pulumi.ComponentResource] = field(default_factory=dict)


class HaStack(pulumi.ComponentResource):
    """A highly available Postgres cluster: Consul, Patroni-managed Postgres, a proxy tier, monitoring.

    The platform (``spec.platform``) picks ``hastack.platforms.<platform>``; every platform creates the
    tiers ``ConsulCluster``, ``PostgresCluster``, ``ProxyTier`` and ``Monitoring`` under this component.
    """

    write_endpoint: pulumi.Output[str]
    """host:port of the proxy tier's write port (always the current primary)."""
    read_endpoint: pulumi.Output[str]
    """host:port of the proxy tier's read port (balanced over replicas)."""
    write_dsn: pulumi.Output[str]
    """libpq URI for writes, with the superuser password (secret)."""
    read_dsn: pulumi.Output[str]
    """libpq URI for reads (secret)."""
    consul_ui: pulumi.Output[str]
    """URL of the Consul UI."""
    prometheus_url: pulumi.Output[str]
    """URL of Prometheus."""
    patroni_urls: pulumi.Output[list[str]]
    """Patroni REST API URL of every Postgres node."""

    def __init__(
        self,
        name: str,
        spec: HaStackSpec,
        opts: pulumi.ResourceOptions | None = None,
        *,
        stack: str | None = None,
    ):
        super().__init__(f"hastack:{spec.platform}:HaStack", name, None, opts)
        self.spec = spec
        self.plan: Plan = plan(spec)
        self.stack_name = stack or pulumi.get_stack()
        platform: Any = importlib.import_module(f"hastack.platforms.{spec.platform}")
        ends: Endpoints = platform.deploy(name, spec, self.plan, self, self.stack_name)
        self.tiers = ends.tiers
        self.write_endpoint = ends.write_endpoint
        self.read_endpoint = ends.read_endpoint
        self.write_dsn = pulumi.Output.secret(ends.write_dsn)
        self.read_dsn = pulumi.Output.secret(ends.read_dsn)
        self.consul_ui = ends.consul_ui
        self.prometheus_url = ends.prometheus_url
        self.patroni_urls = ends.patroni_urls
        self.register_outputs(
            {
                "write_endpoint": self.write_endpoint,
                "read_endpoint": self.read_endpoint,
                "write_dsn": self.write_dsn,
                "read_dsn": self.read_dsn,
                "consul_ui": self.consul_ui,
                "prometheus_url": self.prometheus_url,
                "patroni_urls": self.patroni_urls,
            }
        )
