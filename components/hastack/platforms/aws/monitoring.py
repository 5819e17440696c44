"""Monitoring on AWS: a Prometheus host with the shared rules; CloudWatch alarms go to one SNS topic."""

from __future__ import annotations

import pulumi

from .cloud_init import user_data
from .hosts import Context, Machine, instance_role, machine


class Monitoring(pulumi.ComponentResource):
    """Prometheus (``<name>-monitoring-<zone>``); the alarm topic is created by the stack, see ``alarm_topic_arn``."""

    prometheus: Machine | None
    """The Prometheus machine, None when monitoring is disabled."""
    prometheus_url: pulumi.Output[str]
    """Prometheus URL inside the VPC (empty when disabled)."""
    alarm_topic_arn: pulumi.Output[str]
    """SNS topic every CloudWatch alarm of the stack notifies; subscribe on-call to it."""

    def __init__(self, name: str, ctx: Context, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hastack:aws:Monitoring", name, None, opts)
        spec, plan = ctx.spec, ctx.plan
        self.alarm_topic_arn = ctx.alarm_topic_arn
        self.prometheus = None
        self.prometheus_url = pulumi.Output.from_input("")
        host = plan.monitoring
        if host is not None:
            # Static targets (fixed IPs) and no Consul agent: no auto-join. The only AWS call is reading the
            # Consul token (to scrape Consul's metrics through its ACLs), when the site names a token file.
            token = "consul_metrics_token_file" in ctx.site.extra
            profile = instance_role(
                ctx,
                "monitoring",
                self,
                describe_instances=False,
                secret_keys=("consul_token",) if token else (),
            )
            data = user_data(plan, host, ctx.site, ctx.param_names, region=spec.aws.region)
            self.prometheus = machine(ctx, host, spec.aws.instance_types.monitoring, profile, data, self)
            self.prometheus_url = pulumi.Output.from_input(
                f"http://{self.prometheus.private_ip}:{spec.ports.prometheus}"
            )
        self.register_outputs({"prometheus_url": self.prometheus_url, "alarm_topic_arn": self.alarm_topic_arn})
