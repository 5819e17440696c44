"""The Kubernetes platform: a StatefulSet or Deployment per tier, its replicas spread over zones by the scheduler,
configured by ConfigMaps rendered from the shared templates, secrets in Secrets, NetworkPolicies around
Postgres. With ``kubernetes.renderYamlToDirectory`` the provider writes manifests instead of applying them.

Resource map (children of ``HaStack``): the Namespace, Secrets, ``NetworkPolicies``, then the four tiers
every platform has: ``ConsulCluster``, ``PostgresCluster``, ``ProxyTier``, ``Monitoring``
(type tokens ``hastack:kubernetes:*``).
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from ...render import SUPERUSER
from ...spec import HaStackSpec
from ...stack import Endpoints
from ...topology import Plan
from .consul import ConsulCluster
from .monitoring import Monitoring
from .network_policy import NetworkPolicies
from .postgres import PostgresCluster
from .proxy import ProxyTier
from .secrets import secret_values, secrets
from .site import consul_site, object_labels, site
from .workloads import Context

__all__ = ["ConsulCluster", "Monitoring", "PostgresCluster", "ProxyTier", "deploy"]


def deploy(name: str, spec: HaStackSpec, plan: Plan, parent: pulumi.Resource, stack: str) -> Endpoints:
    if spec.postgres.mode != "patroni":  # refused by the spec already; kept for direct callers
        raise ValueError("postgres.mode rds is only available on platform aws")
    providers: list[pulumi.ProviderResource] = []
    if spec.kubernetes.render_yaml_to_directory:
        providers.append(
            k8s.Provider(
                f"{name}-k8s",
                render_yaml_to_directory=spec.kubernetes.render_yaml_to_directory,
                opts=pulumi.ResourceOptions(parent=parent),
            )
        )
    child = pulumi.ResourceOptions(parent=parent, providers=providers)
    ns = k8s.core.v1.Namespace(
        f"{name}-namespace",
        metadata={"name": spec.kubernetes.namespace, "labels": object_labels(spec, stack)},
        opts=child,
    )
    # Everything else waits for the namespace and is deleted before it.
    child = pulumi.ResourceOptions(parent=parent, providers=providers, depends_on=[ns])
    ctx = Context(
        name=name,
        stack=stack,
        spec=spec,
        plan=plan,
        site=site(plan),
        consul_site=consul_site(plan),
        namespace=ns.metadata.apply(lambda m: m["name"] if isinstance(m, dict) else m.name),
    )
    values = secret_values(name, spec, parent)
    secret_objects = secrets(ctx, values, child)
    NetworkPolicies(f"{name}-netpol", ctx, child)
    # Pods start only once their Secrets exist, so no container crash-loops on a missing key at first deploy.
    tiers = pulumi.ResourceOptions(parent=parent, providers=providers, depends_on=[ns, *secret_objects])
    consul = ConsulCluster(f"{name}-consul", ctx, tiers)
    postgres = PostgresCluster(f"{name}-postgres", ctx, tiers)
    proxy = ProxyTier(f"{name}-proxy", ctx, tiers)
    monitoring = Monitoring(f"{name}-monitoring", ctx, tiers)

    def dsn(endpoint: pulumi.Output[str]) -> pulumi.Output[str]:
        return pulumi.Output.all(values.superuser, endpoint).apply(
            lambda a: f"postgresql://{SUPERUSER}:{a[0]}@{a[1]}/postgres"
        )

    return Endpoints(
        write_endpoint=proxy.write_endpoint,
        read_endpoint=proxy.read_endpoint,
        write_dsn=pulumi.Output.secret(dsn(proxy.write_endpoint)),
        read_dsn=pulumi.Output.secret(dsn(proxy.read_endpoint)),
        consul_ui=consul.ui_url,
        prometheus_url=monitoring.prometheus_url,
        patroni_urls=postgres.patroni_urls,
        tiers={"consul": consul, "postgres": postgres, "proxy": proxy, "monitoring": monitoring},
    )
