"""The `hastack` command: deploy, inspect and drill a hastack stack."""

from __future__ import annotations

import sys
import time

import typer
from rich.console import Console
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
        status(stack)


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
    from .platforms.local.status import collect

    s = Stack(stack)
    _spec_or_exit(s)
    if s.spec.platform != "local":
        err.print("status reads the running services, which only the local platform has here")
        raise typer.Exit(2)
    rows, summary = collect(s.plan)
    table = Table(title=f"hastack {stack}: leader {summary['leader'] or 'NONE'}, "
                  f"sync standby {', '.join(summary['sync_standbys']) or 'NONE'}")  # fmt: skip
    for col in ("zone", "host", "address", "state"):
        table.add_column(col)
    for zone in s.spec.zones:
        for r in (r for r in rows if r.zone == zone):
            mark = "[green]ok[/]" if r.ok else "[red]DEGRADED[/]"
            table.add_row(zone, r.name, r.address, f"{mark} " + "; ".join(r.details))
        table.add_section()
    console.print(table)
    if not all(r.ok for r in rows):
        raise typer.Exit(1)


def main() -> None:
    app()


if __name__ == "__main__":
    sys.exit(app())
