"""Pieces every tier's pods share: zone pinning and spread, the Consul agent container, per-host objects."""

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


def placement(ctx: Context, host: Host) -> dict[str, Any]:
    """Pin the pod to its host's zone (its volume is zonal anyway) and keep the tier spread over zones.

    The zone constraint ignores node affinity when counting, so it still measures the whole tier across
    all zones: it refuses to stack a tier into one zone even if someone edits the pin away.
    """
    selector = {"matchLabels": tier_selector(host.role, ctx.stack)}
    return {
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {"matchExpressions": [{"key": ZONE_KEY, "operator": "In", "values": [host.zone]}]}
                    ]
                }
            }
        },
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": ZONE_KEY,
                "whenUnsatisfiable": "DoNotSchedule",
                "nodeAffinityPolicy": "Ignore",
                "labelSelector": selector,
            },
            {"maxSkew": 1, "topologyKey": HOST_KEY, "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": selector},
        ],
    }


def host_config(ctx: Context, host: Host) -> dict[str, str]:
    """ConfigMap data of one host: the shared templates' files, rendered without any secret."""
    files = host_files(ctx.plan, host, ctx.site, secrets=None)
    if host.role != "monitoring":
        # Consul must advertise an IP, so its file comes from the Consul view of the site.
        consul = host_files(ctx.plan, host, ctx.consul_site, secrets=None)
        key = next(p for p in consul if p.endswith("/consul.hcl"))
        files[key] = consul[key]
    return {posixpath.basename(path): content for path, content in files.items()}


def host_meta(ctx: Context, host: Host) -> dict[str, Any]:
    """Metadata of a per-host object, labelled like the host's pod."""
    return {**ctx.meta(host.name, host.role), "labels": pod_labels(ctx.spec, host, ctx.stack)}


def host_workload(
    kind: Callable[..., W],
    ctx: Context,
    host: Host,
    pod: dict[str, Any],
    opts: pulumi.ResourceOptions,
    *,
    data_size: str | None = None,
    **workload: Any,
) -> W:
    """The one-replica StatefulSet or Deployment that runs ``host``'s pod, pinned to its zone.

    ``pod`` is the pod spec besides placement, ``workload`` adds fields such as ``serviceName`` or ``strategy``,
    and ``data_size`` a claim for the pod's ``data`` volume.
    """
    labels = pod_labels(ctx.spec, host, ctx.stack)
    spec = {
        **workload,
        "replicas": 1,
        "selector": {"matchLabels": {**tier_selector(host.role, ctx.stack), "hastack.io/host": host.name}},
        "template": {"metadata": {"labels": labels}, "spec": {**placement(ctx, host), **pod}},
    }
    if data_size is not None:
        claim: dict[str, Any] = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": data_size}}}
        if ctx.spec.kubernetes.storage_class:
            claim["storageClassName"] = ctx.spec.kubernetes.storage_class
        spec["volumeClaimTemplates"] = [{"metadata": {"name": "data", "labels": labels}, "spec": claim}]
    return kind(f"{ctx.name}-{host.name}", metadata=host_meta(ctx, host), spec=spec, opts=opts)


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
    return k8s.core.v1.ConfigMap(
        f"{ctx.name}-{host.name}",
        metadata=host_meta(ctx, host),
        data=host_config(ctx, host),
        opts=pulumi.ResourceOptions(parent=parent),
    )


def host_service(ctx: Context, host: Host, ports: dict[str, int], parent: pulumi.Resource) -> k8s.core.v1.Service:
    """A stable virtual IP per host: peers and HAProxy address the host by this Service's name."""
    return k8s.core.v1.Service(
        f"{ctx.name}-{host.name}",
        metadata=host_meta(ctx, host),
        spec={
            "type": "ClusterIP",
            "selector": {**tier_selector(host.role, ctx.stack), "hastack.io/host": host.name},
            # Replication and the Patroni API must work before a member is ready (e.g. while it clones).
            "publishNotReadyAddresses": True,
            "ports": [{"name": n, "port": p, "targetPort": p} for n, p in ports.items()],
        },
        opts=pulumi.ResourceOptions(parent=parent),
    )


def pdb(ctx: Context, role: str, parent: pulumi.Resource, **budget: int) -> k8s.policy.v1.PodDisruptionBudget:
    return k8s.policy.v1.PodDisruptionBudget(
        f"{ctx.name}-{role}",
        metadata=ctx.meta(role, role),
        spec={"selector": {"matchLabels": tier_selector(role, ctx.stack)}, **budget},
        opts=pulumi.ResourceOptions(parent=parent),
    )


def consul_volumes(host: Host) -> list[dict[str, Any]]:
    """The host's ConfigMap and the Consul secret file for its kind of agent."""
    key = "server.hcl" if host.role == "consul" else "agent.hcl"
    return [
        {"name": "conf", "configMap": {"name": host.name}},
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
        "command": ["consul", "agent", f"-config-file={paths.conf}/consul.hcl", f"-config-dir={SECRETS_DIR}/consul"],
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
