"""The shared --broker options (the commands themselves run in tests/integration)."""

from __future__ import annotations

from keylane.cli.options import PULSAR_CLIENT_LOG
from keylane.cli.options import broker_options as _broker_options


def test_embedded_broker_gets_no_options() -> None:
    assert _broker_options("memory://", "http://127.0.0.1:8080") == {}


def test_pulsar_client_logs_to_a_file_not_the_console() -> None:
    options = _broker_options("pulsar://127.0.0.1:6650", "http://admin:8080")
    assert options == {"log_file": str(PULSAR_CLIENT_LOG), "admin_url": "http://admin:8080"}
    assert "log_level" not in _broker_options("pulsar://127.0.0.1:6650", None)
