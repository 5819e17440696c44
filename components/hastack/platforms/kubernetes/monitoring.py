"""Monitoring on Kubernetes: a Prometheus Deployment with the shared scrape config and alert rules."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from .site import pod_labels, service_address, tier_selector
from .workloads import Context, config_map, placement


class Monitoring(pulumi.ComponentResource):
    """Prometheus (``<name>-monitoring-<zone>``) and its Service."""

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
            labels = pod_labels(spec, host, ctx.stack)
            config_map(ctx, host, self)
            self.prometheus = k8s.apps.v1.Deployment(
                f"{ctx.name}-{host.name}",
                metadata={**ctx.meta(host.name, "monitoring"), "labels": labels},
                spec={
                    "replicas": 1,
                    # One Prometheus writing a TSDB: never two at once.
                    "strategy": {"type": "Recreate"},
                    "selector": {
                        "matchLabels": {**tier_selector("monitoring", ctx.stack), "hastack.io/host": host.name}
                    },
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {
                            **placement(ctx, host),
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
                                    ],
                                    "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}},
                                }
                            ],
                            "volumes": [
                                {"name": "conf", "configMap": {"name": host.name}},
                                {"name": "tsdb", "emptyDir": {}},
                            ],
                        },
                    },
                },
                opts=child,
            )
            svc = k8s.core.v1.Service(
                f"{name}-prometheus",
                metadata=ctx.meta("prometheus", "monitoring"),
                spec={
                    "selector": tier_selector("monitoring", ctx.stack),
                    "ports": [{"name": "http", "port": p.prometheus, "targetPort": p.prometheus}],
                },
                opts=child,
            )
            url = f"http://{service_address(spec, 'prometheus')}:{p.prometheus}"
            self.prometheus_url = svc.id.apply(lambda _: url)
        self.register_outputs({"prometheus_url": self.prometheus_url})
