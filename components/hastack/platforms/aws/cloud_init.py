"""Pure: the cloud-init user data of one AWS host, from the shared rendered files. No resources here."""

from __future__ import annotations

from dataclasses import dataclass

from ...render import Site, host_files, render_template
from ...topology import Host, Plan

# EC2 refuses user data over 16 KiB; tests hold every rendered payload to this.
USER_DATA_LIMIT = 16 * 1024


@dataclass(frozen=True)
class SecretParams:
    """SSM parameter names (not values) the boot script reads through the instance role."""

    superuser: str
    replication: str
    rewind: str
    gossip: str
    consul_token: str


def units(host: Host, proxy_kind: str) -> list[str]:
    """systemd units a host runs, in start order."""
    if host.role == "consul":
        return ["consul"]
    if host.role == "postgres":
        return ["consul", "patroni", "postgres-exporter"]
    if host.role == "proxy":
        return ["consul", proxy_kind]
    return ["prometheus"]


def user_data(
    plan: Plan,
    host: Host,
    site: Site,
    params: SecretParams,
    *,
    region: str,
    data_volume_id: str | None = None,
) -> str:
    """``#cloud-config`` for ``host``: the shared templates' files (rendered without secrets), systemd
    units, and a boot script that fetches secrets from SSM into files only the service user reads."""
    spec = plan.spec
    paths = site.paths(host)
    files = host_files(plan, host, site, secrets=None)
    ctx = {"spec": spec, "host": host, "paths": paths, "bind": site.bind(host)}
    rendered_units = {
        f"hastack-{kind}.service": render_template("cloud-init-unit.service.j2", kind=kind, **ctx)
        for kind in units(host, spec.proxy.kind)
    }
    if host.role == "postgres" and data_volume_id is None:
        raise ValueError(f"{host.name}: a Postgres host needs its data volume id")
    return render_template(
        "cloud-init.yaml.j2",
        files=files,
        units=rendered_units,
        params=params,
        region=region,
        data_volume_id=data_volume_id or "",
        metrics_token_file=site.extra.get("consul_metrics_token_file") if host.role == "monitoring" else None,
        **ctx,
    )
