"""Pulumi dynamic providers for the local platform: folders, files, supervised processes, secrets and
a health gate. They run inside the engine's Python provider process; every wait is bounded.

Every resource carries ``kind`` and ``labels`` (role, zone, host, stack) in its state, so the policy
pack reads local resources the same way it reads tags on AWS and labels on Kubernetes.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pwd
import secrets as pysecrets
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ResourceProvider, UpdateResult

from . import supervisor as sv

# --------------------------------------------------------------------------------------------------
# helpers (run in the provider process)


def _owner(user: str | None) -> tuple[int, int]:
    if not user:
        return (0, 0)
    pw = pwd.getpwnam(user)
    return (pw.pw_uid, pw.pw_gid)


def _mkdir(path: str, mode: int, user: str | None = None) -> None:
    os.makedirs(path, exist_ok=True)
    os.chmod(path, mode)
    uid, gid = _owner(user)
    os.chown(path, uid, gid)


def _write(path: str, content: str, mode: int, user: str | None) -> None:
    """Atomic write: a half-written config must never be read by a reloading process."""
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    try:
        os.fchmod(fd, mode)  # before any byte is written: a secret is never readable by others
        uid, gid = _owner(user)
        os.fchown(fd, uid, gid)
        with os.fdopen(fd, "w") as fh:
            fh.write(content)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _rmtree(path: str, guard: str) -> None:
    # Refuse to delete anything that is not below the configured data dir.
    p, g = Path(path).resolve(), Path(guard).resolve()
    if g in p.parents and len(p.parts) >= 4:
        shutil.rmtree(p, ignore_errors=True)


def _sha(content: str) -> str:
    return hashlib.sha256(content.encode()).hexdigest()


def _changed(olds: dict[str, Any], news: dict[str, Any], keys: list[str]) -> list[str]:
    return [k for k in keys if olds.get(k) != news.get(k)]


# --------------------------------------------------------------------------------------------------
# Stack root folder


class _RootProvider(ResourceProvider):
    def create(self, props: dict[str, Any]) -> CreateResult:
        path = props["path"]
        if os.path.isdir(path) and os.listdir(path):
            # Left over by a deployment whose Pulumi state is gone; its data is not ours to delete.
            raise RuntimeError(
                f"{path} already exists and is not empty (left over from an earlier deployment of this stack "
                "whose state is gone). Stop what runs there, move it away or remove it, or set another "
                "hastack:local.dataDir."
            )
        _mkdir(path, 0o755)
        return CreateResult(id_=props["path"], outs=props)

    def delete(self, id: str, props: dict[str, Any]) -> None:
        _rmtree(props["path"], props["guard"])


class StackRoot(pulumi.dynamic.Resource):
    """``<dataDir>/<stack>``: removed with everything in it by ``pulumi destroy``."""

    path: pulumi.Output[str]

    def __init__(self, name: str, path: str, guard: str, labels: dict[str, str], opts: pulumi.ResourceOptions):
        super().__init__(
            _RootProvider(),
            name,
            {"kind": "root", "path": path, "guard": guard, "labels": labels},
            opts,
        )


# --------------------------------------------------------------------------------------------------
# Simulated host: folders + its own supervisord


class _HostProvider(ResourceProvider):
    def _layout(self, props: dict[str, Any]) -> sv.HostLayout:
        return sv.HostLayout(props["base"])

    def _ensure(self, props: dict[str, Any]) -> None:
        layout = self._layout(props)
        user = props["service_user"]
        _mkdir(layout.base, 0o755)
        _mkdir(layout.conf, 0o755)
        _mkdir(layout.programs, 0o755)
        _mkdir(layout.log, 0o755)
        for d in (layout.data, layout.run):
            _mkdir(d, 0o750, user)
        _write(layout.supervisor_conf, sv.supervisord_conf(layout, props["host"]), 0o644, None)
        sv.start_supervisord(layout, props["supervisord"])

    def create(self, props: dict[str, Any]) -> CreateResult:
        self._ensure(props)
        return CreateResult(id_=props["host"], outs=props)

    def diff(self, id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changes = _changed(olds, news, ["base", "supervisord", "service_user", "labels"])
        # A host whose supervisord is gone (a drill, a reboot) is drift: `pulumi up` starts it again.
        if not changes and sv.supervisord_pid(self._layout(olds)) is None:
            changes = ["running"]
        return DiffResult(changes=bool(changes), replaces=["base"] if "base" in changes else [])

    def update(self, id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        self._ensure(news)
        return UpdateResult(outs=news)

    def delete(self, id: str, props: dict[str, Any]) -> None:
        layout = self._layout(props)
        sv.stop_supervisord(layout)
        _rmtree(layout.base, props["guard"])


class SimHost(pulumi.dynamic.Resource):
    """One simulated host: its folders and its own supervisord (started as root; programs drop to the
    service user)."""

    base: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        host: str,
        base: str,
        guard: str,
        supervisord: str,
        service_user: str,
        labels: dict[str, str],
        opts: pulumi.ResourceOptions,
    ):
        props = {
            "kind": "host",
            "host": host,
            "base": base,
            "guard": guard,
            "supervisord": supervisord,
            "service_user": service_user,
            "labels": labels,
        }
        super().__init__(_HostProvider(), name, props, opts)


# --------------------------------------------------------------------------------------------------
# Config files


class _FileProvider(ResourceProvider):
    def _write(self, props: dict[str, Any]) -> dict[str, Any]:
        _write(props["path"], props["content"], int(props["mode"], 8), props.get("owner"))
        return {**props, "sha256": _sha(props["content"])}

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(id_=props["path"], outs=self._write(props))

    def diff(self, id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changes = _changed(olds, news, ["path", "content", "mode", "owner", "labels"])
        return DiffResult(changes=bool(changes), replaces=["path"] if "path" in changes else [])

    def update(self, id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs=self._write(news))

    def delete(self, id: str, props: dict[str, Any]) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(props["path"])


class ConfigFile(pulumi.dynamic.Resource):
    """A rendered file on a simulated host. Files holding a secret are 0600 and their content is a
    Pulumi secret, so it is encrypted in state and masked in diffs."""

    path: pulumi.Output[str]
    sha256: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        path: str,
        content: pulumi.Input[str],
        secret: bool,
        owner: str | None,
        labels: dict[str, str],
        opts: pulumi.ResourceOptions,
    ):
        props = {
            "kind": "file",
            "path": path,
            "content": pulumi.Output.secret(content) if secret else content,
            "secret": secret,
            "mode": "0600" if secret else "0644",
            "owner": owner,
            "labels": labels,
            "sha256": None,
        }
        opts = pulumi.ResourceOptions.merge(
            opts, pulumi.ResourceOptions(additional_secret_outputs=["content"] if secret else [])
        )
        super().__init__(_FileProvider(), name, props, opts)


# --------------------------------------------------------------------------------------------------
# Supervised processes


class _ProgramProvider(ResourceProvider):
    def _layout(self, props: dict[str, Any]) -> sv.HostLayout:
        return sv.HostLayout(props["host_base"])

    def _write_conf(self, props: dict[str, Any]) -> None:
        layout = self._layout(props)
        conf = sv.program_conf(
            props["program"],
            props["command"],
            user=props["user"],
            directory=props["directory"],
            log=layout.log,
            environment=props["environment"],
            stopsignal=props["stopsignal"],
        )
        _write(f"{layout.programs}/{props['program']}.conf", conf, 0o644, None)

    def create(self, props: dict[str, Any]) -> CreateResult:
        self._write_conf(props)
        sv.add_program(self._layout(props), props["program"], timeout=float(props["start_timeout"]))
        return CreateResult(id_=f"{props['host']}/{props['program']}", outs=props)

    def diff(self, id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        keys = ["program", "command", "user", "directory", "environment", "stopsignal", "config_sha", "labels",
                "host_base", "reload"]  # fmt: skip
        changes = _changed(olds, news, keys)
        if not changes:
            try:
                state = sv.process_info(self._layout(olds), olds["program"])["statename"]
            except Exception:
                state = "MISSING"
            if state not in ("RUNNING", "STARTING"):
                changes = ["running"]
        return DiffResult(changes=bool(changes), replaces=["host_base"] if "host_base" in changes else [])

    def update(self, id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        layout = self._layout(news)
        name = news["program"]
        self._write_conf(news)
        definition = _changed(olds, news, ["program", "command", "user", "directory", "environment", "stopsignal"])
        running = False
        try:
            running = sv.process_info(layout, name)["statename"] == "RUNNING"
        except Exception:
            running = False
        if definition or not running:
            if olds["program"] != name:
                sv.remove_program(layout, olds["program"])
            sv.restart_program(layout, name, timeout=float(news["start_timeout"]))
        elif olds.get("config_sha") != news.get("config_sha"):
            # Config-only change: reload in place where the program supports it (no failover, no dropped
            # connections); otherwise restart.
            if news["reload"] == "restart":
                sv.restart_program(layout, name, timeout=float(news["start_timeout"]))
            else:
                sv.signal_program(layout, name, news["reload"])
        return UpdateResult(outs=news)

    def delete(self, id: str, props: dict[str, Any]) -> None:
        layout = self._layout(props)
        sv.remove_program(layout, props["program"])
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{layout.programs}/{props['program']}.conf")


class Program(pulumi.dynamic.Resource):
    """A process supervised by its host's supervisord, running as the service user.

    ``config_sha`` ties the process to its files: a changed file reloads it (``reload`` signal) instead
    of restarting, so a config change does not cause a failover.
    """

    config_sha: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        program: str,
        host: str,
        host_base: pulumi.Input[str],
        command: str,
        user: str,
        directory: str,
        environment: dict[str, str],
        config_sha: pulumi.Input[str],
        reload: str,
        labels: dict[str, str],
        opts: pulumi.ResourceOptions,
        stopsignal: str = "TERM",
        start_timeout: int = 30,
    ):
        props = {
            "kind": "process",
            "program": program,
            "host": host,
            "host_base": host_base,
            "command": command,
            "user": user,
            "directory": directory,
            "environment": environment,
            "config_sha": config_sha,
            "reload": reload,
            "stopsignal": stopsignal,
            "start_timeout": start_timeout,
            "labels": labels,
        }
        super().__init__(_ProgramProvider(), name, props, opts)


# --------------------------------------------------------------------------------------------------
# Generated secrets


class _SecretProvider(ResourceProvider):
    def create(self, props: dict[str, Any]) -> CreateResult:
        value = pysecrets.token_urlsafe(int(props["length"]))[: int(props["length"])]
        return CreateResult(id_=pysecrets.token_hex(8), outs={**props, "value": value})

    def diff(self, id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        # Like pulumi-random: a new length means a new value.
        changed = olds.get("length") != news.get("length")
        return DiffResult(changes=changed, replaces=["length"] if changed else [])


class GeneratedSecret(pulumi.dynamic.Resource):
    """A random password generated once at first deploy and kept as a Pulumi secret.

    The role pulumi-random plays on the cloud platforms; its provider plugin cannot be obtained on these
    offline machines, so the local platform generates the value in the Python provider instead.
    """

    value: pulumi.Output[str]

    def __init__(self, name: str, length: int, labels: dict[str, str], opts: pulumi.ResourceOptions):
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(additional_secret_outputs=["value"]))
        super().__init__(
            _SecretProvider(), name, {"kind": "secret", "length": length, "labels": labels, "value": None}, opts
        )


# --------------------------------------------------------------------------------------------------
# Health gate


class _HealthProvider(ResourceProvider):
    def _check(self, props: dict[str, Any]) -> dict[str, Any]:
        from . import health

        report = sv.wait_for(
            lambda: health.healthy(health.HealthTargets.from_props(props)),
            float(props["timeout"]),
            interval=0.5,
            what="the stack to be healthy (" + ", ".join(props["expect"]) + ")",
        )
        return {**props, "leader": report["leader"], "sync_standbys": report["sync_standbys"]}

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(id_="health", outs=self._check(props))

    def diff(self, id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return DiffResult(changes=olds.get("revision") != news.get("revision"))

    def update(self, id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs=self._check(news))

    def delete(self, id: str, props: dict[str, Any]) -> None:
        return None


class HealthGate(pulumi.dynamic.Resource):
    """Returns only when the stack is healthy: a Consul leader, a Patroni leader with a synchronous
    standby streaming, and every proxy routing writes to the leader and reads to a replica."""

    leader: pulumi.Output[str]
    sync_standbys: pulumi.Output[list[str]]

    def __init__(self, name: str, props: dict[str, Any], opts: pulumi.ResourceOptions):
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(additional_secret_outputs=["password"]))
        super().__init__(
            _HealthProvider(), name, {"kind": "health", **props, "leader": None, "sync_standbys": None}, opts
        )
