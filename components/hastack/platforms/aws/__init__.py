"""The AWS platform: the plan's hosts as EC2 instances in a private VPC, configured by cloud-init from the
shared templates, with secrets in SSM Parameter Store. ``postgres.mode: rds`` swaps Patroni for RDS.

Resource map (children of ``HaStack``): ``Network``, ``SecurityGroups``, then the four tiers every platform
has: ``ConsulCluster``, ``PostgresCluster``, ``ProxyTier``, ``Monitoring`` (type tokens ``hastack:aws:*``).
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from ...render import SUPERUSER
from ...spec import HaStackSpec
from ...stack import Endpoints
from ...topology import Plan
from .consul import ConsulCluster
from .hosts import Context
from .monitoring import Monitoring
from .network import Network, SecurityGroups
from .postgres import PostgresCluster
from .proxy import ProxyTier
from .secrets import parameters, secret_values
from .site import base_tags, layout, site

__all__ = ["ConsulCluster", "Monitoring", "PostgresCluster", "ProxyTier", "deploy"]


def deploy(name: str, spec: HaStackSpec, plan: Plan, parent: pulumi.Resource, stack: str) -> Endpoints:
    provider_region = pulumi.Config("aws").get("region")
    if provider_region and provider_region != spec.aws.region:
        # Auto-join strings and endpoint service names are rendered for spec.aws.region.
        raise ValueError(f"hastack:aws.region must equal aws:region, got {spec.aws.region!r} and {provider_region!r}")
    child = pulumi.ResourceOptions(parent=parent)
    lay = layout(spec)
    values = secret_values(name, spec, parent)
    params = parameters(name, spec, stack, values, parent)
    net = Network(f"{name}-network", spec, lay, stack, child)
    sgs = SecurityGroups(f"{name}-sg", spec, net.vpc_id, lay.vpc_cidr, stack, child)
    ami = aws.ec2.get_ami_output(
        most_recent=True,
        owners=[spec.aws.ami_owner],
        filters=[
            {"name": "name", "values": [spec.aws.ami_name_filter]},
            {"name": "state", "values": ["available"]},
        ],
        opts=pulumi.InvokeOutputOptions(parent=parent),
    )
    topic = aws.sns.Topic(f"{name}-alarms", tags=base_tags(spec, stack, f"{name}-alarms"), opts=child)
    ctx = Context(
        name=name,
        stack=stack,
        spec=spec,
        plan=plan,
        site=site(plan, name, stack),
        layout=lay,
        vpc_id=net.vpc_id,
        subnet_ids=net.subnet_ids,
        sg_ids=sgs.ids,
        ami_id=ami.id,
        param_names=params.names,
        param_arns=params.arns,
        alarm_topic_arn=topic.arn,
    )
    consul = ConsulCluster(f"{name}-consul", ctx, child)
    postgres = PostgresCluster(f"{name}-postgres", ctx, child)
    rds = (postgres.writer_address, postgres.reader_addresses) if postgres.writer_address is not None else None
    proxy = ProxyTier(f"{name}-proxy", ctx, child, rds_endpoints=rds)
    monitoring = Monitoring(f"{name}-monitoring", ctx, child)

    if spec.postgres.mode == "rds":
        # RDS keeps the master password in Secrets Manager (postgres.master_secret_arn), not in the DSN.
        write_dsn = proxy.write_endpoint.apply(lambda e: f"postgresql://{SUPERUSER}@{e}/postgres?sslmode=require")
        read_dsn = proxy.read_endpoint.apply(lambda e: f"postgresql://{SUPERUSER}@{e}/postgres?sslmode=require")
    else:
        write_dsn = pulumi.Output.all(values.superuser, proxy.write_endpoint).apply(
            lambda a: f"postgresql://{SUPERUSER}:{a[0]}@{a[1]}/postgres"
        )
        read_dsn = pulumi.Output.all(values.superuser, proxy.read_endpoint).apply(
            lambda a: f"postgresql://{SUPERUSER}:{a[0]}@{a[1]}/postgres"
        )
    return Endpoints(
        write_endpoint=proxy.write_endpoint,
        read_endpoint=proxy.read_endpoint,
        write_dsn=pulumi.Output.secret(write_dsn),
        read_dsn=pulumi.Output.secret(read_dsn),
        consul_ui=consul.ui_url,
        prometheus_url=monitoring.prometheus_url,
        patroni_urls=postgres.patroni_urls,
        tiers={"consul": consul, "postgres": postgres, "proxy": proxy, "monitoring": monitoring},
    )
