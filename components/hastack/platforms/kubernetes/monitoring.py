"""Monitoring on Kubernetes: a Prometheus Deployment with the shared scrape config and alert rules, and a PDB."""

from __future__ import annotations

import posixpath
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from .site import CONSUL_SECRET, METRICS_TOKEN_DIR, WORKLOAD, service_address, tier_selector
from .workloads import Context, config_map, pdb, tier_workload


class Monitoring(pulumi.ComponentResource):
    """The ``prometheus`` Deployment (one replica), its ConfigMap and its Service."""

    prometheus: k8s.apps.v1.Deployment | None
    """The Prometheus Deployment, None when monitoring is disabled."""
    prometheus_url: pulumi.Output[str]
    """In-cluster Prometheus URL (empty when disabled)."""

    def __init__(self, name: str, ctx: Context, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hastack:kubernetes:Monitoring", name, None, opts)
        spec, p = ctx.spec, ctx.spec.ports
        child = pulumi.ResourceOptions(parent=self)
        self.prometheus = None
        self.prometheus_url = pulumi.Output.from_input("")
        host = ctx.plan.monitoring
        if host is not None:
            paths = ctx.site.paths(host)
            config_map(ctx, host, self)
            token_volumes: list[dict[str, Any]] = []
            token_mounts: list[dict[str, Any]] = []
            token_file = ctx.site.extra.get("consul_metrics_token_file")
            if token_file:
                # The Consul ACL token for /v1/agent/metrics, from the Secret, never from the ConfigMap.
                token_volumes.append(
                    {
                        "name": "consul-token",
                        "secret": {
                            "secretName": CONSUL_SECRET,
                            "items": [{"key": "token", "path": posixpath.basename(token_file)}],
                            "defaultMode": 0o440,
                        },
                    }
                )
                token_mounts.append({"name": "consul-token", "mountPath": METRICS_TOKEN_DIR, "readOnly": True})
            self.prometheus = tier_workload(
                k8s.apps.v1.Deployment,
                ctx,
                "monitoring",
                1,
                {
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 65534, "fsGroup": 65534},
                    "containers": [
                        {
                            "name": "prometheus",
                            "image": spec.monitoring.image,
                            "args": [
                                f"--config.file={paths.conf}/prometheus.yml",
                                "--storage.tsdb.path=/prometheus",
                                f"--storage.tsdb.retention.time={spec.monitoring.retention}",
                                f"--web.listen-address=:{p.prometheus}",
                            ],
                            "ports": [{"name": "http", "containerPort": p.prometheus}],
                            "readinessProbe": {"httpGet": {"path": "/-/ready", "port": p.prometheus}},
                            "volumeMounts": [
                                {"name": "conf", "mountPath": paths.conf, "readOnly": True},
                                {"name": "tsdb", "mountPath": "/prometheus"},
                                *token_mounts,
                            ],
                            "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}},
                        }
                    ],
                    "volumes": [
                        {"name": "conf", "configMap": {"name": WORKLOAD["monitoring"]}},
                        {"name": "tsdb", "emptyDir": {}},
                        *token_volumes,
                    ],
                },
                child,
                # One Prometheus writing a TSDB: never two at once.
                strategy={"type": "Recreate"},
            )
            # A budget like every other tier's, so voluntary disruptions stay bounded: with one replica,
            # minAvailable 1 would block every node drain, so the one pod may go (and comes back elsewhere).
            pdb(ctx, "monitoring", self, maxUnavailable=1)
            svc = k8s.core.v1.Service(
                f"{name}-prometheus",
                metadata=ctx.meta(WORKLOAD["monitoring"], "monitoring"),
                spec={
                    "selector": tier_selector("monitoring", ctx.stack),
                    "ports": [{"name": "http", "port": p.prometheus, "targetPort": p.prometheus}],
                },
                opts=child,
            )
            url = f"http://{service_address(spec, 'prometheus')}:{p.prometheus}"
            self.prometheus_url = svc.id.apply(lambda _: url)
        self.register_outputs({"prometheus_url": self.prometheus_url})
