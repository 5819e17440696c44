"""Pure Kubernetes layout: object names, labels, per-pod addresses and the render Sites. No resources here.

Every tier is one workload, as in a Helm chart: Consul servers and Patroni are StatefulSets, the proxies and
Prometheus Deployments, each spread over zones by the scheduler. One pod template serves every pod of a tier,
so a tier's config is rendered once, for a representative host, and each pod overrides what names it
(Consul node name and advertise address, Patroni member name and connect addresses) at start from the
downward API. Plan host k of a StatefulSet tier is pod ordinal k-1.
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
# The label the StatefulSet controller puts on each of its pods; per-member Services select by it.
POD_NAME_KEY = "statefulset.kubernetes.io/pod-name"
CONSUL_SERVERS_SERVICE = "consul-server"
POSTGRES_MEMBERS_SERVICE = "postgres"
PROXY_SERVICE = "proxy"
PASSWORDS_SECRET = "postgres-passwords"
CONSUL_SECRET = "consul-secrets"
# Workload (and ConfigMap) name of each tier. A StatefulSet's pods are `<workload>-<ordinal>`.
WORKLOAD = {"consul": "consul-server", "postgres": "postgres", "proxy": "proxy", "monitoring": "prometheus"}
# Consul advertises an IP, never a name; sockaddr resolves the pod's own address at agent start (and the
# container's `-advertise=$(POD_IP)` overrides it anyway).
CONSUL_ADVERTISE = "{{ GetPrivateIP }}"
# Pod networks are not known in advance; pg_hba admits the private ranges and NetworkPolicies decide who
# actually reaches Postgres. 127.0.0.1 is the postgres_exporter sidecar.
POD_CIDRS = ("127.0.0.1/32", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10")


def service_address(spec: HaStackSpec, service: str) -> str:
    return f"{service}.{spec.kubernetes.namespace}.svc.{spec.kubernetes.cluster_domain}"


def pod_name(plan: Plan, host: Host) -> str:
    """The StatefulSet pod that stands for plan ``host``: the tier's k-th host is ordinal k-1."""
    hosts = plan.consul_servers if host.role == "consul" else plan.postgres
    return f"{WORKLOAD[host.role]}-{hosts.index(host)}"


def address(plan: Plan, host: Host) -> str:
    """How peers reach ``host``.

    A Postgres member is its own ClusterIP Service (named like its pod): its virtual IP survives pod
    restarts, which HAProxy needs because it resolves backends once at start. A Consul server is its pod's
    DNS name under the headless Service. Proxies and Prometheus are reached through their tier's Service.
    """
    spec = plan.spec
    if host.role == "postgres":
        return service_address(spec, pod_name(plan, host))
    if host.role == "consul":
        return service_address(spec, f"{pod_name(plan, host)}.{CONSUL_SERVERS_SERVICE}")
    if host.role == "proxy":
        return service_address(spec, PROXY_SERVICE)
    return service_address(spec, WORKLOAD["monitoring"])


def site(plan: Plan) -> Site:
    """How peers reach a host. Used for Patroni, proxies and Prometheus."""
    spec = plan.spec
    return Site(
        addresses={h.name: address(plan, h) for h in plan.hosts},
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


def pod_labels(spec: HaStackSpec, role: str, stack: str) -> dict[str, str]:
    """Labels of a tier's pods. No zone or host label: the scheduler, not the plan, picks each pod's zone."""
    return {
        **spec.tags,
        "app.kubernetes.io/name": "hastack",
        "app.kubernetes.io/component": role,
        "app.kubernetes.io/instance": stack,
        **tier_selector(role, stack),
    }


def object_labels(spec: HaStackSpec, stack: str, role: str | None = None) -> dict[str, str]:
    out = {**spec.tags, "app.kubernetes.io/name": "hastack", "app.kubernetes.io/instance": stack, LABEL_STACK: stack}
    if role:
        out[LABEL_ROLE] = role
        out["app.kubernetes.io/component"] = role
    return out
