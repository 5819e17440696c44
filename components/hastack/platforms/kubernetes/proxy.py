"""ProxyTier on Kubernetes: one proxy Deployment (HAProxy or Nginx, with a Consul client agent) spread over
zones, its ConfigMap, a PDB, the write and read Services clients use and a Service for its stats."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from ...topology import Host
from .site import PROXY_SERVICE, service_address, tier_selector
from .workloads import Context, config_map, consul_container, consul_volumes, pdb, tier_workload

# Annotations that make a LoadBalancer Service internal on the common clouds: the database is never public.
_INTERNAL_LB = {
    "service.beta.kubernetes.io/aws-load-balancer-internal": "true",
    "service.beta.kubernetes.io/aws-load-balancer-scheme": "internal",
    "networking.gke.io/load-balancer-type": "Internal",
    "service.beta.kubernetes.io/azure-load-balancer-internal": "true",
}


class ProxyTier(pulumi.ComponentResource):
    """The ``proxy`` Deployment (replicas = proxy count, >= 2); ``<scope>-primary`` and ``<scope>-replicas``
    Services."""

    proxies: k8s.apps.v1.Deployment
    """The proxy Deployment."""
    write_endpoint: pulumi.Output[str]
    """In-cluster host:port of the write Service."""
    read_endpoint: pulumi.Output[str]
    """In-cluster host:port of the read Service."""

    def __init__(self, name: str, ctx: Context, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hastack:kubernetes:ProxyTier", name, None, opts)
        spec, p = ctx.spec, ctx.spec.ports
        child = pulumi.ResourceOptions(parent=self)
        hosts = ctx.plan.proxies
        config_map(ctx, hosts[0], self)
        # Every proxy renders the same config (the backends are the member Services), so one template fits all.
        self.proxies = self._proxies(ctx, hosts[0], len(hosts), child)
        pdb(ctx, "proxy", self, maxUnavailable=1)
        # Stats and metrics for Prometheus (which addresses the proxy tier by this Service).
        k8s.core.v1.Service(
            f"{name}-stats",
            metadata=ctx.meta(PROXY_SERVICE, "proxy"),
            spec={
                "type": "ClusterIP",
                "selector": tier_selector("proxy", ctx.stack),
                "ports": [
                    {"name": "stats", "port": p.proxy_stats, "targetPort": p.proxy_stats},
                    *(
                        [{"name": "metrics", "port": p.proxy_metrics, "targetPort": p.proxy_metrics}]
                        if spec.proxy.kind == "haproxy"
                        else []
                    ),
                ],
            },
            opts=child,
        )

        svc_type = spec.kubernetes.proxy_service_type
        annotations = _INTERNAL_LB if svc_type == "LoadBalancer" else {}
        endpoints: dict[str, pulumi.Output[str]] = {}
        for kind, port in (("primary", p.proxy_write), ("replicas", p.proxy_read)):
            svc_name = f"{spec.postgres.scope}-{kind}"
            svc = k8s.core.v1.Service(
                f"{name}-{kind}",
                metadata=ctx.meta(svc_name, "proxy", annotations=annotations),
                spec={
                    "type": svc_type,
                    "selector": tier_selector("proxy", ctx.stack),
                    "ports": [{"name": "postgres", "port": port, "targetPort": port}],
                },
                opts=child,
            )
            addr = f"{service_address(spec, svc_name)}:{port}"
            endpoints[kind] = svc.id.apply(lambda _, a=addr: a)
        self.write_endpoint = endpoints["primary"]
        self.read_endpoint = endpoints["replicas"]
        self.register_outputs({"write_endpoint": self.write_endpoint, "read_endpoint": self.read_endpoint})

    def _proxies(self, ctx: Context, host: Host, replicas: int, opts: pulumi.ResourceOptions) -> k8s.apps.v1.Deployment:
        spec, p = ctx.spec, ctx.spec.ports
        paths = ctx.site.paths(host)
        if spec.proxy.kind == "haproxy":
            command = ["haproxy", "-W", "-db", "-f", f"{paths.conf}/haproxy.cfg"]
        else:
            command = ["nginx", "-c", f"{paths.conf}/nginx.conf"]
        proxy: dict[str, Any] = {
            "name": spec.proxy.kind,
            "image": spec.proxy.image,
            "command": command,
            "ports": [
                {"name": "write", "containerPort": p.proxy_write},
                {"name": "read", "containerPort": p.proxy_read},
                {"name": "stats", "containerPort": p.proxy_stats},
                *([{"name": "metrics", "containerPort": p.proxy_metrics}] if spec.proxy.kind == "haproxy" else []),
            ],
            "readinessProbe": {"tcpSocket": {"port": p.proxy_stats}, "periodSeconds": 2},
            "livenessProbe": {"tcpSocket": {"port": p.proxy_stats}, "periodSeconds": 10},
            "securityContext": {"allowPrivilegeEscalation": False},
            "volumeMounts": [
                {"name": "conf", "mountPath": paths.conf, "readOnly": True},
                {"name": "run", "mountPath": paths.run},
            ],
            "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
        }
        return tier_workload(
            k8s.apps.v1.Deployment,
            ctx,
            "proxy",
            replicas,
            {
                "containers": [proxy, consul_container(ctx, host, data_volume="consul-data")],
                "volumes": [
                    *consul_volumes("proxy"),
                    {"name": "consul-data", "emptyDir": {}},
                    {"name": "run", "emptyDir": {}},
                ],
            },
            opts,
            # Start the new proxy before stopping the old one: a proxy is never absent during a rollout.
            strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
        )
