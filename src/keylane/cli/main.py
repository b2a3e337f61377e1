"""The ``keylane`` command: a thin Typer app; each command calls one library function."""

from __future__ import annotations

import typer

from keylane.cli.bench import bench_app
from keylane.cli.bench_pulsar import pulsar_bench_command
from keylane.cli.check import check_command
from keylane.cli.compare import compare_command
from keylane.cli.demo import demo_command

app = typer.Typer(no_args_is_help=True, add_completion=False, help="keylane command line.")
app.command("check")(check_command)
app.command("compare")(compare_command)
app.add_typer(bench_app, name="bench")
bench_app.command("pulsar")(pulsar_bench_command)
app.command("demo")(demo_command)


def main() -> None:
    """Console-script entry point."""
    app()
