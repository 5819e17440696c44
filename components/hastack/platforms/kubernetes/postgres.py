"""PostgresCluster on Kubernetes: a Patroni StatefulSet per zone with its volume claim, a Consul client agent
and postgres_exporter next to Postgres in the same pod, and a PDB."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from ...render import SUPERUSER
from ...topology import Host
from .site import CONSUL_SECRET, PASSWORDS_SECRET, POSTGRES_MEMBERS_SERVICE, address
from .workloads import (
    Context,
    config_map,
    consul_container,
    consul_volumes,
    host_service,
    host_workload,
    pdb,
    peer_service,
)

# Spilo's postgres user and group; the data volume must be theirs.
_PG_UID, _PG_GID = 101, 103


def _secret_env(var: str, secret: str, key: str) -> dict[str, object]:
    return {"name": var, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


class PostgresCluster(pulumi.ComponentResource):
    """Postgres members keyed by zone (``<name>-postgres-<zone>``)."""

    members: dict[str, k8s.apps.v1.StatefulSet]
    """Member StatefulSets keyed by host name."""
    patroni_urls: pulumi.Output[list[str]]
    """Patroni REST API of every member (in-cluster)."""

    def __init__(self, name: str, ctx: Context, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hastack:kubernetes:PostgresCluster", name, None, opts)
        spec, p = ctx.spec, ctx.spec.ports
        child = pulumi.ResourceOptions(parent=self)
        ports = [{"name": "postgres", "port": p.postgres}]
        peer_service(ctx, f"{name}-members", POSTGRES_MEMBERS_SERVICE, "postgres", ports, self)
        self.members = {}
        for host in ctx.plan.postgres:
            config_map(ctx, host, self)
            host_service(
                ctx,
                host,
                {"postgres": p.postgres, "patroni": p.patroni_api, "exporter": p.postgres_exporter},
                self,
            )
            self.members[host.name] = self._member(ctx, host, child)
        pdb(ctx, "postgres", self, maxUnavailable=1)
        urls = [f"http://{address(spec, h)}:{p.patroni_api}" for h in ctx.plan.postgres]
        self.patroni_urls = pulumi.Output.all(*[m.id for m in self.members.values()]).apply(lambda _: urls)
        self.register_outputs({"patroni_urls": self.patroni_urls})

    def _member(self, ctx: Context, host: Host, opts: pulumi.ResourceOptions) -> k8s.apps.v1.StatefulSet:
        spec, p = ctx.spec, ctx.spec.ports
        paths = ctx.site.paths(host)
        patroni = {
            "name": "patroni",
            "image": spec.postgres.image,
            "command": ["patroni", f"{paths.conf}/patroni.yml"],
            # Patroni reads these instead of passwords in patroni.yml, which is a ConfigMap.
            "env": [
                _secret_env("PATRONI_SUPERUSER_PASSWORD", PASSWORDS_SECRET, "superuser"),
                _secret_env("PATRONI_REPLICATION_PASSWORD", PASSWORDS_SECRET, "replication"),
                _secret_env("PATRONI_REWIND_PASSWORD", PASSWORDS_SECRET, "rewind"),
                *([_secret_env("PATRONI_CONSUL_TOKEN", CONSUL_SECRET, "token")] if spec.acl_default_policy else []),
            ],
            "ports": [
                {"name": "postgres", "containerPort": p.postgres},
                {"name": "patroni", "containerPort": p.patroni_api},
            ],
            "readinessProbe": {"httpGet": {"path": "/readiness", "port": p.patroni_api}, "periodSeconds": 5},
            "livenessProbe": {
                "httpGet": {"path": "/liveness", "port": p.patroni_api},
                "periodSeconds": 10,
                "failureThreshold": 6,
            },
            "securityContext": {
                "runAsUser": _PG_UID,
                "runAsGroup": _PG_GID,
                "runAsNonRoot": True,
                "allowPrivilegeEscalation": False,
            },
            "volumeMounts": [
                {"name": "conf", "mountPath": paths.conf, "readOnly": True},
                {"name": "data", "mountPath": paths.data},
                {"name": "run", "mountPath": paths.run},
            ],
            "resources": {"requests": {"cpu": "250m", "memory": "512Mi"}},
        }
        exporter = {
            "name": "postgres-exporter",
            "image": spec.kubernetes.postgres_exporter_image,
            "env": [
                {"name": "DATA_SOURCE_URI", "value": f"127.0.0.1:{p.postgres}/postgres?sslmode=disable"},
                {"name": "DATA_SOURCE_USER", "value": SUPERUSER},
                _secret_env("DATA_SOURCE_PASS", PASSWORDS_SECRET, "superuser"),
            ],
            "args": [f"--web.listen-address=:{p.postgres_exporter}"],
            "ports": [{"name": "exporter", "containerPort": p.postgres_exporter}],
            "securityContext": {"runAsNonRoot": True, "runAsUser": 65534, "allowPrivilegeEscalation": False},
            "resources": {"requests": {"cpu": "20m", "memory": "32Mi"}},
        }
        return host_workload(
            k8s.apps.v1.StatefulSet,
            ctx,
            host,
            {
                "securityContext": {"fsGroup": _PG_GID},
                # Time for Patroni to hand over leadership before the pod is killed.
                "terminationGracePeriodSeconds": 60,
                "containers": [patroni, consul_container(ctx, host, data_volume="consul-data"), exporter],
                "volumes": [
                    *consul_volumes(host),
                    {"name": "consul-data", "emptyDir": {}},
                    {"name": "run", "emptyDir": {}},
                ],
            },
            opts,
            serviceName=POSTGRES_MEMBERS_SERVICE,
            data_size=f"{spec.kubernetes.storage_gb}Gi",
        )
