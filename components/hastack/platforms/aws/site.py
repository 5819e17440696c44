"""Pure AWS layout: subnets, fixed private addresses, tags and the render Site. No resources here.

Every host gets a fixed private IP inside its zone's subnet, so the rendered configs (HAProxy backends,
Prometheus targets, pg_hba) are complete before any instance exists, and a replaced instance comes back
at the same address its peers already know.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from ...render import Site
from ...spec import HaStackSpec
from ...topology import LABEL_STACK, Host, Plan

ROOT = "/var/lib/hastack"
# Host byte offset of the first host of a role inside a zone's subnet; AWS reserves .0-.3 of every subnet,
# and leaving gaps lets a zone hold up to 9 hosts of a role without renumbering the others.
_HOST_OFFSET = {"consul": 10, "postgres": 20, "proxy": 30, "monitoring": 40}
CONSUL_JOIN_TAG = "hastack-consul-join"
# The Consul ACL token Prometheus sends to /v1/agent/metrics; the boot script writes it from SSM.
METRICS_TOKEN_FILE = "/etc/hastack/prometheus-consul-token"


@dataclass(frozen=True)
class Layout:
    vpc_cidr: str
    private: dict[str, str]  # zone -> subnet CIDR
    public: str  # NAT gateway subnet

    def host_ip(self, host: Host) -> str:
        net = ipaddress.ip_network(self.private[host.zone])
        return str(net.network_address + _HOST_OFFSET[host.role] + host.ordinal - 1)


def layout(spec: HaStackSpec) -> Layout:
    """A /20 private subnet per zone in zone order, and the last /24 of the VPC for the NAT gateway.

    The spec has already refused a VPC without room for them (``HaStackSpec._cross``)."""
    vpc = ipaddress.IPv4Network(spec.aws.vpc_cidr)
    twenties = list(vpc.subnets(new_prefix=20))
    public = list(twenties[-1].subnets(new_prefix=24))[-1]
    return Layout(
        vpc_cidr=str(vpc),
        private={z: str(twenties[i]) for i, z in enumerate(spec.zones)},
        public=str(public),
    )


def consul_join_value(name: str, stack: str) -> str:
    return f"{stack}-{name}"


def site(plan: Plan, name: str, stack: str) -> Site:
    """The AWS render site: fixed private IPs, cloud auto-join on tags, pg_hba open only to proxies and peers."""
    spec = plan.spec
    lay = layout(spec)
    addresses = {h.name: lay.host_ip(h) for h in plan.hosts}
    # Only the proxies (client traffic) and the other Postgres nodes (replication, pg_rewind) ever connect;
    # the security groups say the same, pg_hba repeats it so a mistaken SG rule alone opens nothing.
    clients = tuple(f"{addresses[h.name]}/32" for h in (*plan.proxies, *plan.postgres))
    join = f"provider=aws region={spec.aws.region} tag_key={CONSUL_JOIN_TAG} tag_value={consul_join_value(name, stack)}"
    return Site(
        addresses=addresses,
        root=ROOT,
        postgres_bin_dir=f"/usr/lib/postgresql/{spec.postgres.version}/bin",
        consul_join=(join,),
        client_cidrs=clients,
        extra=metrics_token_extra(plan, METRICS_TOKEN_FILE),
    )


def metrics_token_extra(plan: Plan, path: str) -> dict[str, str]:
    """Site extra naming the Consul token file Prometheus reads, when Consul runs with ACLs."""
    if plan.monitoring is None or not plan.consul_servers or plan.spec.acl_default_policy is None:
        return {}
    return {"consul_metrics_token_file": path}


def base_tags(spec: HaStackSpec, stack: str, name: str) -> dict[str, str]:
    """General to specific: Name, then the stack's own tags, then the user's (which win)."""
    return {"Name": name, LABEL_STACK: stack, "hastack.io/environment": spec.environment, **spec.tags}


def host_tags(spec: HaStackSpec, stack: str, name: str, host: Host) -> dict[str, str]:
    return {**base_tags(spec, stack, name), **host.labels(stack)}
