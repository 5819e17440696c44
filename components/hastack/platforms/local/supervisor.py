"""Talk to one simulated host's supervisord: start it, add and signal programs, shut it down.

Each simulated host has its own supervisord, so losing a host (a drill's ``kill -9``) takes its
supervisor down with everything it runs, as a real machine would.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import xmlrpc.client
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from supervisor.xmlrpc import SupervisorTransport

from ...render import HostPaths


@dataclass(frozen=True)
class HostLayout:
    """Folders of one simulated host. ``base`` is ``<dataDir>/<stack>/<host>``."""

    base: str

    @property
    def paths(self) -> HostPaths:
        # The same layout the rendered configs point at (render.Site.paths).
        return HostPaths.under(self.base)

    @property
    def conf(self) -> str:
        return self.paths.conf

    @property
    def data(self) -> str:
        return self.paths.data

    @property
    def log(self) -> str:
        return self.paths.log

    @property
    def run(self) -> str:
        return self.paths.run

    @property
    def programs(self) -> str:
        return f"{self.base}/supervisor.d"

    @property
    def socket(self) -> str:
        return f"{self.run}/supervisor.sock"

    @property
    def pidfile(self) -> str:
        return f"{self.run}/supervisord.pid"

    @property
    def supervisor_conf(self) -> str:
        return f"{self.base}/supervisord.conf"


def client(layout: HostLayout) -> Any:
    return xmlrpc.client.ServerProxy(
        "http://127.0.0.1", transport=SupervisorTransport(None, None, f"unix://{layout.socket}")
    )


def supervisord_pid(layout: HostLayout) -> int | None:
    """Pid of the host's supervisord if it is alive."""
    try:
        pid = int(Path(layout.pidfile).read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if pid_alive(pid) else None


def pid_alive(pid: int) -> bool:
    """True if ``pid`` runs. A zombie counts as dead: this machine's init may never reap it."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def supervisord_conf(layout: HostLayout, host: str) -> str:
    return f"""; supervisord for simulated host {host}. Rendered by hastack.
[unix_http_server]
file={layout.socket}
chmod=0700

[supervisord]
logfile={layout.log}/supervisord.log
logfile_maxbytes=5MB
logfile_backups=1
pidfile={layout.pidfile}
childlogdir={layout.log}
identifier={host}

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://{layout.socket}

[include]
files = {layout.programs}/*.conf
"""


def program_conf(
    name: str,
    command: str,
    *,
    user: str,
    directory: str,
    log: str,
    environment: Mapping[str, str],
    stopsignal: str = "TERM",
    stopwaitsecs: int = 30,
) -> str:
    env = ",".join(f'{k}="{v}"' for k, v in sorted(environment.items()))
    return f"""[program:{name}]
command={command}
user={user}
directory={directory}
autostart=true
autorestart=true
startsecs=1
startretries=20
stopsignal={stopsignal}
stopwaitsecs={stopwaitsecs}
stopasgroup=true
killasgroup=true
redirect_stderr=true
stdout_logfile={log}/{name}.log
stdout_logfile_maxbytes=10MB
stdout_logfile_backups=2
environment={env}
"""


def wait_for(predicate, timeout: float, interval: float = 0.2, what: str = "condition") -> Any:
    """Poll ``predicate`` until it returns a truthy value; bounded by ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:
            last_exc = exc
        time.sleep(interval)
    detail = f": {last_exc}" if last_exc else ""
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}{detail}")


def start_supervisord(layout: HostLayout, supervisord: str, timeout: float = 20) -> int:
    """Start the host's supervisord (it daemonizes) and wait for its socket to answer."""
    pid = supervisord_pid(layout)
    if pid is None:
        # Inherit nothing from the engine's plugin process: supervisord daemonizes into its own session.
        subprocess.run([supervisord, "-c", layout.supervisor_conf], check=True, stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)  # fmt: skip
    wait_for(lambda: client(layout).supervisor.getState()["statename"] == "RUNNING", timeout, what="supervisord")
    pid = supervisord_pid(layout)
    assert pid is not None
    return pid


def stop_supervisord(layout: HostLayout, timeout: float = 60) -> None:
    """Stop every program and then supervisord itself; bounded, then SIGKILL by pid."""
    pid = supervisord_pid(layout)
    if pid is None:
        return
    try:
        client(layout).supervisor.shutdown()
    except (OSError, xmlrpc.client.Fault):
        os.kill(pid, signal.SIGTERM)
    try:
        wait_for(lambda: supervisord_pid(layout) is None, timeout, what=f"supervisord {pid} to exit")
    except TimeoutError:
        os.kill(pid, signal.SIGKILL)


def process_info(layout: HostLayout, name: str) -> dict[str, Any]:
    info: dict[str, Any] = client(layout).supervisor.getProcessInfo(name)
    return info


def add_program(layout: HostLayout, name: str, timeout: float = 30) -> None:
    rpc = client(layout)
    rpc.supervisor.reloadConfig()
    try:
        rpc.supervisor.addProcessGroup(name)
    except xmlrpc.client.Fault as fault:
        if "ALREADY_ADDED" not in fault.faultString:
            raise
    wait_for(lambda: process_info(layout, name)["statename"] == "RUNNING", timeout, what=f"{name} to run")


def remove_program(layout: HostLayout, name: str) -> None:
    if supervisord_pid(layout) is None:
        return
    rpc = client(layout)
    try:
        rpc.supervisor.stopProcess(name, True)
    except xmlrpc.client.Fault as fault:
        if "NOT_RUNNING" not in fault.faultString and "BAD_NAME" not in fault.faultString:
            raise
    try:
        rpc.supervisor.removeProcessGroup(name)
    except xmlrpc.client.Fault as fault:
        if "BAD_NAME" not in fault.faultString:
            raise


def signal_program(layout: HostLayout, name: str, sig: str) -> None:
    client(layout).supervisor.signalProcess(name, sig)


def restart_program(layout: HostLayout, name: str, timeout: float = 60) -> None:
    remove_program(layout, name)
    add_program(layout, name, timeout)
