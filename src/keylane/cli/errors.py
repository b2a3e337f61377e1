"""One error path for every ``keylane`` command: exit codes and one-line error messages.

:class:`KeylaneGroup` is the click group class of the ``keylane`` Typer app
(:mod:`keylane.cli.main`), so every command, present and future, goes through it. Commands do not
catch errors themselves: they raise, and this module turns what they raise into an exit code.

Exit codes, the same for every command:

* 0: the command succeeded;
* 1: the command's documented negative verdict only (``check``: anomalies found; ``demo``:
  FAILED; ``compare``: every requested strategy was skipped);
* 2: bad input, bad usage or a keylane error: one line on standard error, no traceback. A bug
  (an exception keylane did not raise on purpose) also exits 2, after its traceback and a line
  saying it is a bug;
* 130: interrupted (Ctrl-C), one line, no traceback.

This module imports typer and :mod:`keylane.errors` only; no command, no backend.
"""

from __future__ import annotations

import errno
import os
import sys
import traceback
from collections.abc import Sequence
from typing import Any, Protocol, cast

import typer
from typer.core import TyperGroup

from keylane.errors import KeylaneError

__all__ = [
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_VERDICT",
    "KeylaneGroup",
    "error_line",
    "say",
]

EXIT_OK = 0
#: The command's documented negative verdict, and nothing else.
EXIT_VERDICT = 1
#: Bad input, bad usage, a keylane error.
EXIT_ERROR = 2
#: Ctrl-C (128 + SIGINT, as shells report it).
EXIT_INTERRUPTED = 130


class _ClickError(Protocol):
    """What click's ``ClickException`` offers (typer may vendor click, so no import of it)."""

    exit_code: int

    def format_message(self) -> str:
        """The error message."""


def _click_class(name: str) -> type[Exception]:
    # typer.BadParameter derives from click's UsageError and ClickException, whether typer
    # vendors click or depends on it: take the classes from there, not from a private module.
    for cls in typer.BadParameter.__mro__:
        if cls.__name__ == name:
            return cast(type[Exception], cls)
    raise ImportError(f"typer.BadParameter does not derive from click's {name}")


_CLICK_EXCEPTION = _click_class("ClickException")
_USAGE_ERROR = _click_class("UsageError")


def _one_line(text: str) -> str:
    """``text`` on one line, printable whatever the terminal's encoding (lone surrogates...)."""
    line = " ".join(part.strip() for part in text.splitlines() if part.strip())
    return line.encode("utf-8", "backslashreplace").decode("utf-8")


def error_line(exc: BaseException) -> str:
    """Describe a keylane error or an OS error in one line, without the ``error:`` prefix."""
    if isinstance(exc, OSError) and not isinstance(exc, KeylaneError):
        reason = exc.strerror or str(exc) or type(exc).__name__
        if exc.filename is not None:
            names = f"{exc.filename}" + (f" -> {exc.filename2}" if exc.filename2 else "")
            return _one_line(f"{names}: {reason}")
        return _one_line(reason)
    return _one_line(str(exc) or type(exc).__name__)


def say(message: str) -> None:
    """Print one line on standard error."""
    typer.echo(_one_line(message), err=True)


def _usage_line(exc: Exception) -> str:
    error = cast(_ClickError, exc)
    line = f"error: {error.format_message()}"
    ctx = getattr(exc, "ctx", None)
    if isinstance(exc, _USAGE_ERROR) and ctx is not None:
        line += f" (see '{ctx.command_path} --help')"
    return line


class KeylaneGroup(TyperGroup):
    """The ``keylane`` group: maps whatever a command raises to an exit code and one line."""

    def invoke(self, ctx: Any) -> Any:
        """Run the command; keylane errors, OS errors and Ctrl-C become exit codes."""
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, _CLICK_EXCEPTION):
            raise  # exit codes and usage errors: handled by main()
        except KeyboardInterrupt:
            say("interrupted")
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except KeylaneError as exc:
            say(f"error: {error_line(exc)}")
            raise typer.Exit(EXIT_ERROR) from None
        except OSError as exc:
            if exc.errno == errno.EPIPE:  # output piped into `head`: nothing left to say
                _silence_broken_pipe()
                raise typer.Exit(EXIT_ERROR) from None
            say(f"error: {error_line(exc)}")
            raise typer.Exit(EXIT_ERROR) from None
        except Exception as exc:
            traceback.print_exc()
            say(
                f"error: internal error ({type(exc).__name__}); this is a bug in keylane, "
                "please report it with the traceback above"
            )
            raise typer.Exit(EXIT_ERROR) from None

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        """Parse and run; a usage error is one line and exit 2 instead of a boxed panel."""
        try:
            result = super().main(
                args,
                prog_name,
                complete_var,
                standalone_mode=False,
                windows_expand_args=windows_expand_args,
                **extra,
            )
        except _CLICK_EXCEPTION as exc:
            # `keylane` or `keylane bench` alone: typer has printed the help already.
            if type(exc).__name__ != "NoArgsIsHelpError":
                say(_usage_line(exc))
            code = EXIT_ERROR
        except typer.Abort:
            say("aborted")
            code = EXIT_INTERRUPTED
        else:
            code = result if isinstance(result, int) else EXIT_OK
        if not standalone_mode:
            return code
        sys.exit(code)


def _silence_broken_pipe() -> None:
    """Keep the interpreter from reporting the closed pipe again when it flushes at exit."""
    # As the Python documentation advises: point standard output at /dev/null.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # not a real file (a test runner's buffer)
        pass
