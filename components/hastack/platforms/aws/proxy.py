"""ProxyTier on AWS: HAProxy or Nginx hosts in >= 2 zones behind an internal NLB with a subnet in every zone and
cross-zone balancing."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from .cloud_init import user_data
from .hosts import Context, Machine, alarm, instance_role, machine
from .site import base_tags


class ProxyTier(pulumi.ComponentResource):
    """Proxies keyed by zone (``<name>-proxy-<zone>``), an internal NLB, a listener per port."""

    proxies: dict[str, Machine]
    """Proxy machines keyed by host name."""
    write_endpoint: pulumi.Output[str]
    """NLB DNS name and write port."""
    read_endpoint: pulumi.Output[str]
    """NLB DNS name and read port."""
    dns_name: pulumi.Output[str]
    """The NLB's DNS name (empty in RDS mode, where clients use RDS endpoints)."""

    def __init__(
        self,
        name: str,
        ctx: Context,
        opts: pulumi.ResourceOptions | None = None,
        *,
        rds_endpoints: tuple[pulumi.Output[str], pulumi.Output[list[str]]] | None = None,
    ):
        super().__init__("hastack:aws:ProxyTier", name, None, opts)
        spec, plan = ctx.spec, ctx.plan
        self.proxies = {}
        p = spec.ports
        if rds_endpoints is not None:
            # Managed mode: RDS answers on its own endpoints; there is nothing to proxy.
            writer, readers = rds_endpoints
            self.dns_name = pulumi.Output.from_input("")
            self.write_endpoint = writer.apply(lambda a: f"{a}:{p.postgres}")
            self.read_endpoint = pulumi.Output.all(writer, readers).apply(
                lambda wr: f"{(wr[1] or [wr[0]])[0]}:{p.postgres}"
            )
            self.register_outputs({"write_endpoint": self.write_endpoint, "read_endpoint": self.read_endpoint})
            return

        profile = instance_role(ctx, "proxy", self, secret_keys=("gossip", "consul_token"))
        for host in plan.proxies:
            data = user_data(plan, host, ctx.site, ctx.param_names, region=spec.aws.region)
            self.proxies[host.name] = machine(ctx, host, spec.aws.instance_types.proxy, profile, data, self)

        opts_child = pulumi.ResourceOptions(parent=self)
        tags = base_tags(spec, ctx.stack, f"{name}-nlb")
        nlb = aws.lb.LoadBalancer(
            f"{name}-nlb",
            internal=True,
            load_balancer_type="network",
            # A node in every zone, not only in the proxies' zones: with cross-zone balancing a zone that holds
            # no proxy (or whose proxy is down) still answers its clients from the proxies in other zones.
            subnets=[ctx.subnet_ids[z] for z in spec.zones],
            security_groups=[ctx.sg_ids["nlb"]],
            enable_cross_zone_load_balancing=True,
            enable_deletion_protection=spec.deletion_protection,
            tags=tags,
            opts=opts_child,
        )
        self.dns_name = nlb.dns_name
        for kind, port in (("write", p.proxy_write), ("read", p.proxy_read)):
            tg = aws.lb.TargetGroup(
                f"{name}-{kind}",
                port=port,
                protocol="TCP",
                target_type="instance",
                vpc_id=ctx.vpc_id,
                # The proxy's own liveness; which Postgres node is primary is the proxy's job, not the NLB's.
                health_check={
                    "protocol": "HTTP",
                    "port": str(p.proxy_stats),
                    "path": "/",
                    "interval": 10,
                    "healthy_threshold": 2,
                    "unhealthy_threshold": 2,
                },
                deregistration_delay=10,
                # Cut connections to a deregistered proxy, so clients reconnect instead of hanging.
                connection_termination=True,
                tags=base_tags(spec, ctx.stack, f"{name}-{kind}"),
                opts=opts_child,
            )
            for host_name, m in self.proxies.items():
                aws.lb.TargetGroupAttachment(
                    f"{name}-{kind}-{host_name}",
                    target_group_arn=tg.arn,
                    target_id=m.instance.id,
                    port=port,
                    opts=opts_child,
                )
            aws.lb.Listener(
                f"{name}-{kind}",
                load_balancer_arn=nlb.arn,
                port=port,
                protocol="TCP",
                default_actions=[{"type": "forward", "target_group_arn": tg.arn}],
                tags=base_tags(spec, ctx.stack, f"{name}-{kind}"),
                opts=opts_child,
            )
            alarm(
                ctx,
                f"{name}-{kind}-unhealthy",
                f"NLB {kind} port {port}: a proxy fails its health check",
                "AWS/NetworkELB",
                "UnHealthyHostCount",
                {"TargetGroup": tg.arn_suffix, "LoadBalancer": nlb.arn_suffix},
                comparison="GreaterThanThreshold",
                threshold=0,
                notify_ok=True,
                tags=tags,
                opts=opts_child,
            )
        self.write_endpoint = nlb.dns_name.apply(lambda d: f"{d}:{p.proxy_write}")
        self.read_endpoint = nlb.dns_name.apply(lambda d: f"{d}:{p.proxy_read}")
        self.register_outputs(
            {"write_endpoint": self.write_endpoint, "read_endpoint": self.read_endpoint, "dns_name": self.dns_name}
        )
