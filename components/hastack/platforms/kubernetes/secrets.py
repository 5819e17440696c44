"""Passwords, the Consul gossip key and ACL token: generated (or read from config secrets) and delivered only
as Kubernetes Secrets, referenced by env vars and volumes; ConfigMaps never carry them."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from ...render import render_template
from .._secrets import SecretValues, secret_values
from .site import CONSUL_SECRET, PASSWORDS_SECRET
from .workloads import Context


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


__all__ = ["SecretValues", "secret_values", "secrets"]
