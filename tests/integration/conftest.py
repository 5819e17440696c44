"""Integration tests: the real Pulumi engine (file backend) and real local services.

Each test module deploys its own stack (stacks/Pulumi.itest-*.yaml, gitignored) on its own loopback
addresses, so tests never touch a developer's `local` stack, and destroys it at the end.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from hastack.ops import ROOT, Stack
from hastack.platforms.local import supervisor as sv

pytestmark = pytest.mark.integration


def pulumi_cli() -> str:
    path = shutil.which("pulumi")
    if not path or not os.environ.get("PULUMI_BACKEND_URL"):
        pytest.fail(
            "the Pulumi engine environment is missing: run through `make test-integration` (or source .tools/env)"
        )
    return path


def write_stack_config(name: str, address_base: int, overrides: dict | None = None) -> Path:
    base = yaml.safe_load((ROOT / "stacks" / "Pulumi.local.yaml").read_text())
    config = base["config"]
    config["hastack:local"] = {**config.get("hastack:local", {}), "addressBase": address_base, "healthTimeoutS": 240}
    for key, value in (overrides or {}).items():
        config[f"hastack:{key}"] = value
    path = ROOT / "stacks" / f"Pulumi.{name}.yaml"
    path.write_text(yaml.safe_dump({"config": config}, sort_keys=False))
    return path


def pulumi(*args: str, check: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run(
        [pulumi_cli(), *args, "--non-interactive"], cwd=ROOT, capture_output=True, text=True, timeout=600, check=check
    )


def remove_stack(name: str) -> None:
    pulumi("destroy", "--yes", "--stack", name)
    pulumi("stack", "rm", "--yes", "--force", "--stack", name)
    (ROOT / "stacks" / f"Pulumi.{name}.yaml").unlink(missing_ok=True)
    purge_leftovers(name)


def purge_leftovers(name: str) -> None:
    """Remove what an interrupted earlier run of a test stack left behind (its state is gone with its
    clone): stop its supervisords by pid, then delete its folder. Only ever test stacks."""
    assert name.startswith("itest"), name
    root = Path(f"/var/lib/hastack/{name}")
    if not root.exists():
        return
    for host in root.iterdir():
        layout = sv.HostLayout(str(host))
        if sv.supervisord_pid(layout):
            sv.stop_supervisord(layout)
    shutil.rmtree(root)


@pytest.fixture(scope="module")
def deployed(request) -> Iterator[Stack]:
    """A freshly deployed stack; parameters: (name, address_base, overrides)."""
    name, address_base, overrides = request.param
    pulumi_cli()
    remove_stack(name)  # leftovers of an interrupted run
    write_stack_config(name, address_base, overrides)
    stack = Stack(name)
    try:
        stack.up(on_output=None)
        yield stack
    finally:
        remove_stack(name)


def live_pids_under(path: str) -> list[int]:
    """Pids of live (non-zombie) processes whose command line or cwd mentions ``path``."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if state not in ("Z", "X") and (path in cmdline or cwd.startswith(path)):
            out.append(int(entry.name))
    return out
