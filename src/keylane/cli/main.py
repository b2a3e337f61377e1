"""The ``keylane`` command: a thin Typer app; each command calls one library function.

Errors and exit codes are handled in one place for every command: the app's group class,
:class:`keylane.cli.errors.KeylaneGroup` (0 ok, 1 the command's negative verdict, 2 bad input,
usage or a keylane error, 130 interrupted).
"""

from __future__ import annotations

import typer

from keylane.cli.bench import bench_app
from keylane.cli.bench_pulsar import pulsar_bench_command
from keylane.cli.chaos import chaos_command
from keylane.cli.check import check_command
from keylane.cli.compare import compare_command
from keylane.cli.demo import demo_command
from keylane.cli.errors import KeylaneGroup
from keylane.cli.gateway import gateway_command
from keylane.cli.publish import publish_command
from keylane.cli.run import run_command
from keylane.cli.serve import serve_command
from keylane.cli.worker import worker_command

app = typer.Typer(
    cls=KeylaneGroup, no_args_is_help=True, add_completion=False, help="keylane command line."
)
app.command("run")(run_command)
app.command("check")(check_command)
app.command("compare")(compare_command)
app.add_typer(bench_app, name="bench")
bench_app.command("pulsar")(pulsar_bench_command)
app.command("demo")(demo_command)
app.command("worker")(worker_command)
app.command("publish")(publish_command)
app.command("gateway")(gateway_command)
app.command("serve")(serve_command)
app.command("chaos")(chaos_command)


def main() -> None:
    """Console-script entry point."""
    app()
