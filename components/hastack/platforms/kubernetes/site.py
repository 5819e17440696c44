"""Pure Kubernetes layout: object names, labels, per-host addresses and the render Sites. No resources here.

Every plan host becomes its own workload (StatefulSet or Deployment, one replica) pinned to the host's zone,
with its own ClusterIP Service. That keeps three things true that a single multi-replica workload cannot:
the rendered config of a pod names exactly that pod (Consul node name, Patroni member name), the pod's
``hastack.io/zone`` label is where it really runs, and its address (the Service's virtual IP) survives pod
restarts, which HAProxy needs because it resolves backends once at start.
"""

from __future__ import annotations

from ...render import Site
from ...spec import HaStackSpec
from ...topology import LABEL_ROLE, LABEL_STACK, Host, Plan

ROOT = "/hastack"
SECRETS_DIR = "/hastack/secrets"
# Prometheus's mount of the Consul Secret's `token` item, for /v1/agent/metrics behind Consul's ACLs.
METRICS_TOKEN_DIR = f"{SECRETS_DIR}/consul-token"
ZONE_KEY = "topology.kubernetes.io/zone"
HOST_KEY = "kubernetes.io/hostname"
CONSUL_SERVERS_SERVICE = "consul-server"
POSTGRES_MEMBERS_SERVICE = "postgres"
PASSWORDS_SECRET = "postgres-passwords"
CONSUL_SECRET = "consul-secrets"
# Consul advertises an IP, never a name; sockaddr resolves the pod's own address at agent start.
CONSUL_ADVERTISE = "{{ GetPrivateIP }}"
# Pod networks are not known in advance; pg_hba admits the private ranges and NetworkPolicies decide who
# actually reaches Postgres. 127.0.0.1 is the postgres_exporter sidecar.
POD_CIDRS = ("127.0.0.1/32", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10")


def address(spec: HaStackSpec, host: Host) -> str:
    return f"{host.name}.{spec.kubernetes.namespace}.svc.{spec.kubernetes.cluster_domain}"


def service_address(spec: HaStackSpec, service: str) -> str:
    return f"{service}.{spec.kubernetes.namespace}.svc.{spec.kubernetes.cluster_domain}"


def site(plan: Plan) -> Site:
    """How peers reach a host: its per-host Service name. Used for Patroni, proxies and Prometheus."""
    spec = plan.spec
    return Site(
        addresses={h.name: address(spec, h) for h in plan.hosts},
        root=ROOT,
        bind_all=True,
        postgres_bin_dir=f"/usr/lib/postgresql/{spec.postgres.version}/bin",
        consul_servers_dns=service_address(spec, CONSUL_SERVERS_SERVICE),
        client_cidrs=POD_CIDRS,
        extra={
            "nginx_stream_module": "/usr/lib/nginx/modules/ngx_stream_module.so",
            **({"consul_metrics_token_file": f"{METRICS_TOKEN_DIR}/token"} if spec.acl_default_policy else {}),
        },
    )


def consul_site(plan: Plan) -> Site:
    """Consul's own view: it must advertise an IP, so every agent advertises its pod IP."""
    base = site(plan)
    return Site(
        addresses={h.name: CONSUL_ADVERTISE for h in plan.hosts},
        root=base.root,
        bind_all=True,
        consul_servers_dns=base.consul_servers_dns,
        client_cidrs=base.client_cidrs,
    )


def tier_selector(role: str, stack: str) -> dict[str, str]:
    return {LABEL_ROLE: role, LABEL_STACK: stack}


def pod_labels(spec: HaStackSpec, host: Host, stack: str) -> dict[str, str]:
    return {
        **{k: v for k, v in spec.tags.items()},
        "app.kubernetes.io/name": "hastack",
        "app.kubernetes.io/component": host.role,
        "app.kubernetes.io/instance": stack,
        **host.labels(stack),
    }


def object_labels(spec: HaStackSpec, stack: str, role: str | None = None) -> dict[str, str]:
    out = {**spec.tags, "app.kubernetes.io/name": "hastack", "app.kubernetes.io/instance": stack, LABEL_STACK: stack}
    if role:
        out[LABEL_ROLE] = role
        out["app.kubernetes.io/component"] = role
    return out
