"""Fault injection on the local platform, always by pid: lose a host, crash a postmaster, switch over.

A simulated host is its own supervisord plus everything it started, plus Postgres: Patroni starts the
postmaster detached (its parent is init, not Patroni), so it is found through ``postmaster.pid`` and its
children through /proc, never by process name (another stack's processes have the same names).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterable
from pathlib import Path

from ..platforms.local import supervisor as sv


def _ppids() -> dict[int, int]:
    """pid -> parent pid for every process, from /proc."""
    out: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as fh:
                # Field 4 is the parent pid; the command in field 2 may hold spaces and parentheses.
                out[int(entry.name)] = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return out


def descendants(roots: Iterable[int], ppids: dict[int, int] | None = None) -> set[int]:
    """``roots`` and every process below them."""
    ppids = _ppids() if ppids is None else ppids
    children: dict[int, list[int]] = {}
    for pid, parent in ppids.items():
        children.setdefault(parent, []).append(pid)
    found: set[int] = set()
    todo = [r for r in roots if r > 1]
    # Bounded by the number of processes: each pid is expanded at most once.
    for _ in range(len(ppids) + len(todo)):
        if not todo:
            break
        pid = todo.pop()
        if pid in found:
            continue
        found.add(pid)
        todo.extend(children.get(pid, []))
    return found


def postmaster_pid(layout: sv.HostLayout) -> int | None:
    try:
        pid = int(Path(f"{layout.data}/pgdata/postmaster.pid").read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if sv.pid_alive(pid) else None


def host_pids(layout: sv.HostLayout) -> set[int]:
    """Every live process of one simulated host: supervisord, its programs and their children, Postgres."""
    roots: list[int] = []
    sup = sv.supervisord_pid(layout)
    if sup is not None:
        roots.append(sup)
        # If supervisord does not answer, the /proc walk below still finds its children.
        with contextlib.suppress(OSError):
            roots += [int(p["pid"]) for p in sv.client(layout).supervisor.getAllProcessInfo() if p.get("pid")]
    pm = postmaster_pid(layout)
    if pm is not None:
        roots.append(pm)
    return {p for p in descendants(roots) if sv.pid_alive(p)}


def kill_hard(pids: set[int], timeout: float = 10) -> None:
    """``kill -9`` a set of processes as one event, like a power cut.

    Everything is frozen first, so no supervisor restarts a child and no postmaster forks a new backend
    between two kills: the host is gone at one instant, not in a slow cascade.
    """
    for sig in (signal.SIGSTOP, signal.SIGKILL):
        for pid in sorted(pids):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
    sv.wait_for(lambda: not any(sv.pid_alive(p) for p in pids), timeout, 0.05, what=f"pids {sorted(pids)} to die")


def start_host(layout: sv.HostLayout, supervisord: str, attempts: int = 3) -> None:
    """Power a lost host back on: its supervisord autostarts every program it had."""
    for attempt in range(1, attempts + 1):
        try:
            sv.start_supervisord(layout, supervisord)
            return
        except subprocess.CalledProcessError as exc:
            # supervisord explains itself on stderr (a socket still held, a bad pidfile): keep that.
            detail = (exc.stderr or b"").decode(errors="replace").strip()
            if attempt == attempts:
                raise RuntimeError(f"supervisord for {layout.base} did not start: {detail}") from None
        time.sleep(1)


def switchover(patroni_url: str, leader: str, candidate: str, timeout: float = 60) -> str:
    """Planned switchover through Patroni's REST API (what ``patronictl switchover --force`` calls)."""
    body = json.dumps({"leader": leader, "candidate": candidate}).encode()
    req = urllib.request.Request(
        f"{patroni_url}/switchover", data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return resp.read().decode(errors="replace").strip()
