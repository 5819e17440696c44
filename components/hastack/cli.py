"""The `hastack` command: deploy, inspect and drill a hastack stack."""

from __future__ import annotations

import sys
import time
from enum import StrEnum
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from .ops import Stack
from .spec import SpecError

app = typer.Typer(
    help="hastack: highly available Postgres (Patroni on Consul) behind HAProxy or Nginx, with Prometheus.\n\n"
    "Every command works on one stack of this project (stacks/Pulumi.<stack>.yaml) through the real Pulumi "
    "engine. Run `make setup` once (or `make up`, which does it), then `source .tools/env` for plain pulumi.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
)
# Outside a terminal (CI logs, `make` piped to a file) rich would wrap tables at 80 columns.
console = Console(width=None if sys.stdout.isatty() else 140)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 140)

StackOpt = typer.Option("local", "--stack", "-s", help="Stack name (stacks/Pulumi.<stack>.yaml).")


def _spec_or_exit(stack: Stack) -> None:
    try:
        stack.spec  # noqa: B018 - validates the config before the engine starts
    except SpecError as exc:
        err.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from None


@app.command()
def up(stack: str = StackOpt) -> None:
    """Deploy the stack and wait until it is healthy (Consul leader, Patroni leader with a sync standby
    streaming, proxies routing writes to the leader)."""
    s = Stack(stack)
    _spec_or_exit(s)
    t0 = time.monotonic()
    try:
        s.up()
    except Exception as exc:
        err.print(f"[bold red]pulumi up failed[/] after {time.monotonic() - t0:.0f}s: {str(exc).splitlines()[0]}")
        raise typer.Exit(1) from None
    console.print(f"\n[bold green]stack {stack} is up and healthy[/] in {time.monotonic() - t0:.0f}s\n")
    _print_outputs(s)
    if s.spec.platform == "local":
        # The health gate already passed; the table is for reading, so it never fails `make up`.
        _show_status(s)


def _print_outputs(s: Stack) -> None:
    outs = s.outputs()
    table = Table(show_header=False, box=None, padding=(0, 2))
    for key in ("writeEndpoint", "readEndpoint", "consulUi", "prometheusUrl"):
        if key in outs:
            table.add_row(key, str(outs[key]))
    table.add_row("writeDsn / readDsn", f"pulumi stack output writeDsn --show-secrets --stack {s.name}")
    console.print(table)


@app.command()
def down(stack: str = StackOpt) -> None:
    """Destroy the stack: every process stopped, every data folder removed."""
    s = Stack(stack)
    t0 = time.monotonic()
    s.destroy()
    console.print(f"\n[bold green]stack {stack} destroyed[/] in {time.monotonic() - t0:.0f}s")


@app.command()
def preview(stack: str = StackOpt) -> None:
    """`pulumi preview --diff` with the policy pack and the stack's policy config (stacks/policy.<stack>.json)."""
    s = Stack(stack)
    _spec_or_exit(s)
    try:
        s.preview()
    except Exception as exc:
        err.print(f"[bold red]preview failed:[/] {str(exc).splitlines()[0]}")
        raise typer.Exit(1) from None


@app.command()
def status(stack: str = StackOpt) -> None:
    """Per zone: each host's roles, Postgres role and replication lag, Consul membership, proxy routing."""

    s = Stack(stack)
    _spec_or_exit(s)
    if s.spec.platform != "local":
        err.print("status reads the running services, which only the local platform has here")
        raise typer.Exit(2)
    if not s.outputs():
        err.print(f"stack {stack} is not deployed: run `make up` (or `hastack up --stack {stack}`)")
        raise typer.Exit(1)
    if not _show_status(s):
        raise typer.Exit(1)


def _show_status(s: Stack) -> bool:
    from .platforms.local.status import collect

    rows, summary = collect(s.plan)
    table = Table(title=f"hastack {s.name}: leader {summary['leader'] or 'NONE'}, "
                  f"sync standby {', '.join(summary['sync_standbys']) or 'NONE'}")  # fmt: skip
    for col in ("zone", "host", "address", "state"):
        table.add_column(col)
    for zone in s.spec.zones:
        for r in (r for r in rows if r.zone == zone):
            mark = "[green]ok[/]" if r.ok else "[red]DEGRADED[/]"
            table.add_row(zone, r.name, r.address, f"{mark} " + "; ".join(r.details))
        table.add_section()
    console.print(table)
    return all(r.ok for r in rows)


class ScenarioName(StrEnum):
    switchover = "switchover"
    node_loss = "node-loss"
    postgres_crash = "postgres-crash"
    zone_loss = "zone-loss"


def _drill_targets(stack: str) -> Any:
    from .drill import Targets

    s = Stack(stack)
    _spec_or_exit(s)
    try:
        return Targets.from_stack(s)
    except (ValueError, KeyError) as exc:
        err.print(f"[bold red]error:[/] cannot drill stack {stack}: {exc} (is it deployed? `make up STACK={stack}`)")
        raise typer.Exit(2) from None


def _drill_progress() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.fields[run]}"),
        BarColumn(bar_width=20),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
    )


def _run_line(r: Any, runs: int) -> str:
    mark = "[green]ok[/]" if r.ok else "[bold red]FAILED[/]"
    np = f"{r.new_primary} after {r.new_primary_s:.1f} s" if r.new_primary_s is not None else "[red]none seen[/]"
    lost = f"[red]{len(r.lost_acked)}[/]" if r.lost_acked else "0"
    brain = f"[red]{r.split_brain} ticks[/]" if r.split_brain else "none"
    line = (
        f"{mark} run {r.run}/{runs} {r.scenario}: writes stopped for [bold]{r.outage_s:.1f} s[/], primary {np}, "
        f"{lost} of {r.acked} acknowledged writes lost, split brain {brain}, reads answered {r.read_availability:.0%}"
    )
    return line + (f"\n    [red]{r.error}[/]" if r.error else "")


