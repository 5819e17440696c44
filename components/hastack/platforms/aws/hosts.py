"""Shared by every tier: instance roles, and one host = launch template + instance + status alarm."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from ...render import Site
from ...spec import HaStackSpec
from ...topology import Host, Plan
from .cloud_init import SecretParams
from .site import Layout, base_tags, host_tags


@dataclass
class Context:
    """What every tier of one stack shares; built once in :func:`hastack.platforms.aws.deploy`."""

    name: str
    stack: str
    spec: HaStackSpec
    plan: Plan
    site: Site
    layout: Layout
    vpc_id: pulumi.Output[str]
    subnet_ids: dict[str, pulumi.Output[str]]
    sg_ids: dict[str, pulumi.Output[str]]
    ami_id: pulumi.Output[str]
    param_names: SecretParams
    param_arns: dict[str, pulumi.Output[str]]
    alarm_topic_arn: pulumi.Output[str]
    backup_bucket: pulumi.Output[str] | None = None
    extra: dict[str, object] = field(default_factory=dict)

    def host_groups(self, host: Host) -> list[pulumi.Output[str]]:
        groups = [self.sg_ids[host.role]]
        if host.role != "monitoring":
            groups.append(self.sg_ids["agents"])
        return groups


def instance_role(
    ctx: Context,
    tier: str,
    parent: pulumi.Resource,
    *,
    secret_keys: Sequence[str] = (),
    extra_statements: Sequence[pulumi.Input[dict[str, object]]] = (),
    describe_instances: bool = True,
) -> aws.iam.InstanceProfile:
    """A role per tier: exactly the SSM parameters that tier reads, and ec2:DescribeInstances for
    Consul cloud auto-join (an API without resource-level permissions, hence "*")."""
    opts = pulumi.ResourceOptions(parent=parent)
    name = f"{ctx.name}-{tier}"
    tags = base_tags(ctx.spec, ctx.stack, name)
    role = aws.iam.Role(
        name,
        assume_role_policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}
                ],
            }
        ),
        tags=tags,
        opts=opts,
    )
    # Operators reach hosts through Session Manager, so no security group opens SSH.
    aws.iam.RolePolicyAttachment(
        f"{name}-ssm-core",
        role=role.name,
        policy_arn="arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore",
        opts=opts,
    )
    statements: list[pulumi.Input[dict[str, object]]] = []
    if describe_instances:
        statements.append(
            {"Sid": "ConsulAutoJoin", "Effect": "Allow", "Action": ["ec2:DescribeInstances"], "Resource": "*"}
        )
    if secret_keys:
        arns = [ctx.param_arns[k] for k in secret_keys]
        statements.append(
            pulumi.Output.all(*arns).apply(
                lambda a: {"Sid": "BootSecrets", "Effect": "Allow", "Action": ["ssm:GetParameter"], "Resource": list(a)}
            )
        )
    statements.extend(extra_statements)
    if statements:
        aws.iam.RolePolicy(
            name,
            role=role.id,
            policy=pulumi.Output.all(*statements).apply(
                lambda s: json.dumps({"Version": "2012-10-17", "Statement": list(s)})
            ),
            opts=opts,
        )
    return aws.iam.InstanceProfile(name, role=role.name, tags=tags, opts=opts)


def alarm(
    ctx: Context,
    name: str,
    description: str,
    namespace: str,
    metric: str,
    dimensions: Mapping[str, pulumi.Input[str]],
    *,
    comparison: str,
    threshold: float,
    tags: dict[str, str],
    opts: pulumi.ResourceOptions,
    statistic: str = "Maximum",
    period: int = 60,
    evaluation_periods: int = 2,
    actions: Sequence[pulumi.Input[str]] | None = None,
    notify_ok: bool = False,
) -> aws.cloudwatch.MetricAlarm:
    """A CloudWatch alarm on one metric that notifies the stack's alarm topic (``actions`` replaces that list),
    and with ``notify_ok`` the recovery too."""
    topic = [ctx.alarm_topic_arn]
    return aws.cloudwatch.MetricAlarm(
        name,
        alarm_description=description,
        namespace=namespace,
        metric_name=metric,
        dimensions=dimensions,
        statistic=statistic,
        period=period,
        evaluation_periods=evaluation_periods,
        comparison_operator=comparison,
        threshold=threshold,
        alarm_actions=topic if actions is None else actions,
        ok_actions=topic if notify_ok else None,
        tags=tags,
        opts=opts,
    )


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@dataclass
class Machine:
    host: Host
    instance: aws.ec2.Instance
    private_ip: str


def machine(
    ctx: Context,
    host: Host,
    instance_type: str,
    profile: aws.iam.InstanceProfile,
    user_data: pulumi.Input[str],
    parent: pulumi.Resource,
    *,
    extra_tags: dict[str, str] | None = None,
) -> Machine:
    """Launch template (carrying the cloud-init user data) and the instance, pinned to the host's zone and
    fixed address, plus a status-check alarm that also asks EC2 to recover the instance in place."""
    opts = pulumi.ResourceOptions(parent=parent)
    name = f"{ctx.name}-{host.name}"
    tags = {**host_tags(ctx.spec, ctx.stack, name, host), **(extra_tags or {})}
    template = aws.ec2.LaunchTemplate(
        name,
        image_id=ctx.ami_id,
        instance_type=instance_type,
        iam_instance_profile={"arn": profile.arn},
        vpc_security_group_ids=ctx.host_groups(host),
        user_data=pulumi.Output.from_input(user_data).apply(_b64),
        # IMDSv2 only, one hop: containers on the host cannot borrow the instance role.
        metadata_options={"http_tokens": "required", "http_put_response_hop_limit": 1, "http_endpoint": "enabled"},
        block_device_mappings=[
            {
                "device_name": "/dev/xvda",
                "ebs": {"volume_size": 20, "volume_type": "gp3", "encrypted": "true", "delete_on_termination": "true"},
            }
        ],
        monitoring={"enabled": ctx.spec.aws.detailed_monitoring},
        tag_specifications=[
            {"resource_type": "instance", "tags": tags},
            {"resource_type": "volume", "tags": tags},
        ],
        update_default_version=True,
        tags=tags,
        opts=opts,
    )
    private_ip = ctx.site.addresses[host.name]
    instance = aws.ec2.Instance(
        name,
        launch_template={"id": template.id, "version": template.latest_version.apply(str)},
        subnet_id=ctx.subnet_ids[host.zone],
        availability_zone=host.zone,
        # The rendered configs name this address; a replacement comes back with it.
        private_ip=private_ip,
        tags=tags,
        volume_tags=tags,
        # The fixed address can only be held by one instance at a time, so a replacement deletes first.
        # Config changes do not replace running hosts; they roll one host at a time (docs/platforms.md).
        opts=pulumi.ResourceOptions(parent=parent, delete_before_replace=True),
    )
    instance_id = {"InstanceId": instance.id}
    alarm(
        ctx,
        f"{name}-status",
        f"{host.name} ({host.role}, {host.zone}) fails EC2 status checks",
        "AWS/EC2",
        "StatusCheckFailed",
        instance_id,
        comparison="GreaterThanOrEqualToThreshold",
        threshold=1,
        notify_ok=True,
        tags=tags,
        opts=opts,
    )
    alarm(
        ctx,
        f"{name}-recover",
        f"recover {host.name} on failed host hardware (keeps its IP and volumes)",
        "AWS/EC2",
        "StatusCheckFailed_System",
        instance_id,
        comparison="GreaterThanOrEqualToThreshold",
        threshold=1,
        actions=[f"arn:aws:automate:{ctx.spec.aws.region}:ec2:recover", ctx.alarm_topic_arn],
        tags=tags,
        opts=opts,
    )
    return Machine(host=host, instance=instance, private_ip=private_ip)
