"""The providers import without httpx; the gateway core without starlette and uvicorn."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def run(blocked: tuple[str, ...], code: str) -> subprocess.CompletedProcess[str]:
    # A module mapped to None in sys.modules fails to import, as if it were not installed.
    block = f"import sys\nfor name in {blocked!r}:\n    sys.modules[name] = None\n"
    return subprocess.run(
        [sys.executable, "-c", block + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_providers_import_without_httpx():
    result = run(
        ("httpx",),
        """
        import asyncio, datetime as dt
        import keylane.providers as providers
        delivery = providers.Delivery(
            idempotency_key="k", channel="sms", to="+15551234567", brand_id="b",
            subscriber_id="s", journey="j", step="st", body="hi", message_class="marketing",
            sent_at=dt.datetime(2026, 11, 27, tzinfo=dt.UTC), subscriber_timezone=None,
        )
        print(asyncio.run(providers.MemoryProvider().send(delivery)).outcome)
        """,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "sent"


def test_gateway_core_imports_without_the_web_extra_and_the_server_names_it():
    result = run(
        ("starlette", "uvicorn"),
        """
        from keylane.errors import MissingExtraError
        from keylane.web.gateway import FaultPlan, Ledger
        print(Ledger().stats().deliveries, FaultPlan().active)
        try:
            from keylane.web.gateway import GatewayServer
        except MissingExtraError as exc:
            print(exc)
        """,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "0 False"
    assert "pip install 'keylane[web]'" in lines[1]
