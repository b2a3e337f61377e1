"""Settings from the environment: the one module in keylane that reads ``os.environ``.

Every other module gets its settings as arguments (the CLI passes them on), so a setting has one
name, one default and one place to look it up. The layer test enforces it.

Names:

- ``KEYLANE_PULSAR_HOME``: an unpacked Pulsar distribution (for ``pulsar-perf``).
- ``KEYLANE_JAVA_HOME``, then ``JAVA_HOME``: the Java 17 to run it with.
"""

from __future__ import annotations

import os

__all__ = ["child_environment", "java_home", "pulsar_home"]


def pulsar_home() -> str | None:
    """``$KEYLANE_PULSAR_HOME``, if set and not empty."""
    return os.environ.get("KEYLANE_PULSAR_HOME") or None


def java_home() -> tuple[str | None, str | None]:
    """``($KEYLANE_JAVA_HOME, $JAVA_HOME)``, each None when unset or empty."""
    return os.environ.get("KEYLANE_JAVA_HOME") or None, os.environ.get("JAVA_HOME") or None


def child_environment(**overrides: str) -> dict[str, str]:
    """This process's environment with ``overrides``, for a child process."""
    return {**os.environ, **overrides}
