"""Network: a VPC with a private subnet per zone, VPC endpoints for SSM and S3, optional NAT for first boot.
Security groups: least privilege between tiers, and no 0.0.0.0/0 ingress anywhere."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from ...spec import HaStackSpec
from .site import Layout, base_tags

ANYWHERE = "0.0.0.0/0"


class Network(pulumi.ComponentResource):
    """VPC, one private subnet per zone (keyed by zone), endpoints for the services hosts call at runtime."""

    vpc_id: pulumi.Output[str]
    """The VPC's id."""
    subnet_ids: dict[str, pulumi.Output[str]]
    """Private subnet id per zone."""

    def __init__(
        self, name: str, spec: HaStackSpec, lay: Layout, stack: str, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("hastack:aws:Network", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        def tags(n: str) -> dict[str, str]:
            return base_tags(spec, stack, n)

        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=lay.vpc_cidr,
            enable_dns_support=True,
            enable_dns_hostnames=True,
            tags=tags(f"{name}-vpc"),
            opts=child,
        )
        private_rt = aws.ec2.RouteTable(f"{name}-private", vpc_id=vpc.id, tags=tags(f"{name}-private"), opts=child)
        self.subnet_ids = {}
        for zone, cidr in lay.private.items():
            subnet = aws.ec2.Subnet(
                f"{name}-private-{zone}",
                vpc_id=vpc.id,
                cidr_block=cidr,
                availability_zone=zone,
                map_public_ip_on_launch=False,
                tags={**tags(f"{name}-private-{zone}"), "hastack.io/zone": zone, "hastack.io/tier": "private"},
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{zone}", subnet_id=subnet.id, route_table_id=private_rt.id, opts=child
            )
            self.subnet_ids[zone] = subnet.id

        if spec.aws.nat_gateway:
            # One NAT, not one per zone: hosts need the internet only at first boot (packages, the Consul
            # release); everything they call at runtime (SSM, S3) goes through the endpoints below.
            first = spec.zones[0]
            igw = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=vpc.id, tags=tags(f"{name}-igw"), opts=child)
            public = aws.ec2.Subnet(
                f"{name}-public-{first}",
                vpc_id=vpc.id,
                cidr_block=lay.public,
                availability_zone=first,
                map_public_ip_on_launch=False,
                tags={**tags(f"{name}-public-{first}"), "hastack.io/zone": first, "hastack.io/tier": "public"},
                opts=child,
            )
            public_rt = aws.ec2.RouteTable(
                f"{name}-public",
                vpc_id=vpc.id,
                routes=[{"cidr_block": ANYWHERE, "gateway_id": igw.id}],
                tags=tags(f"{name}-public"),
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-public-{first}", subnet_id=public.id, route_table_id=public_rt.id, opts=child
            )
            eip = aws.ec2.Eip(f"{name}-nat", domain="vpc", tags=tags(f"{name}-nat"), opts=child)
            nat = aws.ec2.NatGateway(
                f"{name}-nat",
                subnet_id=public.id,
                allocation_id=eip.id,
                tags=tags(f"{name}-nat"),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[igw]),
            )
            aws.ec2.Route(
                f"{name}-private-default",
                route_table_id=private_rt.id,
                destination_cidr_block=ANYWHERE,
                nat_gateway_id=nat.id,
                opts=child,
            )

        self.endpoints_sg = aws.ec2.SecurityGroup(
            f"{name}-endpoints",
            vpc_id=vpc.id,
            description="hastack VPC interface endpoints: HTTPS from inside the VPC",
            tags={**tags(f"{name}-endpoints"), "hastack.io/group": "endpoints"},
            opts=child,
        )
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-endpoints-in-https-from-vpc",
            security_group_id=self.endpoints_sg.id,
            ip_protocol="tcp",
            from_port=443,
            to_port=443,
            cidr_ipv4=lay.vpc_cidr,
            description="AWS API calls from hosts",
            opts=child,
        )
        # Hosts read their secrets from SSM at every boot; a private endpoint keeps that working in any zone
        # even while the single NAT gateway's zone is down.
        aws.ec2.VpcEndpoint(
            f"{name}-ssm",
            vpc_id=vpc.id,
            service_name=f"com.amazonaws.{spec.aws.region}.ssm",
            vpc_endpoint_type="Interface",
            private_dns_enabled=True,
            subnet_ids=list(self.subnet_ids.values()),
            security_group_ids=[self.endpoints_sg.id],
            tags=tags(f"{name}-ssm"),
            opts=child,
        )
        aws.ec2.VpcEndpoint(
            f"{name}-s3",
            vpc_id=vpc.id,
            service_name=f"com.amazonaws.{spec.aws.region}.s3",
            vpc_endpoint_type="Gateway",
            route_table_ids=[private_rt.id],
            tags=tags(f"{name}-s3"),
            opts=child,
        )
        self.vpc_id = vpc.id
        self.register_outputs({"vpc_id": self.vpc_id, "subnet_ids": self.subnet_ids})


