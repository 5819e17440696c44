"""Passwords, the Consul gossip key and ACL token: generated (or read from config secrets) and delivered only
as Kubernetes Secrets, referenced by env vars and volumes; ConfigMaps never carry them."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from ...render import gossip_key_from, render_template
from ...spec import HaStackSpec
from .site import CONSUL_SECRET, PASSWORDS_SECRET
from .workloads import Context


@dataclass
class SecretValues:
    superuser: pulumi.Output[str]
    replication: pulumi.Output[str]
    rewind: pulumi.Output[str]
    gossip_key: pulumi.Output[str]
    consul_token: pulumi.Output[str]


def secret_values(name: str, spec: HaStackSpec, parent: pulumi.Resource) -> SecretValues:
    """The same generation rules as on AWS: random once and kept in state, or ``hastack:*Password`` secrets."""
    opts = pulumi.ResourceOptions(parent=parent)

    def generated(key: str) -> pulumi.Output[str]:
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


def secrets(ctx: Context, values: SecretValues, opts: pulumi.ResourceOptions) -> list[k8s.core.v1.Secret]:
    spec = ctx.spec
    acl = spec.acl_default_policy is not None

    def consul_files(args: list[str]) -> dict[str, str]:
        key, token = args
        common = {"gossip_key": key, "token": token if acl else None, "datacenter": spec.consul.datacenter}
        return {
            "server.hcl": render_template("kubernetes/consul-secret.hcl.j2", server=True, **common),
            "agent.hcl": render_template("kubernetes/consul-secret.hcl.j2", server=False, **common),
            "token": token,
        }

    return [
        k8s.core.v1.Secret(
            f"{ctx.name}-passwords",
            metadata=ctx.meta(PASSWORDS_SECRET, "postgres"),
            type="Opaque",
            string_data={"superuser": values.superuser, "replication": values.replication, "rewind": values.rewind},
            opts=opts,
        ),
        k8s.core.v1.Secret(
            f"{ctx.name}-consul-secrets",
            metadata=ctx.meta(CONSUL_SECRET, "consul"),
            type="Opaque",
            # Derived from secret outputs, so the whole stringData stays secret.
            string_data=pulumi.Output.all(values.gossip_key, values.consul_token).apply(consul_files),
            opts=opts,
        ),
    ]
