"""Secret values shared by the cloud platforms: the three Postgres passwords, the Consul gossip key and the
Consul ACL token. Each platform decides only where they are kept (SSM on aws, Secrets on kubernetes).

Generated values are created once and kept in Pulumi state; with ``postgres.passwords.source: config`` the
passwords come from the ``hastack:*Password`` config secrets instead. The logical names below are state:
renaming one would replace the value it holds.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_random as random

from ..render import gossip_key_from
from ..spec import HaStackSpec


@dataclass
class SecretValues:
    """Every value is a Pulumi secret output."""

    superuser: pulumi.Output[str]
    replication: pulumi.Output[str]
    rewind: pulumi.Output[str]
    gossip_key: pulumi.Output[str]
    consul_token: pulumi.Output[str]


def secret_values(name: str, spec: HaStackSpec, parent: pulumi.Resource) -> SecretValues:
    """Random once and kept in state (``generated``), or read from config secrets (``config``)."""
    opts = pulumi.ResourceOptions(parent=parent)

    def generated(key: str) -> pulumi.Output[str]:
        # No special characters: the values pass through shell, YAML and libpq URIs unquoted.
        pw = random.RandomPassword(
            f"{name}-{key}-password", length=spec.postgres.passwords.length, special=False, opts=opts
        )
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


__all__ = ["SecretValues", "secret_values"]