@dataclass(frozen=True)
class Rule:
    """One security group rule; ``peer`` is another group's key or a CIDR."""

    group: str
    direction: str  # "in" | "out"
    protocol: str  # "tcp" | "udp" | "-1"
    port: int | None  # None: all ports
    peer: str
    why: str

    @property
    def peer_is_group(self) -> bool:
        return "/" not in self.peer

    def key(self) -> str:
        port = "all" if self.port is None else str(self.port)
        peer = self.peer if self.peer_is_group else self.peer.replace("/", "-").replace(".", "-")
        return f"{self.group}-{self.direction}-{self.protocol.replace('-1', 'any')}-{port}-{peer}"


# Host groups; every host also joins "agents" when it runs Consul.
HOST_GROUPS = ("agents", "consul", "postgres", "proxy", "monitoring")


def rules(spec: HaStackSpec, vpc_cidr: str) -> list[Rule]:
    """The whole firewall as data: a pure function, so tests and reviewers read one list."""
    p = spec.ports
    clients = [vpc_cidr, *spec.aws.allowed_cidrs]
    out = [
        Rule("agents", "in", "tcp", p.consul_serf_lan, "agents", "Consul LAN gossip"),
        Rule("agents", "in", "udp", p.consul_serf_lan, "agents", "Consul LAN gossip"),
        Rule("consul", "in", "tcp", p.consul_server, "agents", "Consul server RPC and Raft"),
        Rule("consul", "in", "tcp", p.consul_http, "monitoring", "Prometheus scrapes Consul metrics"),
        Rule("postgres", "in", "tcp", p.postgres, "proxy", "client traffic through the proxies"),
        Rule("postgres", "in", "tcp", p.postgres, "postgres", "streaming replication and pg_rewind"),
        Rule("postgres", "in", "tcp", p.patroni_api, "proxy", "HAProxy /primary and /replica checks"),
        Rule("postgres", "in", "tcp", p.patroni_api, "postgres", "Patroni members compare WAL positions"),
        Rule("postgres", "in", "tcp", p.patroni_api, "monitoring", "Prometheus scrapes Patroni"),
        Rule("postgres", "in", "tcp", p.postgres_exporter, "monitoring", "Prometheus scrapes postgres_exporter"),
        Rule("proxy", "in", "tcp", p.proxy_write, "nlb", "writes from the NLB"),
        Rule("proxy", "in", "tcp", p.proxy_read, "nlb", "reads from the NLB"),
        Rule("proxy", "in", "tcp", p.proxy_stats, "nlb", "NLB target health check"),
        Rule("proxy", "in", "tcp", p.proxy_metrics, "monitoring", "Prometheus scrapes the proxy"),
        *[Rule("nlb", "in", "tcp", p.proxy_write, c, "database clients, writes") for c in clients],
        *[Rule("nlb", "in", "tcp", p.proxy_read, c, "database clients, reads") for c in clients],
        Rule("nlb", "out", "-1", None, vpc_cidr, "to proxy targets"),
        *[Rule("monitoring", "in", "tcp", p.prometheus, c, "Prometheus UI and API") for c in clients],
    ]
    if spec.postgres.mode == "rds":
        # Managed mode has no proxy tier: clients reach RDS's own endpoints directly.
        out += [Rule("postgres", "in", "tcp", p.postgres, c, "database clients (RDS)") for c in clients]
    for group in HOST_GROUPS:
        if group == "agents":
            continue
        out.append(Rule(group, "out", "-1", None, vpc_cidr, "peers, VPC endpoints"))
        if spec.aws.nat_gateway:
            # Package mirrors and the Consul release, through the NAT gateway at first boot.
            out.append(Rule(group, "out", "tcp", 443, ANYWHERE, "HTTPS package downloads"))
            out.append(Rule(group, "out", "tcp", 80, ANYWHERE, "Debian mirrors (signed packages over HTTP)"))
    return out


class SecurityGroups(pulumi.ComponentResource):
    """One group per tier plus "agents" (every Consul agent) and "nlb"; rules from :func:`rules`."""

    ids: dict[str, pulumi.Output[str]]
    """Group id per tier key (agents, consul, postgres, proxy, monitoring, nlb)."""

    def __init__(
        self,
        name: str,
        spec: HaStackSpec,
        vpc_id: pulumi.Input[str],
        vpc_cidr: str,
        stack: str,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("hastack:aws:SecurityGroups", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.ids = {}
        for group in (*HOST_GROUPS, "nlb"):
            sg = aws.ec2.SecurityGroup(
                f"{name}-{group}",
                vpc_id=vpc_id,
                description=f"hastack {group}",
                tags={**base_tags(spec, stack, f"{name}-{group}"), "hastack.io/group": group},
                opts=child,
            )
            self.ids[group] = sg.id
        self.rules = rules(spec, vpc_cidr)
        for rule in self.rules:
            common = {
                "security_group_id": self.ids[rule.group],
                "ip_protocol": rule.protocol,
                "description": rule.why,
            }
            if rule.port is not None:
                common.update(from_port=rule.port, to_port=rule.port)
            if rule.peer_is_group:
                common["referenced_security_group_id"] = self.ids[rule.peer]
            else:
                common["cidr_ipv4"] = rule.peer
            cls = aws.vpc.SecurityGroupIngressRule if rule.direction == "in" else aws.vpc.SecurityGroupEgressRule
            cls(f"{name}-{rule.key()}", opts=child, **common)
        self.register_outputs({"ids": self.ids})
