"""keylane's public face: exactly the names its docstring promises, and nothing heavy on import."""

from __future__ import annotations

import subprocess
import sys

import keylane


def test_all_is_pinned() -> None:
    assert sorted(keylane.__all__) == sorted(
        [
            "Broker",
            "BrokerError",
            "Consumer",
            "ExhaustedPolicy",
            "HandlerContext",
            "InvalidArgumentError",
            "KeylaneError",
            "LaneConfig",
            "LaneGroup",
            "Lanes",
            "Message",
            "Producer",
            "SubscriptionType",
            "__version__",
            "connect",
        ]
    )
    for name in keylane.__all__:
        assert getattr(keylane, name) is not None


def test_importing_keylane_loads_no_backend_and_no_cli() -> None:
    code = (
        "import sys, keylane; "
        "bad = sorted({m.split('.')[0] for m in sys.modules} & "
        "{'pulsar', '_pulsar', 'redis', 'asyncpg', 'rich', 'typer', 'starlette', 'uvicorn'}); "
        "print(','.join(bad))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


def test_python_dash_m_keylane_runs_the_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "keylane", "--help"], capture_output=True, text=True, check=True
    )
    assert "check" in result.stdout
    assert "compare" in result.stdout


def test_check_lanes_and_journeys_load_no_backend_and_no_cli_at_run_time() -> None:
    # The layer test reads the imports; this one runs them, transitive imports included.
    banned = "{'rich', 'typer', 'pulsar', '_pulsar', 'redis', 'asyncpg', 'httpx', 'starlette'}"
    for module in ("keylane.check", "keylane.lanes", "keylane.journeys"):
        code = (
            f"import sys, {module}; "
            f"loaded = {{m.split('.')[0] for m in sys.modules}} & {banned}; "
            "loaded |= {m for m in sys.modules if m.startswith(('keylane.brokers.memory', "
            "'keylane.brokers.pulsar', 'keylane.state.sqlite', 'keylane.state.postgres'))}; "
            "print(','.join(sorted(loaded)))"
        )
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        assert result.stdout.strip() == "", module
