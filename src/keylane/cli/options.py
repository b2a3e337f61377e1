"""Options shared by several commands, defined once so that each means one thing everywhere.

- ``--json PATH``: write the command's result as JSON to PATH; ``--json -`` writes it to standard
  output instead of the tables (the human output then goes nowhere). The path is checked before
  any work starts, so a long run never ends in an unwritable file.
- ``--broker URL``: ``memory://`` (the embedded broker) or ``pulsar://host:6650``.
- ``--pulsar-admin-url URL``: Pulsar's admin REST URL, for partitioned topics.

Every command renders with :mod:`keylane.cli.render` and reports errors through
:mod:`keylane.cli.errors`.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from keylane.errors import InvalidArgumentError

__all__ = [
    "PULSAR_CLIENT_LOG",
    "AdminUrlOption",
    "BrokerOption",
    "JsonOption",
    "broker_options",
    "check_json_target",
    "check_writable",
    "json_to_stdout",
    "write_json",
]

JsonOption = Annotated[
    Path | None,
    typer.Option(
        "--json",
        metavar="PATH",
        help="Write the result as JSON to PATH ('-': to standard output, instead of tables).",
    ),
]
BrokerOption = Annotated[
    str, typer.Option("--broker", help="Broker URL: memory:// (embedded) or pulsar://host:6650.")
]
AdminUrlOption = Annotated[
    str | None,
    typer.Option("--pulsar-admin-url", help="Pulsar admin REST URL (with --broker pulsar://...)."),
]

#: Where ``--broker pulsar://...`` sends the Pulsar client's log lines (appended).
PULSAR_CLIENT_LOG = Path(tempfile.gettempdir()) / "keylane-pulsar-client.log"

_STDOUT = Path("-")


def json_to_stdout(path: Path | None) -> bool:
    """Whether ``--json -`` was given (JSON replaces the human output)."""
    return path == _STDOUT


def check_writable(path: Path, option: str) -> None:
    """Fail now, not after the whole run, if ``path`` cannot be written.

    Raises:
        InvalidArgumentError: ``path`` is a directory, its directory is missing, or either is
            not writable.
    """
    parent = path.parent
    if path.is_dir():
        raise InvalidArgumentError(f"{option} {path} is a directory, not a file")
    if not parent.is_dir():
        raise InvalidArgumentError(f"{option} {path}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise InvalidArgumentError(f"{option} {path}: not writable")


def check_json_target(path: Path | None) -> None:
    """Check a ``--json`` argument before the work starts (``-`` is always fine)."""
    if path is not None and not json_to_stdout(path):
        check_writable(path, "--json")


def write_json(path: Path | None, data: object) -> None:
    """Write ``data`` as indented JSON to ``path`` (``-``: standard output); None does nothing."""
    if path is None:
        return
    text = json.dumps(data, indent=2) + "\n"
    if json_to_stdout(path):
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        path.write_text(text, encoding="utf-8")


def broker_options(broker: str, pulsar_admin_url: str | None) -> dict[str, object]:
    """``connect()`` options for ``--broker``: the Pulsar client logs to a file, not the tables."""
    if not broker.startswith("pulsar"):
        return {}
    options: dict[str, object] = {"log_file": str(PULSAR_CLIENT_LOG)}
    if pulsar_admin_url:
        options["admin_url"] = pulsar_admin_url
    return options
