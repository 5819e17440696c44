"""`make bench`: every scenario N times on one stack, then the results file and docs/benchmarks.md."""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..ops import ROOT
from ..platforms.local import supervisor as sv
from . import probes, report
from .runner import SCENARIOS, RunResult, ScenarioResult, Targets, heal, run_once

# Attempts at one run whose fault was never injected (the cluster did not get healthy first); such an
# attempt measured nothing and is retried rather than counted.
SETUP_ATTEMPTS = 3

DRILL_SETTINGS: dict[str, Any] = {
    "writer_interval_ms": int(probes.WRITER_INTERVAL_S * 1000),
    "connect_timeout_s": probes.CONNECT_TIMEOUT_S,
    "poll_interval_ms": int(probes.POLL_INTERVAL_S * 1000),
    "read_interval_ms": int(probes.READ_INTERVAL_S * 1000),
}


def repair(t: Targets, phase: Callable[[str], None]) -> None:
    """Start every host whose supervisord is gone (an interrupted earlier drill) and wait for health."""
    dead = [h for h, layout in t.layouts.items() if sv.supervisord_pid(layout) is None]
    heal(t, dead, phase)


def run_scenarios(
    t: Targets,
    scenarios: Sequence[str],
    runs: int,
    phase: Callable[[str, int, str], None] = lambda *_: None,
    done: Callable[[RunResult], None] = lambda _: None,
) -> list[ScenarioResult]:
    out = []
    for name in scenarios:
        result = ScenarioResult(name)
        for n in range(1, runs + 1):
            report_phase = functools.partial(phase, name, n)
            for attempt in range(1, SETUP_ATTEMPTS + 1):
                try:
                    run = run_once(t, name, n, report_phase)
                    break
                except (TimeoutError, RuntimeError) as exc:
                    # Raised only before the fault: nothing was measured yet.
                    report_phase(f"cluster not ready ({exc}); repairing, attempt {attempt}/{SETUP_ATTEMPTS}")
                    repair(t, report_phase)
            else:
                raise RuntimeError(f"{name} run {n}: the cluster never got healthy before the fault")
            result.runs.append(run)
            done(run)
        out.append(result)
    return out


def write_files(
    t: Targets, results: Sequence[ScenarioResult], root: Path = ROOT, now: dt.datetime | None = None
) -> tuple[Path, Path]:
    """bench/results/<UTC timestamp>.json (plus every run in a .runs.jsonl beside it) and docs/benchmarks.md."""
    now = now or dt.datetime.now(dt.UTC)
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    config = report.settings(t.plan.spec, t.stack, DRILL_SETTINGS)
    machine = report.machine_facts()
    results_dir = root / "bench" / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    json_path = results_dir / f"{stamp}.json"
    json_path.write_text(report.bench_json(results, config, machine))
    with open(results_dir / f"{stamp}.runs.jsonl", "w") as fh:
        for r in results:
            for run in r.runs:
                fh.write(json.dumps(run.as_dict()) + "\n")
    md_path = root / "docs" / "benchmarks.md"
    md_path.parent.mkdir(parents=True, exist_ok=True)
    md_path.write_text(
        report.benchmarks_markdown(
            results, config, machine, now.strftime("%Y-%m-%d %H:%M UTC"), str(json_path.relative_to(root))
        )
    )
    return json_path, md_path


__all__ = ["DRILL_SETTINGS", "SCENARIOS", "repair", "run_scenarios", "write_files"]
