"""Failover drills: inject a fault into a running local stack, measure what a client saw, heal.

``stats`` holds the pure measurements; ``probes`` (writer, /primary poller, read prober) and ``faults``
(kill by pid, restart, switchover) do the I/O; ``runner`` ties them into runs and ``report`` turns runs
into the benchmark files.
"""

from .runner import SCENARIOS, RunResult, ScenarioResult, Targets, heal, run_once, wait_healthy

__all__ = ["SCENARIOS", "RunResult", "ScenarioResult", "Targets", "heal", "run_once", "wait_healthy"]
