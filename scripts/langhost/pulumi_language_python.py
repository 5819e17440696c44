"""A minimal Pulumi Python language host, for machines where the Go one cannot be obtained.

Pulumi's own host (`github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3`) has no release
tags and the Go module proxy these machines reach refuses every version of it (403). Without a host the
`pulumi` CLI cannot run a Python program from a project folder. This implements the few
LanguageRuntime RPCs the engine needs to run a program and a policy pack, and delegates the real work
to the SDK's own scripts:

- ``Run`` executes ``pulumi-language-python-exec`` (shipped in the sdk/v3 module, copied next to this
  host by ``make setup``) with the project's virtualenv, exactly as the Go host does;
- ``RunPlugin`` starts policy packs (``python -m pulumi.policy``) and Python plugins.

Where Pulumi's real host is installed (on PATH with the CLI), setup uses it instead.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from concurrent import futures
from pathlib import Path

import grpc
from pulumi.runtime.proto import language_pb2, language_pb2_grpc, plugin_pb2

HERE = Path(os.environ.get("HASTACK_LANGHOST_DIR", Path(sys.argv[0]).resolve().parent))
EXEC = HERE / "pulumi-language-python-exec"
VERSION = os.environ.get("HASTACK_PULUMI_VERSION", "3.274.1")
# The exec script's exit code for "error already shown to the user"; the engine must not add its own.
USER_ACTIONABLE_EXIT = 32


def _python(root: str, options: dict | None) -> str:
    venv = (options or {}).get("virtualenv") or os.environ.get("PULUMI_RUNTIME_VIRTUALENV")
    if venv:
        path = Path(venv) if os.path.isabs(venv) else Path(root) / venv
        return str(path / "bin" / "python")
    return os.environ.get("PULUMI_PYTHON_CMD", "python3")


def _options(info: language_pb2.ProgramInfo) -> dict:
    from google.protobuf.json_format import MessageToDict

    return MessageToDict(info.options) if info.HasField("options") else {}


class LanguageHost(language_pb2_grpc.LanguageRuntimeServicer):
    def __init__(self, engine: str):
        self.engine = engine

    def Handshake(self, request, context):
        return language_pb2.LanguageHandshakeResponse()

    def GetPluginInfo(self, request, context):
        return plugin_pb2.PluginInfo(version=VERSION)

    def GetRequiredPlugins(self, request, context):
        # Plugins are installed by `make setup`; nothing may be downloaded here.
        return language_pb2.GetRequiredPluginsResponse()

    def GetRequiredPackages(self, request, context):
        return language_pb2.GetRequiredPackagesResponse()

    def InstallDependencies(self, request, context):
        # `make setup` owns the virtualenv; report success without touching it.
        return iter(())

    def About(self, request, context):
        return language_pb2.AboutResponse(executable=sys.executable, version=sys.version.split()[0])

    def GetProgramDependencies(self, request, context):
        return language_pb2.GetProgramDependenciesResponse()

    def Run(self, request, context):
        info = request.info
        root = info.root_directory or request.pwd
        program_dir = info.program_directory or request.pwd
        entry = info.entry_point or request.program or "."
        env = dict(os.environ)
        env["PULUMI_CONFIG"] = json.dumps(dict(request.config))
        env["PULUMI_CONFIG_SECRET_KEYS"] = json.dumps(list(request.configSecretKeys))
        python = _python(root, _options(info))
        venv_bin = str(Path(python).parent)
        env["PATH"] = venv_bin + os.pathsep + env.get("PATH", "")
        args = [
            python, "-u", str(EXEC),
            "--monitor", request.monitor_address,
            "--engine", self.engine,
            "--project", request.project,
            "--stack", request.stack,
            "--pwd", program_dir,
            "--root_directory", root,
            "--parallel", str(request.parallel),
            "--organization", request.organization or "organization",
        ]  # fmt: skip
        if request.dryRun:
            args += ["--dry_run", "true"]
        args += [entry, *request.args]
        proc = subprocess.run(args, cwd=program_dir, env=env, check=False)
        if proc.returncode == 0:
            return language_pb2.RunResponse()
        if proc.returncode == USER_ACTIONABLE_EXIT:
            return language_pb2.RunResponse(bail=True)
        return language_pb2.RunResponse(error=f"Program exited with non-zero exit code: {proc.returncode}")

    def RunPlugin(self, request, context):
        info = request.info
        root = info.root_directory or request.pwd
        program_dir = info.program_directory or request.program or request.pwd
        python = _python(root, _options(info))
        env = dict(os.environ)
        for item in request.env:
            key, _, value = item.partition("=")
            env[key] = value
        env["PATH"] = str(Path(python).parent) + os.pathsep + env.get("PATH", "")
        module = "pulumi.policy" if request.kind == "analyzer" else "pulumi.dynamic"
        if request.kind == "analyzer":
            args = [python, "-u", "-m", module, *request.args, program_dir]
        else:
            args = [python, "-u", "-m", module, *request.args]
        proc = subprocess.Popen(
            args, cwd=request.pwd or program_dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        assert proc.stdout is not None and proc.stderr is not None
        out: list[language_pb2.RunPluginResponse] = []
        lock = threading.Condition()

        def pump(stream, field: str) -> None:
            for chunk in iter(lambda: stream.read1(65536), b""):
                with lock:
                    out.append(language_pb2.RunPluginResponse(**{field: chunk}))
                    lock.notify()

        threads = [threading.Thread(target=pump, args=(proc.stdout, "stdout"), daemon=True),
                   threading.Thread(target=pump, args=(proc.stderr, "stderr"), daemon=True)]  # fmt: skip
        for t in threads:
            t.start()
        while True:
            with lock:
                lock.wait_for(lambda: out or proc.poll() is not None, timeout=1.0)
                batch, out[:] = list(out), []
            yield from batch
            if proc.poll() is not None and not any(t.is_alive() for t in threads):
                with lock:
                    batch, out[:] = list(out), []
                yield from batch
                break
        yield language_pb2.RunPluginResponse(exitcode=proc.returncode)


def main() -> None:
    positional = [a for a in sys.argv[1:] if not a.startswith("-")]
    engine = positional[-1] if positional else ""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8), options=[("grpc.max_receive_message_length", -1)])
    language_pb2_grpc.add_LanguageRuntimeServicer_to_server(LanguageHost(engine), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)
    try:
        server.wait_for_termination()
    except KeyboardInterrupt:
        # The engine interrupts its plugins when it is done; that is a normal exit.
        server.stop(0)


if __name__ == "__main__":
    main()
