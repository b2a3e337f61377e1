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


def test_check_and_lanes_load_neither_rich_nor_typer() -> None:
    for module in ("keylane.check", "keylane.lanes"):
        code = (
            f"import sys, {module}; "
            "print(','.join(sorted({m.split('.')[0] for m in sys.modules} & {'rich', 'typer'})))"
        )
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        assert result.stdout.strip() == "", module
