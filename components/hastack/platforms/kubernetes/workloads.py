"""Pieces every tier's pods share: zone spread, the tier workload and ConfigMap, the Consul agent container."""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import pulumi
import pulumi_kubernetes as k8s

from ...render import Site, host_files
from ...spec import HaStackSpec
from ...topology import Host, Plan
from .site import (
    CONSUL_SECRET,
    HOST_KEY,
    SECRETS_DIR,
    WORKLOAD,
    ZONE_KEY,
    object_labels,
    pod_labels,
    tier_selector,
)

W = TypeVar("W")


@dataclass
class Context:
    """What every tier of one stack shares; built once in :func:`hastack.platforms.kubernetes.deploy`."""

    name: str
    stack: str
    spec: HaStackSpec
    plan: Plan
    site: Site
    consul_site: Site
    namespace: pulumi.Output[str]

    def meta(self, name: str, role: str | None = None, **extra: Any) -> dict[str, Any]:
        return {
            "name": name,
            "namespace": self.namespace,
            "labels": object_labels(self.spec, self.stack, role),
            **extra,
        }


def placement(ctx: Context, role: str, replicas: int) -> dict[str, Any]:
    """Spread a tier's replicas over zones, hard: a zone holds at most one more than any other.

    ``minDomains`` makes the scheduler count every configured zone even while one has no schedulable node,
    so replicas wait (Pending) rather than pile into the zones that are left.
    """
    selector = {"matchLabels": tier_selector(role, ctx.stack)}
    return {
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": ZONE_KEY,
                "whenUnsatisfiable": "DoNotSchedule",
                "minDomains": max(1, min(replicas, len(ctx.spec.zones))),
                "labelSelector": selector,
            },
            {"maxSkew": 1, "topologyKey": HOST_KEY, "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": selector},
        ],
    }


def tier_config(ctx: Context, host: Host) -> dict[str, str]:
    """ConfigMap data of a tier, rendered for its representative ``host`` without any secret.

    What names a pod in these files (node and member names, advertise and connect addresses) is the
    representative's; every pod overrides it at start (see :func:`pod_identity_env`).
    """
    files = host_files(ctx.plan, host, ctx.site, secrets=None)
    if host.role != "monitoring":
        # Consul must advertise an IP, so its file comes from the Consul view of the site.
        consul = host_files(ctx.plan, host, ctx.consul_site, secrets=None)
        key = next(p for p in consul if p.endswith("/consul.hcl"))
        files[key] = consul[key]
    return {posixpath.basename(path): content for path, content in files.items()}


def pod_identity_env() -> list[dict[str, Any]]:
    """POD_NAME and POD_IP from the downward API; later env values and the command refer to them as $(VAR)."""
    return [
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
    ]


def tier_workload(
    kind: Callable[..., W],
    ctx: Context,
    role: str,
    replicas: int,
    pod: dict[str, Any],
    opts: pulumi.ResourceOptions,
    *,
    data_size: str | None = None,
    **workload: Any,
) -> W:
    """The StatefulSet or Deployment that runs every pod of tier ``role``, spread over zones.

    ``pod`` is the pod spec besides placement, ``workload`` adds fields such as ``serviceName`` or ``strategy``,
    and ``data_size`` a claim template for each pod's ``data`` volume.
    """
    labels = pod_labels(ctx.spec, role, ctx.stack)
    spec = {
        **workload,
        "replicas": replicas,
        "selector": {"matchLabels": tier_selector(role, ctx.stack)},
        "template": {"metadata": {"labels": labels}, "spec": {**placement(ctx, role, replicas), **pod}},
    }
    if data_size is not None:
        claim: dict[str, Any] = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": data_size}}}
        if ctx.spec.kubernetes.storage_class:
            claim["storageClassName"] = ctx.spec.kubernetes.storage_class
        spec["volumeClaimTemplates"] = [{"metadata": {"name": "data", "labels": labels}, "spec": claim}]
    return kind(f"{ctx.name}-{role}", metadata=ctx.meta(WORKLOAD[role], role), spec=spec, opts=opts)


