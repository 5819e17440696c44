"""ConsulCluster on Kubernetes: one server StatefulSet spread over zones, a headless Service to join, a PDB for
quorum."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from .site import CONSUL_SERVERS_SERVICE, service_address, tier_selector
from .workloads import (
    Context,
    config_map,
    consul_container,
    consul_volumes,
    pdb,
    peer_service,
    tier_workload,
)


class ConsulCluster(pulumi.ComponentResource):
    """Consul servers: the ``consul-server`` StatefulSet (``replicas`` = servers), each pod with its volume."""

    servers: k8s.apps.v1.StatefulSet
    """The server StatefulSet."""
    join_address: pulumi.Output[str]
    """Headless Service name every agent joins through."""
    ui_url: pulumi.Output[str]
    """Consul UI (in-cluster; `kubectl port-forward svc/consul-ui` from outside)."""

    def __init__(self, name: str, ctx: Context, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hastack:kubernetes:ConsulCluster", name, None, opts)
        spec, p = ctx.spec, ctx.spec.ports
        child = pulumi.ResourceOptions(parent=self)
        selector = tier_selector("consul", ctx.stack)
        # Agents join by resolving every server's pod IP, including servers not yet ready.
        peer_service(
            ctx,
            f"{name}-servers",
            CONSUL_SERVERS_SERVICE,
            "consul",
            [
                {"name": "serf-lan-tcp", "port": p.consul_serf_lan, "protocol": "TCP"},
                {"name": "serf-lan-udp", "port": p.consul_serf_lan, "protocol": "UDP"},
                {"name": "server", "port": p.consul_server},
            ],
            self,
        )
        ui = k8s.core.v1.Service(
            f"{name}-ui",
            metadata=ctx.meta("consul-ui", "consul"),
            spec={
                "selector": selector,
                "ports": [{"name": "http", "port": p.consul_http, "targetPort": p.consul_http}],
            },
            opts=child,
        )
        servers = ctx.plan.consul_servers
        config_map(ctx, servers[0], self)
        self.servers = tier_workload(
            k8s.apps.v1.StatefulSet,
            ctx,
            "consul",
            len(servers),
            {
                "securityContext": {"fsGroup": 1000},
                "terminationGracePeriodSeconds": 30,
                "containers": [consul_container(ctx, servers[0], data_volume="data")],
                "volumes": consul_volumes("consul"),
            },
            child,
            serviceName=CONSUL_SERVERS_SERVICE,
            # Servers start together: bootstrap_expect needs them all, and a readiness gate would deadlock it.
            podManagementPolicy="Parallel",
            data_size="1Gi",
        )
        # Voluntary disruptions (drains, upgrades) may never take Consul below quorum.
        pdb(ctx, "consul", self, minAvailable=ctx.plan.consul_quorum)
        self.join_address = pulumi.Output.from_input(service_address(spec, CONSUL_SERVERS_SERVICE))
        self.ui_url = ui.id.apply(lambda _: f"http://{service_address(spec, 'consul-ui')}:{p.consul_http}/ui/")
        self.register_outputs({"join_address": self.join_address, "ui_url": self.ui_url})