def _summary_table(results: Any) -> Table:
    table = Table(title="p50 / p95 / max, seconds")
    for col in ("scenario", "runs", "write outage", "new primary after", "acked writes lost", "split brain"):
        table.add_column(col)
    for res in results:
        s = res.summary()

        def triple(v: Any) -> str:
            return f"{v['p50']:.1f} / {v['p95']:.1f} / {v['max']:.1f}" if v else "n/a"

        table.add_row(
            res.scenario, str(s["runs"]), triple(s["outage_s"]), triple(s["new_primary_s"]),
            str(s["lost_acked"]), str(s["split_brain"]),
        )  # fmt: skip
    return table


_DRILL_STEPS = (
    "Each run waits for a healthy cluster, writes increasing ids through the proxies' write port, injects "
    "the fault, waits until writes flow through a primary again, checks that every acknowledged id is on "
    "it, then heals (restarts what was killed and waits for the old primary to stream as a replica)."
)


_DRILL_HELP = "\n\n".join(
    (
        "Break a deployed local stack on purpose and measure what a client sees.",
        "[bold]Scenarios[/]",
        "- [bold]switchover[/]: planned; Patroni hands the primary role to the synchronous standby.",
        "- [bold]node-loss[/]: kill -9 every process of the primary's host (Postgres, Patroni, its Consul agent).",
        "- [bold]postgres-crash[/]: kill -9 the primary's postmaster only; Patroni stays up.",
        "- [bold]zone-loss[/]: kill -9 every host in the primary's zone (its Consul server and proxy too).",
        "Per run it reports the write outage (largest gap between acknowledged writes), when a new primary "
        "answered, acknowledged writes lost, split brain (two nodes answering 200 on /primary at once) and the "
        "share of reads answered on the read port. Exits 1 if any run lost a write, saw split brain or failed.",
        "Example: [bold]hastack drill node-loss --stack local --runs 3[/]",
    )
)


@app.command(help=_DRILL_HELP, epilog=_DRILL_STEPS)
def drill(
    scenario: ScenarioName = typer.Argument(..., help="What to break; see the list above.", show_default=False),
    stack: str = StackOpt,
    runs: int = typer.Option(1, "--runs", "-n", min=1, max=100, help="Runs in a row; the cluster heals between."),
) -> None:
    from .drill import ScenarioResult, run_once
    from .drill.bench import repair

    t = _drill_targets(stack)
    console.print(f"[bold]hastack drill {scenario.value}[/] on stack {stack}, {runs} run(s). {_DRILL_STEPS}\n")
    result = ScenarioResult(scenario.value)
    with _drill_progress() as progress:
        task = progress.add_task("checking every host is up", total=runs, run="setup")
        repair(t, lambda msg: progress.update(task, description=msg))
        for n in range(1, runs + 1):
            progress.update(task, run=f"run {n}/{runs}")
            try:
                r = run_once(t, scenario.value, n, lambda msg: progress.update(task, description=msg))
            except (TimeoutError, RuntimeError) as exc:
                progress.console.print(f"[bold red]run {n} could not start:[/] {exc}")
                raise typer.Exit(1) from None
            result.runs.append(r)
            progress.console.print(_run_line(r, runs))
            progress.advance(task)
        progress.update(task, description="done")
    if runs > 1:
        console.print(_summary_table([result]))
    if not all(r.ok for r in result.runs):
        raise typer.Exit(1)


_BENCH_HELP = (
    "Run every drill scenario --runs times and publish the numbers: bench/results/<UTC time>.json (p50, p95 "
    "and max per scenario, with the settings and the machine) and docs/benchmarks.md (the table next to the "
    "public anchors: RDS Multi-AZ, Aurora, Patroni defaults). `make bench` runs it on the local stack."
)


@app.command(help=_BENCH_HELP, epilog=_DRILL_STEPS)
def bench(
    stack: str = StackOpt,
    runs: int = typer.Option(10, "--runs", "-n", min=1, max=100, help="Runs of each scenario."),
    scenario: list[ScenarioName] = typer.Option(
        list(ScenarioName), "--scenario", help="Only these scenarios (repeatable). Default: all four."
    ),
) -> None:
    from .drill.bench import repair, run_scenarios, write_files

    t = _drill_targets(stack)
    names = [s.value for s in scenario]
    console.print(f"[bold]hastack bench[/] on stack {stack}: {', '.join(names)}, {runs} runs each. {_DRILL_STEPS}\n")
    started = time.monotonic()
    with _drill_progress() as progress:
        task = progress.add_task("checking every host is up", total=runs * len(names), run="setup")
        repair(t, lambda msg: progress.update(task, description=msg))

        def phase(name: str, n: int, msg: str) -> None:
            progress.update(task, run=f"{name} {n}/{runs}", description=msg)

        def done(r: Any) -> None:
            progress.console.print(_run_line(r, runs))
            progress.advance(task)

        results = run_scenarios(t, names, runs, phase, done)
    json_path, md_path = write_files(t, results)
    console.print(_summary_table(results))
    console.print(f"wrote {json_path} and {md_path} in {(time.monotonic() - started) / 60:.0f} min")
    if not all(r.ok for res in results for r in res.runs):
        raise typer.Exit(1)


def main() -> None:
    # `make` runs `python -m hastack.cli`; usage lines should still name the installed `hastack` command.
    app(prog_name="hastack")


if __name__ == "__main__":
    main()
