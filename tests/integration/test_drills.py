"""Failover drills on a real local stack of their own: no acknowledged write lost, no split brain, and a
new primary within a generous 60 s (the speed targets live in `make bench`, not here)."""

from __future__ import annotations

import pytest

from hastack.drill import RunResult, Targets, run_once
from hastack.ops import Stack

from .conftest import pulumi_cli, remove_stack, write_stack_config

pytestmark = pytest.mark.integration

STACK = "itest-drill"
# Zones on 127.0.31-33.x: clear of the local stack (127.0.11-13.x), `make bench STACK=drill` (21-23.x)
# and the other integration stacks.
ADDRESS_BASE = 30


@pytest.fixture(scope="module")
def targets(request: pytest.FixtureRequest) -> Targets:
    pulumi_cli()
    remove_stack(STACK)  # leftovers of an interrupted run
    write_stack_config(STACK, ADDRESS_BASE)
    request.addfinalizer(lambda: remove_stack(STACK))
    stack = Stack(STACK)
    stack.up(on_output=None)
    return Targets.from_stack(stack)


def _assert_safe_failover(r: RunResult) -> None:
    assert r.error is None, r.error
    assert r.acked > 0, "the writer never got a write acknowledged"
    assert r.lost_acked == [], f"acknowledged writes lost: {r.lost_acked[:20]}"
    assert r.split_brain == 0, "two nodes answered 200 on /primary in the same poll"
    assert r.new_primary is not None and r.new_primary != r.old_primary
    assert r.new_primary_s is not None and r.new_primary_s < 60


def test_node_loss_loses_no_acknowledged_write_and_promotes_within_60_seconds(targets: Targets) -> None:
    _assert_safe_failover(run_once(targets, "node-loss"))


def test_switchover_loses_no_acknowledged_write_and_promotes_within_60_seconds(targets: Targets) -> None:
    _assert_safe_failover(run_once(targets, "switchover"))
