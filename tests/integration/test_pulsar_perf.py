"""pulsar-perf against the real standalone: both phases run and their numbers are parsed.

Needs ``scripts/services.py up`` (which also unpacks ``bin/pulsar-perf``); starts two JVMs.
"""

from __future__ import annotations

import pytest

from keylane.bench.pulsar_perf import pulsar_perf_key_shared

pytestmark = [pytest.mark.pulsar, pytest.mark.slow]


async def test_produce_then_drain_with_key_shared(pulsar_url: str, pulsar_admin_url: str) -> None:
    result = await pulsar_perf_key_shared(
        pulsar_url, pulsar_admin_url, duration=2, consumers=2, timeout=120
    )
    assert result.produce.messages > 0
    # Everything produced was drained by the Key_Shared consumers
    assert result.consume.messages == result.produce.messages
    assert result.produce.msgs_per_second == pytest.approx(result.produce.messages / 2)
    assert result.consume.msgs_per_second > 0
    produce_cmd, consume_cmd = result.commands
    assert "-db" in produce_cmd.split()
    assert "-st Key_Shared" in consume_cmd
    assert f"-m {result.produce.messages}" in consume_cmd
