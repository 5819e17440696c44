"""PostgresCluster on Kubernetes: one Patroni StatefulSet spread over zones with a volume claim template, a Consul
client agent and postgres_exporter next to Postgres in every pod, a Service per member, and a PDB."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from ...render import SUPERUSER
from ...topology import Host
from .site import (
    CONSUL_SECRET,
    PASSWORDS_SECRET,
    POD_NAME_KEY,
    POSTGRES_MEMBERS_SERVICE,
    address,
    pod_name,
    service_address,
    tier_selector,
)
from .workloads import (
    Context,
    config_map,
    consul_container,
    consul_volumes,
    pdb,
    peer_service,
    pod_identity_env,
    tier_workload,
)

# Spilo's postgres user and group; the data volume must be theirs.
_PG_UID, _PG_GID = 101, 103


def _secret_env(var: str, secret: str, key: str) -> dict[str, object]:
    return {"name": var, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


class PostgresCluster(pulumi.ComponentResource):
    """Postgres members: the ``postgres`` StatefulSet (plan host k is pod ``postgres-<k-1>``)."""

    members: k8s.apps.v1.StatefulSet
    """The Patroni StatefulSet."""
    member_services: dict[str, k8s.core.v1.Service]
    """Each member's stable address, keyed by pod name."""
    patroni_urls: pulumi.Output[list[str]]
    """Patroni REST API of every member (in-cluster)."""

    def __init__(self, name: str, ctx: Context, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hastack:kubernetes:PostgresCluster", name, None, opts)
        p = ctx.spec.ports
        child = pulumi.ResourceOptions(parent=self)
        ports = [{"name": "postgres", "port": p.postgres}]
        peer_service(ctx, f"{name}-members", POSTGRES_MEMBERS_SERVICE, "postgres", ports, self)
        hosts = ctx.plan.postgres
        config_map(ctx, hosts[0], self)
        # A virtual IP per member, selected by the pod-name label the StatefulSet controller sets: it survives
        # pod restarts (a pod IP does not), and HAProxy resolves its backends once, at start.
        self.member_services = {}
        for host in hosts:
            pod = pod_name(ctx.plan, host)
            self.member_services[pod] = k8s.core.v1.Service(
                f"{name}-{pod}",
                metadata=ctx.meta(pod, "postgres"),
                spec={
                    "type": "ClusterIP",
                    "selector": {**tier_selector("postgres", ctx.stack), POD_NAME_KEY: pod},
                    # Replication and the Patroni API must work before a member is ready (e.g. while it clones).
                    "publishNotReadyAddresses": True,
                    "ports": [
                        {"name": n, "port": port, "targetPort": port}
                        for n, port in (
                            ("postgres", p.postgres),
                            ("patroni", p.patroni_api),
                            ("exporter", p.postgres_exporter),
                        )
                    ],
                },
                opts=child,
            )
        self.members = self._members(ctx, hosts[0], len(hosts), child)
        pdb(ctx, "postgres", self, maxUnavailable=1)
        urls = [f"http://{address(ctx.plan, h)}:{p.patroni_api}" for h in hosts]
        self.patroni_urls = self.members.id.apply(lambda _: urls)
        self.register_outputs({"patroni_urls": self.patroni_urls})

    def _members(
        self, ctx: Context, host: Host, replicas: int, opts: pulumi.ResourceOptions
    ) -> k8s.apps.v1.StatefulSet:
        spec, p = ctx.spec, ctx.spec.ports
        paths = ctx.site.paths(host)
        # The pod's member Service, named like the pod (see site.address).
        own = service_address(spec, "$(POD_NAME)")
        patroni = {
            "name": "patroni",
            "image": spec.postgres.image,
            "command": ["patroni", f"{paths.conf}/patroni.yml"],
            "env": [
                # Patroni's environment overrides patroni.yml, which names the representative member: each pod
                # is its own member, reached at its own Service.
                *pod_identity_env(),
                {"name": "PATRONI_NAME", "value": "$(POD_NAME)"},
                {"name": "PATRONI_RESTAPI_CONNECT_ADDRESS", "value": f"{own}:{p.patroni_api}"},
                {"name": "PATRONI_POSTGRESQL_CONNECT_ADDRESS", "value": f"{own}:{p.postgres}"},
                # Patroni reads these instead of passwords in patroni.yml, which is a ConfigMap.
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
        return tier_workload(
            k8s.apps.v1.StatefulSet,
            ctx,
            "postgres",
            replicas,
            {
                "securityContext": {"fsGroup": _PG_GID},
                # Time for Patroni to hand over leadership before the pod is killed.
                "terminationGracePeriodSeconds": 60,
                "containers": [patroni, consul_container(ctx, host, data_volume="consul-data"), exporter],
                "volumes": [
                    *consul_volumes("postgres"),
                    {"name": "consul-data", "emptyDir": {}},
                    {"name": "run", "emptyDir": {}},
                ],
            },
            opts,
            serviceName=POSTGRES_MEMBERS_SERVICE,
            # Members start and are replaced independently; Patroni, not pod order, decides who leads.
            podManagementPolicy="Parallel",
            data_size=f"{spec.kubernetes.storage_gb}Gi",
        )
