"""NetworkPolicies: deny all ingress in the namespace, then allow exactly the flows the tiers need.
Postgres is reachable only from the proxy tier (clients), its peers (replication) and monitoring (scrapes)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from ...topology import LABEL_ROLE, LABEL_STACK
from .workloads import Context

AGENT_ROLES = ("consul", "postgres", "proxy")


@dataclass(frozen=True)
class Allow:
    """Pods of ``to`` accept ``port`` from pods of ``sources`` (None: from anywhere)."""

    to: str
    port: int
    sources: tuple[str, ...] | None
    protocol: str = "TCP"


def allows(ctx: Context) -> list[Allow]:
    p = ctx.spec.ports
    return [
        Allow("agents", p.consul_serf_lan, AGENT_ROLES),
        Allow("agents", p.consul_serf_lan, AGENT_ROLES, "UDP"),
        Allow("consul", p.consul_server, AGENT_ROLES),
        Allow("consul", p.consul_http, ("monitoring",)),
        Allow("postgres", p.postgres, ("proxy", "postgres")),
        Allow("postgres", p.patroni_api, ("proxy", "postgres", "monitoring")),
        Allow("postgres", p.postgres_exporter, ("monitoring",)),
        Allow("proxy", p.proxy_write, None),
        Allow("proxy", p.proxy_read, None),
        Allow("proxy", p.proxy_stats, ("monitoring",)),
        Allow("proxy", p.proxy_metrics, ("monitoring",)),
        Allow("monitoring", p.prometheus, None),
    ]


def _pods(ctx: Context, roles: tuple[str, ...]) -> dict[str, Any]:
    return {
        "matchLabels": {LABEL_STACK: ctx.stack},
        "matchExpressions": [{"key": LABEL_ROLE, "operator": "In", "values": list(roles)}],
    }


class NetworkPolicies(pulumi.ComponentResource):
    """One default-deny policy plus one policy per receiving tier."""

    def __init__(self, name: str, ctx: Context, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hastack:kubernetes:NetworkPolicies", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        k8s.networking.v1.NetworkPolicy(
            f"{name}-default-deny",
            metadata=ctx.meta("default-deny-ingress"),
            spec={"podSelector": {}, "policyTypes": ["Ingress"]},
            opts=child,
        )
        by_target: dict[str, list[Allow]] = {}
        for allow in allows(ctx):
            by_target.setdefault(allow.to, []).append(allow)
        self.policies: dict[str, k8s.networking.v1.NetworkPolicy] = {}
        for target, rules in by_target.items():
            roles = AGENT_ROLES if target == "agents" else (target,)
            ingress = []
            for rule in rules:
                entry: dict[str, Any] = {"ports": [{"port": rule.port, "protocol": rule.protocol}]}
                if rule.sources is not None:
                    entry["from"] = [{"podSelector": _pods(ctx, rule.sources)}]
                ingress.append(entry)
            self.policies[target] = k8s.networking.v1.NetworkPolicy(
                f"{name}-{target}",
                metadata=ctx.meta(f"allow-to-{target}"),
                spec={"podSelector": _pods(ctx, roles), "policyTypes": ["Ingress"], "ingress": ingress},
                opts=child,
            )
        self.register_outputs({"policies": list(self.policies)})
