"""The policy pack under the real engine: `pulumi preview --policy-pack policies` with a stack's policy config.

Two groups:
- a small fixture program registering dynamic resources shaped like the local platform's (kind, program,
  hastack labels), so the pack's wiring is proven whatever state the platforms are in;
- the local platform itself (`make preview STACK=local`, and the platform deployed with every Postgres node
  moved into one zone), skipped until that platform exists.

Every stack lives in a file:// backend under pytest's tmp_path; no project state is touched.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / ".tools" / "bin"
PYTHON = ROOT / ".venv" / "bin" / "python"
PULUMI = shutil.which("pulumi", path=f"{TOOLS}{os.pathsep}{os.environ.get('PATH', '')}")

FIXTURE_PROGRAM = '''
"""Dynamic resources shaped like the local platform's: one process per tier per zone, secret files 0600."""
import pulumi
from pulumi.dynamic import CreateResult, Resource, ResourceProvider


class Noop(ResourceProvider):
    def create(self, props):
        return CreateResult(id_=props["labels"]["hastack.io/host"] + "-" + props["kind"], outs=props)


class Local(Resource):
    def __init__(self, name, props):
        super().__init__(Noop(), name, props)


cfg = pulumi.Config("fixture")
pg_zone = cfg.get("postgresZone")  # every Postgres node in this zone when set
for i, zone in enumerate(["az1", "az2", "az3"]):
    for role, program in (("consul", "consul"), ("postgres", "patroni"), ("proxy", "haproxy")):
        if role == "proxy" and i == 2:
            continue
        host = f"{role}-{zone}"
        z = pg_zone if (pg_zone and role == "postgres") else zone
        labels = {"hastack.io/role": role, "hastack.io/zone": z, "hastack.io/host": host, "hastack.io/stack": "t"}
        Local(f"{host}-{program}", {"kind": "process", "program": program, "labels": labels})
        if role != "consul":
            Local(f"{host}-consul", {"kind": "process", "program": "consul", "labels": labels})
        if role == "postgres":
            path = f"/var/lib/hastack/t/{host}/conf/patroni.yml"
            Local(f"{host}-patroni-yml", {"kind": "file", "path": path, "mode": "0600", "secret": True,
                                         "labels": labels})
