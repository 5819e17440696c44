"""Run failover drills against a deployed local stack: break something, measure, heal.

One run: wait for a healthy cluster, start the probes, inject the fault, watch until a new primary
serves writes again, stop the writer, check every acknowledged id is on the new primary, heal (restart
what was killed, wait for the old primary to rejoin as a replica and a sync standby to stream), and stop
the /primary poller only then, so a rejoining node that claimed to be primary would count as split brain.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass, field
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from ..ops import Stack
from ..platforms.local import health
from ..platforms.local import supervisor as sv
from ..topology import Plan
from . import faults, probes, stats

Phase = Callable[[str], None]


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str
    """One line for --help and the progress output."""


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("switchover", "planned; Patroni hands the primary role to the synchronous standby"),
        Scenario("node-loss", "kill -9 every process of the primary's host (Postgres, Patroni, Consul agent)"),
        Scenario("postgres-crash", "kill -9 of the primary's postmaster only; Patroni stays up"),
        Scenario("zone-loss", "kill -9 every host of the primary's zone (its Consul server and proxy too)"),
    )
}


@dataclass(frozen=True)
class Targets:
    """Everything a drill needs to reach one deployed local stack."""

    stack: str
    plan: Plan
    write_dsn: str
    read_dsn: str
    supervisord: str
    layouts: dict[str, sv.HostLayout]
    patroni: dict[str, str]
    consul: list[str]
    leader_key: str
    health: health.HealthTargets

    @classmethod
    def from_stack(cls, stack: Stack) -> Targets:
        spec, plan = stack.spec, stack.plan
        if spec.platform != "local":
            raise ValueError(f"drills kill local processes; stack {stack.name} is on platform {spec.platform}")
        outs = stack.outputs(secrets=True)
        p = spec.ports
        patroni = {h.name: f"http://{h.local_address}:{p.patroni_api}" for h in plan.postgres}
        consul = [f"http://{h.local_address}:{p.consul_http}" for h in plan.consul_servers]
        root = f"{spec.local.data_dir}/{stack.name}"
        sync = spec.postgres.synchronous
        return cls(
            stack=stack.name,
            plan=plan,
            write_dsn=outs["writeDsn"],
            read_dsn=outs["readDsn"],
            supervisord=f"{spec.local.runtime_dir}/venv/bin/supervisord",
            layouts={h.name: sv.HostLayout(f"{root}/{h.name}") for h in plan.hosts},
            patroni=patroni,
            consul=consul,
            leader_key=f"service/{spec.postgres.scope}/leader",
            health=health.HealthTargets(
                consul_servers=consul,
                patroni=patroni,
                node_addresses={h.name: h.local_address for h in plan.postgres},
                proxies={h.name: h.local_address for h in plan.proxies},
                write_port=p.proxy_write,
                read_port=p.proxy_read,
                password=str(conninfo_to_dict(outs["writeDsn"]).get("password", "")),
                sync_standbys=sync.standbys if sync.enabled else 0,
                prometheus=f"http://{plan.monitoring.local_address}:{p.prometheus}" if plan.monitoring else None,
            ),
        )


@dataclass
class RunResult:
    scenario: str
    run: int
    old_primary: str
    fault: str
    new_primary: str | None = None
    outage_s: float = 0.0
    outage_start_s: float = 0.0
    """When the largest gap began, relative to the fault (negative: before it)."""
    new_primary_s: float | None = None
    leader_key_released_s: float | None = None
    """When Consul stopped showing the old primary as leader (session invalidated or key released)."""
    acked: int = 0
    lost_acked: list[int] = field(default_factory=list)
    split_brain: int = 0
    read_availability: float = 0.0
    read_longest_gap_s: float = 0.0
    heal_s: float | None = None
    orphans_killed: int = 0
    """Children of a crashed postmaster still alive (stuck) when healing began, killed by the heal."""
    writer_errors: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and not self.lost_acked and self.split_brain == 0 and self.new_primary is not None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _consul_settled(t: Targets) -> bool:
    """Every member alive and every server a Raft voter under an elected leader.

    A server that rejoins after a drill is a non-voter until autopilot promotes it (10 s of stability):
    losing another zone before that leaves one voter of two and no quorum, so the next drill waits.
    """
    names = {h.name for h in t.plan.hosts if h.role != "monitoring"}
    servers = {h.name for h in t.plan.consul_servers}
    for base in t.consul:
        try:
            members = health.get_json(f"{base}/v1/agent/members")
            raft = health.get_json(f"{base}/v1/operator/raft/configuration")
        except OSError:
            continue
        # Serf status 1 is alive.
        alive = {m["Name"] for m in members if m.get("Status") == 1}
        voters = {s["Node"] for s in raft.get("Servers", []) if s.get("Voter")}
        leader = any(s.get("Leader") for s in raft.get("Servers", []))
        return names <= alive and voters == servers and leader
    return False


def wait_healthy(t: Targets, timeout: float = 180) -> dict[str, Any]:
    """Consul: a leader, every member alive, every server a voter. Patroni: one leader, a sync standby
    and every other member streaming. Both proxies routing. Returns {"leader": ..., "sync_standbys": [...]}."""

    def check() -> dict[str, Any] | None:
        report = health.healthy(t.health)
        return report if report and _consul_settled(t) else None

    return dict(sv.wait_for(check, timeout, 0.5, what=f"stack {t.stack} to be healthy"))


def _inject(t: Targets, scenario: str, leader: str, sync: str, phase: Phase) -> tuple[float, list[str], str, set[int]]:
    """Break the cluster; returns (fault time, hosts to restart when healing, what was done, processes the
    fault orphaned: the crashed postmaster's children)."""
    if scenario == "switchover":
        phase(f"switchover {leader} -> {sync} (Patroni REST /switchover)")
        at = time.monotonic()
        faults.switchover(t.patroni[leader], leader, sync)
        return at, [], f"switchover {leader} -> {sync}", set()
    if scenario == "postgres-crash":
        pm = faults.postmaster_pid(t.layouts[leader])
        if pm is None:
            raise RuntimeError(f"no running postmaster on {leader}")
        children = faults.descendants([pm]) - {pm}
        phase(f"kill -9 postmaster {pm} on {leader}")
        at = time.monotonic()
        faults.kill_hard({pm})
        return at, [], f"kill -9 postmaster of {leader}", children
    if scenario == "node-loss":
        hosts = [leader]
    elif scenario == "zone-loss":
        hosts = [h.name for h in t.plan.in_zone(t.plan.host(leader).zone)]
    else:
        raise ValueError(f"unknown scenario {scenario!r}; choose from {', '.join(SCENARIOS)}")
    pids: set[int] = set()
    for host in hosts:
        pids |= faults.host_pids(t.layouts[host])
    phase(f"kill -9 {len(pids)} processes of {', '.join(hosts)}")
    at = time.monotonic()
    faults.kill_hard(pids)
    return at, hosts, f"kill -9 of {', '.join(hosts)} ({len(pids)} processes)", set()


def _released_at(log: list[tuple[float, str | None]], fault_at: float, old: str) -> float | None:
    for at, holder in log:
        if at >= fault_at and holder not in (old, "?"):
            return at - fault_at
    return None


def run_once(
    t: Targets,
    scenario: str,
    run: int = 1,
    phase: Phase = lambda _: None,
    baseline_s: float = 1.5,
    settle_s: float = 3.0,
    max_wait_s: float = 60.0,
    heal_timeout_s: float = 180.0,
    debug_dir: str | None = None,
) -> RunResult:
    """One drill. A failure after the fault is reported in the result's ``error``; one before it (the
    cluster never got healthy, no postmaster to kill) raises TimeoutError or RuntimeError once healed,
    since nothing was measured."""
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; choose from {', '.join(SCENARIOS)}")
    phase("waiting for a healthy cluster")
    report = wait_healthy(t, heal_timeout_s)
    leader, sync = report["leader"], report["sync_standbys"][0]
    probes.ensure_table(t.write_dsn)
    run_id = f"{scenario}-{run}-{uuid.uuid4().hex[:8]}"
    budget = baseline_s + max_wait_s + settle_s + heal_timeout_s + 60
    poller = probes.PrimaryPoller(t.patroni, t.consul, t.leader_key, max_seconds=budget)
    writer = probes.Writer(t.write_dsn, run_id, max_seconds=budget)
    reader = probes.ReadProber(t.read_dsn, max_seconds=budget)
    result = RunResult(scenario, run, leader, "")
    restart: list[str] = []
    orphans: set[int] = set()
    fault_at: float | None = None
    acked_ids: list[int] = []
    before_fault: Exception | None = None
    for p in (poller, reader, writer):
        p.start()
    try:
        phase(f"writing through the proxies (primary {leader}, sync standby {sync})")
        sv.wait_for(lambda: len(writer.log.acks) >= 10, 15, 0.05, what="the first acknowledged writes")
        window_start = writer.log.acks[0][1]
        time.sleep(baseline_s)
        t0, restart, result.fault, orphans = _inject(t, scenario, leader, sync, phase)
        fault_at = t0

        phase("waiting for a new primary and for writes to flow again")

        def recovered() -> bool:
            # Writes have flowed through the new primary for settle_s: a later hiccup (the new primary
            # waiting for its first sync standby) still falls inside the measured window.
            np = stats.new_primary_after(list(poller.polls), t0, leader)
            if np is None:
                return False
            first = next((at for _, at in list(writer.log.acks) if at >= t0 + np[0]), None)
            return first is not None and time.monotonic() - first >= settle_s

        try:
            sv.wait_for(recovered, max_wait_s, 0.1, what="writes through a new primary")
        except TimeoutError as exc:
            result.error = str(exc)
        writer.stop()
        reader.stop()
        writer.join(15)
        reader.join(5)
        window_end = time.monotonic()

        acks = list(writer.log.acks)
        result.acked = len(acks)
        gap = stats.largest_gap([at for _, at in acks], window_start, window_end)
        result.outage_s, result.outage_start_s = gap.seconds, gap.start - t0
        np = stats.new_primary_after(list(poller.polls), t0, leader)
        if np is not None:
            result.new_primary_s, result.new_primary = np
        result.leader_key_released_s = _released_at(list(poller.leader_key_log), t0, leader)
        rs = stats.read_stats(reader.results, window_start, window_end)
        result.read_availability, result.read_longest_gap_s = rs.availability, rs.longest_gap_s
        result.writer_errors = sorted({e for _, e in writer.log.errors})[:5]

        phase(f"checking that all {len(acks)} acknowledged writes are on the new primary")
        acked_ids = [i for i, _ in acks]
        try:
            result.lost_acked = stats.lost_writes(acked_ids, probes.stored_ids(t.write_dsn, run_id))
            acked_ids = []
        except psycopg.Error:
            pass  # no primary reachable yet: checked again once healed, below
    except Exception as exc:
        if fault_at is None and isinstance(exc, TimeoutError | RuntimeError):
            before_fault = exc
        result.error = result.error or f"{type(exc).__name__}: {exc}"
    finally:
        writer.stop()
        reader.stop()
        heal_started = time.monotonic()
        try:
            result.orphans_killed = heal(t, restart, phase, heal_timeout_s, orphans)
            result.heal_s = time.monotonic() - heal_started
        except Exception as exc:
            result.error = result.error or f"heal failed: {exc}"
        if acked_ids and result.heal_s is not None:
            try:
                result.lost_acked = stats.lost_writes(acked_ids, probes.stored_ids(t.write_dsn, run_id))
            except psycopg.Error as exc:
                result.error = result.error or f"could not check acknowledged writes: {exc}"
        probes.forget_run(t.write_dsn, run_id)
        poller.stop()
        poller.join(5)
        result.split_brain = len(stats.split_brain_ticks(list(poller.polls)))
        if debug_dir:
            _dump(debug_dir, run_id, result, writer, poller, reader)
    if before_fault is not None:
        raise before_fault
    return result


def _dump(
    folder: str, run_id: str, result: RunResult, w: probes.Writer, p: probes.PrimaryPoller, r: probes.ReadProber
) -> None:
    """Raw probe logs of one run, with wall-clock anchors, to line them up with the services' own logs."""
    os.makedirs(folder, exist_ok=True)
    mono_to_wall = time.time() - time.monotonic()
    data = {
        "result": result.as_dict(),
        "mono_to_wall": mono_to_wall,
        "acks": w.log.acks,
        "errors": w.log.errors,
        "connections": w.log.connections,
        "polls": [(x.at, dict(x.status), dict(x.started)) for x in p.polls],
        "leader_key": p.leader_key_log,
        "reads": r.results,
    }
    with open(f"{folder}/{run_id}.json", "w") as fh:
        json.dump(data, fh)


def heal(
    t: Targets, hosts: list[str], phase: Phase = lambda _: None, timeout: float = 180, orphans: Collection[int] = ()
) -> int:
    """Restart lost hosts, then wait until the old primary is a streaming replica and a sync standby streams.

    ``orphans`` are the children of a crashed postmaster. They normally exit on their own within a second;
    one still alive now is stuck and holds the old shared memory, which stops Postgres from starting on
    that node, so it is killed. Returns how many were.
    """
    stuck = {p for p in orphans if sv.pid_alive(p)}
    if stuck:
        phase(f"healing: killing {len(stuck)} processes the crashed postmaster left behind")
        faults.kill_hard(stuck)
    for host in hosts:
        phase(f"healing: powering {host} back on")
        faults.start_host(t.layouts[host], t.supervisord)
    phase("healing: waiting for the old primary to rejoin as a replica and a sync standby to stream")
    wait_healthy(t, timeout)
    return len(stuck)


@dataclass
class ScenarioResult:
    scenario: str
    runs: list[RunResult] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        outage = [r.outage_s for r in self.runs]
        new_primary = [r.new_primary_s for r in self.runs if r.new_primary_s is not None]
        out: dict[str, Any] = {"runs": len(self.runs)}
        out["outage_s"] = stats.summarize(outage).as_dict() if outage else None
        out["new_primary_s"] = stats.summarize(new_primary).as_dict() if new_primary else None
        out["lost_acked"] = sum(len(r.lost_acked) for r in self.runs)
        out["split_brain"] = sum(r.split_brain for r in self.runs)
        return out
