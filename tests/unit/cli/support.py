"""Run the real ``keylane`` command in tests, and check what every error must look like."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner, Result

from keylane.cli.main import app

_runner = CliRunner()

#: The console script installed next to this interpreter (``pip install -e .``).
KEYLANE_SCRIPT = Path(sys.executable).with_name("keylane")


def run(*args: object) -> Result:
    """``keylane ARGS...`` through the real app, in process."""
    return _runner.invoke(app, [str(arg) for arg in args], prog_name="keylane")


def run_script(*args: object, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``keylane ARGS...`` through the installed console script, in a subprocess."""
    return subprocess.run(
        [str(KEYLANE_SCRIPT), *map(str, args)],
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )


def error_line(result: Result, code: int = 2) -> str:
    """Assert ``result`` is exit ``code`` with exactly one ``error: ...`` line; return it.

    Standard output must be empty (nothing ran, or nothing was printed) and no traceback may
    appear anywhere.
    """
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert result.exit_code == code, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]


def script_error_line(done: subprocess.CompletedProcess[str], code: int = 2) -> str:
    """The same as :func:`error_line` for a subprocess run of the console script."""
    assert "Traceback" not in done.stderr + done.stdout, done.stderr
    assert done.returncode == code, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]
