"""Passwords and the Consul gossip key, kept in SSM Parameter Store as SecureString.

Values live only in Pulumi secrets and SSM; hosts fetch them at boot through their instance role, so no
password is ever part of user data or a launch template.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from ...spec import HaStackSpec
from .._secrets import SecretValues, secret_values
from .cloud_init import SecretParams
from .site import base_tags


@dataclass
class SecretParameters:
    names: SecretParams
    arns: dict[str, pulumi.Output[str]]  # key (superuser, gossip, ...) -> parameter ARN


def parameters(
    name: str, spec: HaStackSpec, stack: str, values: SecretValues, parent: pulumi.Resource
) -> SecretParameters:
    prefix = f"/hastack/{stack}/{name}"
    names = SecretParams(
        superuser=f"{prefix}/superuser-password",
        replication=f"{prefix}/replication-password",
        rewind=f"{prefix}/rewind-password",
        gossip=f"{prefix}/consul-gossip-key",
        consul_token=f"{prefix}/consul-token",
    )
    arns: dict[str, pulumi.Output[str]] = {}
    for key, value in (
        ("superuser", values.superuser),
        ("replication", values.replication),
        ("rewind", values.rewind),
        ("gossip", values.gossip_key),
        ("consul_token", values.consul_token),
    ):
        param_name = getattr(names, key)
        param = aws.ssm.Parameter(
            f"{name}-{key.replace('_', '-')}",
            name=param_name,
            type="SecureString",
            value=value,
            description=f"hastack {stack}: {key.replace('_', ' ')}",
            tags=base_tags(spec, stack, param_name),
            opts=pulumi.ResourceOptions(parent=parent),
        )
        arns[key] = param.arn
    return SecretParameters(names=names, arns=arns)


__all__ = ["SecretParameters", "SecretValues", "parameters", "secret_values"]
