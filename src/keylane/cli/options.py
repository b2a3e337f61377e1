"""Options shared by several commands, defined once so that each means one thing everywhere.

- ``--json PATH``: write the command's result as JSON to PATH; ``--json -`` writes it to standard
  output instead of the tables (the human output then goes nowhere). The path is checked before
  any work starts, so a long run never ends in an unwritable file.
- ``--broker URL``: ``memory://`` (the embedded broker) or ``pulsar://host:6650``.
- ``--pulsar-admin-url URL``: Pulsar's admin REST URL, for partitioned topics.
- ``--pulsar-token``, ``--pulsar-token-file``, ``--pulsar-tls-trust-certs``,
  ``--pulsar-tls-allow-insecure``, ``--pulsar-tls-validate-hostname``: Pulsar's token
  authentication and TLS trust, each also a ``KEYLANE_PULSAR_*`` variable
  (:func:`keylane.runtime.settings.pulsar_connect_options`); ignored with ``memory://``.

Every command renders with :mod:`keylane.cli.render` and reports errors through
:mod:`keylane.cli.errors`.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer

from keylane.errors import InvalidArgumentError
from keylane.runtime.settings import pulsar_connect_options

__all__ = [
    "PULSAR_CLIENT_LOG",
    "AdminUrlOption",
    "BrokerOption",
    "JsonOption",
    "PulsarAllowInsecureOption",
    "PulsarTokenFileOption",
    "PulsarTokenOption",
    "PulsarTrustCertsOption",
    "PulsarValidateHostnameOption",
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

#: The Pulsar token and TLS flags, in a help panel of their own.
_pulsar_option = functools.partial(typer.Option, rich_help_panel="Pulsar token and TLS")

PulsarTokenOption = Annotated[
    str | None,
    _pulsar_option(
        "--pulsar-token",
        metavar="TOKEN",
        help="Pulsar auth token (JWT). Anyone who can list processes (ps) sees it: prefer "
        "--pulsar-token-file or the variable [KEYLANE_PULSAR_TOKEN].",
    ),
]
PulsarTokenFileOption = Annotated[
    Path | None,
    _pulsar_option(
        "--pulsar-token-file",
        metavar="PATH",
        help="A file holding the Pulsar auth token, read again at each use (rotation) "
        "[KEYLANE_PULSAR_TOKEN_FILE].",
    ),
]
PulsarTrustCertsOption = Annotated[
    Path | None,
    _pulsar_option(
        "--pulsar-tls-trust-certs",
        metavar="PATH",
        help="PEM file of the CAs to trust for pulsar+ssl:// and an https:// admin URL; "
        "certifi's bundle by default [KEYLANE_PULSAR_TLS_TRUST_CERTS].",
    ),
]
PulsarAllowInsecureOption = Annotated[
    bool | None,
    _pulsar_option(
        "--pulsar-tls-allow-insecure/--no-pulsar-tls-allow-insecure",
        help="TESTS ONLY: accept any TLS certificate from Pulsar; off "
        "[KEYLANE_PULSAR_TLS_ALLOW_INSECURE].",
    ),
]
PulsarValidateHostnameOption = Annotated[
    bool | None,
    _pulsar_option(
        "--pulsar-tls-validate-hostname/--no-pulsar-tls-validate-hostname",
        help="Check that Pulsar's certificate names its host; on "
        "[KEYLANE_PULSAR_TLS_VALIDATE_HOSTNAME].",
    ),
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


def broker_options(
    broker: str, pulsar_admin_url: str | None, **pulsar_security: Any
) -> dict[str, object]:
    """``connect()`` options for ``--broker``: the Pulsar client logs to a file, not the tables.

    Args:
        broker: the ``--broker`` URL.
        pulsar_admin_url: ``--pulsar-admin-url``, or None.
        pulsar_security: the ``--pulsar-token``... flags by parameter name (``pulsar_token``,
            ``pulsar_token_file``, ``pulsar_tls_trust_certs``, ``pulsar_tls_allow_insecure``,
            ``pulsar_tls_validate_hostname``; None: not given), over their variables. Leave
            them out for a command whose settings are already read (``keylane worker``).

    Raises:
        InvalidArgumentError: a bad token or TLS setting (naming its flag or variable).
    """
    if not broker.startswith("pulsar"):
        return {}
    options: dict[str, object] = {"log_file": str(PULSAR_CLIENT_LOG)}
    if pulsar_admin_url:
        options["admin_url"] = pulsar_admin_url
    if pulsar_security:
        options.update(pulsar_connect_options(broker, pulsar_admin_url, **pulsar_security))
    return options
