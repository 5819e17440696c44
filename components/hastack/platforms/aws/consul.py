"""ConsulCluster on AWS: one server per zone, found by its peers through cloud auto-join on a tag. RDS mode
has no Consul (Patroni's DCS), so the component is empty there."""

from __future__ import annotations

import pulumi

from .cloud_init import user_data
from .hosts import Context, Machine, instance_role, machine
from .site import CONSUL_JOIN_TAG, consul_join_value


class ConsulCluster(pulumi.ComponentResource):
    """Consul servers, one per zone (children ``<name>-consul-<zone>``)."""

    servers: dict[str, Machine]
    """Server machines keyed by host name (none in RDS mode)."""
    server_addresses: pulumi.Output[list[str]]
    """Private IPs of the servers."""
    ui_url: pulumi.Output[str]
    """Consul UI on the first server (reachable from inside the VPC, e.g. through Session Manager); empty in
    RDS mode."""

    def __init__(self, name: str, ctx: Context, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hastack:aws:ConsulCluster", name, None, opts)
        spec, plan = ctx.spec, ctx.plan
        self.servers = {}
        # RDS mode plans no servers (nothing uses Consul there): then this component stays empty.
        if plan.consul_servers:
            profile = instance_role(ctx, "consul", self, secret_keys=("gossip", "consul_token"))
            join_tag = {CONSUL_JOIN_TAG: consul_join_value(ctx.name, ctx.stack)}
            for host in plan.consul_servers:
                data = user_data(plan, host, ctx.site, ctx.param_names, region=spec.aws.region)
                self.servers[host.name] = machine(
                    ctx, host, spec.aws.instance_types.consul, profile, data, self, extra_tags=join_tag
                )
        addresses = [m.private_ip for m in self.servers.values()]
        self.server_addresses = pulumi.Output.from_input(addresses)
        ui = f"http://{addresses[0]}:{spec.ports.consul_http}/ui/" if addresses else ""
        self.ui_url = pulumi.Output.from_input(ui)
        self.register_outputs({"server_addresses": self.server_addresses, "ui_url": self.ui_url})
