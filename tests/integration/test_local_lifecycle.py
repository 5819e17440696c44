"""The local platform end to end, through the real engine: nothing -> healthy -> targeted update ->
both proxy kinds across a switchover -> destroyed with nothing left.

Tests in this module run in order against one stack.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from hastack.ops import Stack
from hastack.platforms.local.health import get_json, patroni_cluster, routed_to
from hastack.platforms.local.supervisor import wait_for

from .conftest import live_pids_under, pulumi

pytestmark = pytest.mark.integration
STACK = "itest-local"
ROOT = f"/var/lib/hastack/{STACK}"


def _leader(stack: Stack) -> tuple[str, str]:
    p = stack.plan
    cluster = patroni_cluster({h.name: f"http://{h.local_address}:{p.spec.ports.patroni_api}" for h in p.postgres})
    assert cluster is not None
    leader = next(m["name"] for m in cluster["members"] if m["role"] == "leader")
    return leader, p.host(leader).local_address


def _password(stack: Stack) -> str:
    dsn = stack.outputs(secrets=True)["writeDsn"]
    return psycopg.conninfo.conninfo_to_dict(dsn)["password"]


def _routes_writes_to_leader(stack: Stack) -> bool:
    _, leader_addr = _leader(stack)
    pw = _password(stack)
    port = stack.spec.ports.proxy_write
    return all(routed_to(h.local_address, port, pw) == (leader_addr, False) for h in stack.plan.proxies)


def _switchover(stack: Stack) -> str:
    leader, _ = _leader(stack)
    p = stack.plan
    cluster = patroni_cluster({h.name: f"http://{h.local_address}:{p.spec.ports.patroni_api}" for h in p.postgres})
    assert cluster is not None
    # In synchronous mode Patroni only hands over to a synchronous standby: it has every commit.
    candidate = next(m["name"] for m in cluster["members"] if m["role"] == "sync_standby")
    conf = f"{ROOT}/{leader}/conf/patroni.yml"
    subprocess.run(
        ["/opt/hastack/venv/bin/patronictl", "-c", conf, "switchover", "--leader", leader,
         "--candidate", candidate, "--force"],
        check=True, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    wait_for(lambda: _leader(stack)[0] == candidate, 60, what=f"{candidate} to lead")
    return candidate


@pytest.fixture(scope="module")
def stack(request):
    from .conftest import remove_stack, write_stack_config

    remove_stack(STACK)
    write_stack_config(STACK, 40)
    s = Stack(STACK)
    request.addfinalizer(lambda: remove_stack(STACK))
    return s


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "hastack.cli", *args, "--stack", STACK],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip


def test_up_goes_from_nothing_to_healthy(stack):
    # Through the same command `make up` runs, so its exit code and summary are part of the contract.
    t0 = time.monotonic()
    result = _cli("up")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert f"stack {STACK} is up and healthy" in result.stdout
    print(f"hastack up from empty state: {time.monotonic() - t0:.1f}s")
    history = json.loads(pulumi("stack", "history", "--json", "--stack", STACK, check=True).stdout)
    assert history[0]["result"] == "succeeded" and history[0]["resourceChanges"]["create"] > 40


def test_status_reads_every_zone_at_a_glance(stack):
    wait_for(lambda: _cli("status").returncode == 0, 60, what="`hastack status` to report every host ok")
    out = _cli("status").stdout
    leader, _ = _leader(stack)
    assert f"leader {leader}" in out
    for host in stack.plan.hosts:
        assert host.name in out and host.local_address in out


def test_a_write_through_the_write_port_lands_on_the_patroni_leader(stack):
    leader, leader_addr = _leader(stack)
    dsn = stack.outputs(secrets=True)["writeDsn"]
    with psycopg.connect(dsn) as conn:
        conn.execute("create table if not exists itest (id int primary key, at timestamptz default now())")
        conn.execute("insert into itest (id) values (1)")
        server, in_recovery = conn.execute("select host(inet_server_addr()), pg_is_in_recovery()").fetchone()
    assert (server, in_recovery) == (leader_addr, False), f"write landed on {server}, leader is {leader}"


def test_a_read_through_the_read_port_lands_on_a_replica(stack):
    _, leader_addr = _leader(stack)
    replicas = {h.local_address for h in stack.plan.postgres} - {leader_addr}
    dsn = stack.outputs(secrets=True)["readDsn"]
    with psycopg.connect(dsn) as conn:
        server, in_recovery = conn.execute("select host(inet_server_addr()), pg_is_in_recovery()").fetchone()
        # The row written through the write port is on the replica too: synchronous replication.
        assert conn.execute("select count(*) from itest where id = 1").fetchone() == (1,)
    assert in_recovery and server in replicas


def test_prometheus_reports_every_target_up(stack):
    url = stack.outputs()["prometheusUrl"]
    expected = len(stack.plan.postgres) * 2 + len(stack.plan.consul_servers) + len(stack.plan.proxies)

    def all_up():
        active = get_json(f"{url}/api/v1/targets")["data"]["activeTargets"]
        return len(active) == expected and all(t["health"] == "up" for t in active)

    wait_for(all_up, 60, what="every Prometheus target up")


def test_alert_rules_are_loaded(stack):
    url = stack.outputs()["prometheusUrl"]
    groups = get_json(f"{url}/api/v1/rules")["data"]["groups"]
    names = {r["name"] for g in groups for r in g["rules"]}
    assert {"PostgresNoLeader", "PostgresSyncStandbyMissing", "ConsulQuorumAtRisk", "ProxyPrimaryBackendDown"} <= names


def test_secret_files_are_0600_and_no_password_is_in_plain_state(stack):
    pw = _password(stack)
    for host in stack.plan.postgres:
        mode = stat.S_IMODE(os.stat(f"{ROOT}/{host.name}/conf/patroni.yml").st_mode)
        assert mode == 0o600
    for host in stack.plan.consul_servers:
        assert stat.S_IMODE(os.stat(f"{ROOT}/{host.name}/conf/consul.hcl").st_mode) == 0o600
    exported = pulumi("stack", "export", "--stack", STACK, check=True).stdout
    assert pw not in exported
    assert json.loads(exported)["deployment"]["secrets_providers"]["type"] == "passphrase"


def test_a_second_preview_shows_no_changes(stack):
    result = stack.preview(on_output=None, policy=False)
    changes = {op: n for op, n in result.change_summary.items() if op != "same"}
    assert changes == {}, changes


def test_a_proxy_check_change_updates_only_the_proxy_tier_and_the_health_gate(stack):
    stack.set_config("proxy.check.interMs", 400)
    events: list = []
    result = stack.preview(on_output=None, policy=False, on_event=events.append)
    changed = {
        e.resource_pre_event.metadata.urn.split("::")[-1]
        for e in events
        if e.resource_pre_event
        and e.resource_pre_event.metadata.op not in ("same", "read")
        and "pulumi:providers:" not in e.resource_pre_event.metadata.urn  # the engine's default provider
    }
    assert changed, result.change_summary
    proxy_hosts = {h.name for h in stack.plan.proxies}
    expected = {f"hastack-{h}-haproxy.cfg" for h in proxy_hosts} | {f"hastack-{h}-haproxy" for h in proxy_hosts}
    assert changed == expected | {"hastack-health"}, changed
    diff = pulumi("preview", "--diff", "--stack", STACK, check=True).stdout
    assert "haproxy.cfg" in diff and "inter 400ms" in diff

    result = stack.up(on_output=None)
    assert result.summary.result == "succeeded"
    host = stack.plan.proxies[0]
    assert "inter 400ms" in Path(f"{ROOT}/{host.name}/conf/haproxy.cfg").read_text()
    assert _routes_writes_to_leader(stack)


def test_haproxy_routes_writes_to_the_primary_before_and_after_a_switchover(stack):
    assert _routes_writes_to_leader(stack)
    _switchover(stack)
    wait_for(lambda: _routes_writes_to_leader(stack), 30, what="haproxy to follow the new primary")


def test_nginx_routes_writes_to_the_primary_before_and_after_a_switchover(stack):
    stack.set_config("proxy.kind", "nginx")
    result = stack.up(on_output=None)
    assert result.summary.result == "succeeded"
    assert not Path(f"{ROOT}/{stack.plan.proxies[0].name}/conf/haproxy.cfg").exists()
    assert _routes_writes_to_leader(stack)
    _switchover(stack)
    wait_for(lambda: _routes_writes_to_leader(stack), 30, what="nginx to follow the new primary")


def test_destroy_leaves_no_process_and_no_data_folder(stack):
    result = stack.destroy(on_output=None)
    assert result.summary.result == "succeeded"
    assert not os.path.exists(ROOT)
    assert live_pids_under(ROOT) == []