'''

# The real local platform, with the placement changed after planning: every Postgres host in zone az1.
ONE_ZONE_LOCAL_PROGRAM = """
import dataclasses

import pulumi

from hastack.platforms import local
from hastack.spec import load_spec
from hastack.topology import plan


class OneZone(pulumi.ComponentResource):
    def __init__(self, name):
        super().__init__("hastack:local:HaStack", name, None)
        # Loopback addresses of their own, apart from any stack already running on this machine.
        spec = load_spec({"platform": "local", "local": {"addressBase": 200}})
        p = plan(spec)
        first = p.postgres[0]
        moved = tuple(dataclasses.replace(h, zone=first.zone, zone_index=first.zone_index) for h in p.postgres)
        local.deploy(name, spec, dataclasses.replace(p, postgres=moved), self, pulumi.get_stack())
        self.register_outputs({"zone": first.zone})


OneZone("onezone")
"""


def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PATH=f"{TOOLS}{os.pathsep}{ROOT / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        PULUMI_BACKEND_URL=f"file://{tmp_path / 'state'}",
        PULUMI_HOME=str(ROOT / ".state" / "pulumi-home"),
        PULUMI_CONFIG_PASSPHRASE="policy-test-only",
        PULUMI_SKIP_UPDATE_CHECK="true",
        PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION="true",
    )
    return env


def _project(tmp_path: Path, program: str) -> Path:
    if PULUMI is None:
        pytest.fail("the pulumi CLI is not installed (run `make setup`)")
    (tmp_path / "state").mkdir(exist_ok=True)
    project = tmp_path / "project"
    project.mkdir()
    (project / "Pulumi.yaml").write_text(
        f"name: policyfixture\nruntime:\n  name: python\n  options:\n    virtualenv: {ROOT / '.venv'}\n"
    )
    (project / "__main__.py").write_text(textwrap.dedent(program))
    _pulumi(tmp_path, project, "stack", "init", "t")
    return project


def _pulumi(tmp_path: Path, project: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    assert PULUMI is not None
    proc = subprocess.run(
        [PULUMI, *args, "--non-interactive"],
        cwd=project,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if check and proc.returncode != 0:
        pytest.fail(f"pulumi {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def _preview(tmp_path: Path, project: Path, policy_config: Path) -> subprocess.CompletedProcess[str]:
    return _pulumi(
        tmp_path,
        project,
        "preview",
        "--diff",
        "--policy-pack",
        str(ROOT / "policies"),
        "--policy-pack-config",
        str(policy_config),
        check=False,
    )


def _resources_in_state(tmp_path: Path, project: Path) -> list[dict]:
    exported = json.loads(_pulumi(tmp_path, project, "stack", "export").stdout)
    return exported.get("deployment", {}).get("resources") or []


def _config(tmp_path: Path, body: dict) -> Path:
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(body))
    return path


# --------------------------------------------------------------------------------------------------
# The pack on local-shaped resources


def test_mandatory_preview_of_a_three_zone_stack_passes_and_shows_the_blast_radius_table(tmp_path: Path) -> None:
    project = _project(tmp_path, FIXTURE_PROGRAM)
    proc = _preview(tmp_path, project, ROOT / "stacks" / "policy.local.json")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "hastack blast radius (one zone lost at a time):" in out
    assert "zone lost  postgres left  promotable  consul left  quorum  proxies left  ok" in out
    assert "az3        2              yes         2            yes     2             yes" in out


def test_every_postgres_node_in_one_zone_fails_a_mandatory_preview_and_creates_nothing(tmp_path: Path) -> None:
    project = _project(tmp_path, FIXTURE_PROGRAM)
    _pulumi(tmp_path, project, "config", "set", "fixture:postgresZone", "az1")
    proc = _preview(tmp_path, project, ROOT / "stacks" / "policy.local.json")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert "[mandatory]  postgres-zone-spread" in out
    assert "[mandatory]  blast-radius" in out
    assert "postgres-az1@az1, postgres-az2@az1, postgres-az3@az1" in out
    assert "losing zone az1: Postgres keeps no promotable synchronous copy (0 left)" in out
    assert "az1        0              NO" in out
    assert _resources_in_state(tmp_path, project) == []


def test_advisory_config_reports_the_same_violations_without_failing(tmp_path: Path) -> None:
    project = _project(tmp_path, FIXTURE_PROGRAM)
    _pulumi(tmp_path, project, "config", "set", "fixture:postgresZone", "az1")
    proc = _preview(tmp_path, project, ROOT / "stacks" / "policy.dev.json")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "[advisory]  postgres-zone-spread" in out


def test_a_rule_waived_for_one_stack_no_longer_fails_it(tmp_path: Path) -> None:
    project = _project(tmp_path, FIXTURE_PROGRAM)
    _pulumi(tmp_path, project, "config", "set", "fixture:postgresZone", "az1")
    waived = _config(
        tmp_path,
        {
            "all": "mandatory",
            "postgres-zone-spread": {"enforcementLevel": "disabled"},
            "blast-radius": {"enforcementLevel": "disabled"},
        },
    )
    proc = _preview(tmp_path, project, waived)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "postgres-zone-spread" not in out


def test_prod_config_fails_postgres_in_two_zones(tmp_path: Path) -> None:
    program = FIXTURE_PROGRAM.replace(
        'for i, zone in enumerate(["az1", "az2", "az3"])', 'for i, zone in enumerate(["az1", "az2"])'
    )
    project = _project(tmp_path, program)
    proc = _preview(tmp_path, project, ROOT / "stacks" / "policy.prod.json")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert "Postgres nodes span 2 zone(s), need >= 3 in prod" in out


# --------------------------------------------------------------------------------------------------
# The local platform


def test_make_preview_local_passes_and_shows_the_blast_radius_table() -> None:
    proc = subprocess.run(
        ["make", "preview", "STACK=local"], cwd=ROOT, capture_output=True, text=True, timeout=900, check=False
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    # With --diff the engine writes diagnostics (the table) to stderr; `make preview` must show stderr too.
    assert "hastack blast radius (one zone lost at a time):" in out, f"no blast-radius table in:\n{out}"
    assert "zone lost  postgres left  promotable  consul left  quorum  proxies left  ok" in out


def test_local_platform_with_every_postgres_node_in_one_zone_fails_mandatory_preview(tmp_path: Path) -> None:
    project = _project(tmp_path, ONE_ZONE_LOCAL_PROGRAM)
    proc = _preview(tmp_path, project, ROOT / "stacks" / "policy.local.json")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert "[mandatory]  postgres-zone-spread" in out
    assert "Postgres nodes span 1 zone(s), need >= 2 in dev" in out
    assert _resources_in_state(tmp_path, project) == []