def peer_service(
    ctx: Context, name: str, service: str, role: str, ports: list[dict[str, Any]], parent: pulumi.Resource
) -> k8s.core.v1.Service:
    """The headless Service a tier's StatefulSets are governed by: it resolves to every pod, ready or not."""
    return k8s.core.v1.Service(
        name,
        metadata=ctx.meta(service, role),
        spec={
            "clusterIP": "None",
            "publishNotReadyAddresses": True,
            "selector": tier_selector(role, ctx.stack),
            "ports": ports,
        },
        opts=pulumi.ResourceOptions(parent=parent),
    )


def config_map(ctx: Context, host: Host, parent: pulumi.Resource) -> k8s.core.v1.ConfigMap:
    """The tier's ConfigMap (named like its workload), rendered for representative ``host``."""
    return k8s.core.v1.ConfigMap(
        f"{ctx.name}-{host.role}",
        metadata=ctx.meta(WORKLOAD[host.role], host.role),
        data=tier_config(ctx, host),
        opts=pulumi.ResourceOptions(parent=parent),
    )


def pdb(ctx: Context, role: str, parent: pulumi.Resource, **budget: int) -> k8s.policy.v1.PodDisruptionBudget:
    return k8s.policy.v1.PodDisruptionBudget(
        f"{ctx.name}-{role}",
        metadata=ctx.meta(role, role),
        spec={"selector": {"matchLabels": tier_selector(role, ctx.stack)}, **budget},
        opts=pulumi.ResourceOptions(parent=parent),
    )


def consul_volumes(role: str) -> list[dict[str, Any]]:
    """The tier's ConfigMap and the Consul secret file for its kind of agent."""
    key = "server.hcl" if role == "consul" else "agent.hcl"
    return [
        {"name": "conf", "configMap": {"name": WORKLOAD[role]}},
        {
            "name": "consul-secret",
            "secret": {"secretName": CONSUL_SECRET, "items": [{"key": key, "path": "secret.hcl"}]},
        },
    ]


def consul_container(ctx: Context, host: Host, *, data_volume: str) -> dict[str, Any]:
    spec, p = ctx.spec, ctx.spec.ports
    paths = ctx.site.paths(host)
    ports = [
        {"name": "serf-lan-tcp", "containerPort": p.consul_serf_lan, "protocol": "TCP"},
        {"name": "serf-lan-udp", "containerPort": p.consul_serf_lan, "protocol": "UDP"},
        {"name": "http", "containerPort": p.consul_http},
    ]
    if host.role == "consul":
        ports.append({"name": "server", "containerPort": p.consul_server})
    return {
        "name": "consul",
        "image": spec.consul.image,
        # Two config dirs: rendered consul.hcl from the ConfigMap, encrypt/ACL tokens from the Secret.
        # -node and -advertise override the representative's values in consul.hcl: each pod is its own node.
        "command": [
            "consul",
            "agent",
            f"-config-file={paths.conf}/consul.hcl",
            f"-config-dir={SECRETS_DIR}/consul",
            "-node=$(POD_NAME)",
            "-advertise=$(POD_IP)",
        ],
        "env": pod_identity_env(),
        "ports": ports,
        "readinessProbe": {
            "tcpSocket": {"port": p.consul_server if host.role == "consul" else p.consul_http},
            "periodSeconds": 5,
        },
        "securityContext": {
            "runAsUser": 100,
            "runAsGroup": 1000,
            "runAsNonRoot": True,
            "allowPrivilegeEscalation": False,
        },
        "volumeMounts": [
            {"name": "conf", "mountPath": paths.conf, "readOnly": True},
            {"name": "consul-secret", "mountPath": f"{SECRETS_DIR}/consul", "readOnly": True},
            {"name": data_volume, "mountPath": f"{paths.data}/consul"},
        ],
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
    }
