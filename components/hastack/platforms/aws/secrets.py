"""Passwords and the Consul gossip key, kept in SSM Parameter Store as SecureString.

Values live only in Pulumi secrets and SSM; hosts fetch them at boot through their instance role, so no
password is ever part of user data or a launch template.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from ...render import gossip_key_from
from ...spec import HaStackSpec
from .cloud_init import SecretParams
from .site import base_tags


@dataclass
class SecretValues:
    superuser: pulumi.Output[str]
    replication: pulumi.Output[str]
    rewind: pulumi.Output[str]
    gossip_key: pulumi.Output[str]
    consul_token: pulumi.Output[str]


def secret_values(name: str, spec: HaStackSpec, parent: pulumi.Resource) -> SecretValues:
    """Generated once and kept in state (``generated``) or read from config secrets (``config``)."""
    opts = pulumi.ResourceOptions(parent=parent)
    length = spec.postgres.passwords.length

    def generated(key: str) -> pulumi.Output[str]:
        # No special characters: the values pass through shell, YAML and libpq URIs unquoted.
        pw = random.RandomPassword(f"{name}-{key}-password", length=length, special=False, opts=opts)
        return pulumi.Output.secret(pw.result)

    if spec.postgres.passwords.source == "config":
        cfg = pulumi.Config("hastack")
        superuser = cfg.require_secret("superuserPassword")
        replication = cfg.require_secret("replicationPassword")
        rewind = cfg.require_secret("rewindPassword")
    else:
        superuser, replication, rewind = generated("superuser"), generated("replication"), generated("rewind")
    seed = random.RandomPassword(f"{name}-gossip-seed", length=64, special=False, opts=opts)
    token = random.RandomUuid(f"{name}-consul-token", opts=opts)
    return SecretValues(
        superuser=superuser,
        replication=replication,
        rewind=rewind,
        gossip_key=pulumi.Output.secret(seed.result.apply(gossip_key_from)),
        consul_token=pulumi.Output.secret(token.result),
    )


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
