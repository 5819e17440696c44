"""An invalid stack config fails at preview and at up with the key-path message, and creates nothing."""

import json
import os

import pytest

from .conftest import pulumi, remove_stack, write_stack_config

pytestmark = pytest.mark.integration
STACK = "itest-invalid"


@pytest.fixture
def invalid_stack():
    remove_stack(STACK)
    write_stack_config(STACK, 60, {"consul": {"servers": 4}, "proxy": {"kind": "envoy"}})
    pulumi("stack", "init", STACK)
    yield STACK
    remove_stack(STACK)


def _resources(stack: str) -> list:
    exported = pulumi("stack", "export", "--stack", stack, check=True)
    return json.loads(exported.stdout).get("deployment", {}).get("resources") or []


def test_preview_refuses_invalid_config_with_key_value_and_rule(invalid_stack):
    result = pulumi("preview", "--stack", invalid_stack)
    out = result.stdout + result.stderr
    assert result.returncode != 0
    assert "hastack:consul.servers must be odd and >= 3 (and <= 7), got 4" in out
    assert "hastack:proxy.kind must be one of 'haproxy' or 'nginx', got 'envoy'" in out
    assert _resources(invalid_stack) == []


def test_up_refuses_invalid_config_and_registers_no_resource(invalid_stack):
    result = pulumi("up", "--yes", "--stack", invalid_stack)
    assert result.returncode != 0
    assert "hastack:consul.servers must be odd" in result.stdout + result.stderr
    # Not even the stack resource: the program stopped before registering anything.
    assert [r for r in _resources(invalid_stack) if r["type"] != "pulumi:pulumi:Stack"] == []
    assert not os.path.exists(f"/var/lib/hastack/{invalid_stack}")
