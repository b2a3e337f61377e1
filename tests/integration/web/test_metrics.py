"""GET /metrics during a run: every listed metric is there, and the ones a run moves do move.

The day runs on a clock 900 times faster than real time, so browse_abandonment's 1 h timers
fire after 4 seconds (timer lateness, the marketing SMS), on the embedded pipeline.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from keylane.clock import ScaledClock
from keylane.observability import METRICS
from tests.integration.web.conftest import AUTH, start_service, stop_service, until, viewed
from tests.integration.web.test_views import _Gate


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return found


def _total(samples: dict[Any, float], name: str, **labels: str) -> float:
    return sum(
        value
        for (sample, have), value in samples.items()
        if sample == name and all((k, v) in have for k, v in labels.items())
    )


def _names(samples: dict[Any, float]) -> set[str]:
    names = set()
    for sample, _ in samples:
        names.add(sample)
        for suffix in ("_bucket", "_count", "_sum", "_created"):
            if sample.endswith(suffix):
                names.add(sample.removesuffix(suffix))
    return names


async def test_every_metric_is_exposed_and_moves_during_a_run(tmp_path: Path):
    clock = ScaledClock(datetime(2026, 3, 2, 15, 0, tzinfo=UTC), 900.0)
    gate = _Gate("acme:held")
    running = await start_service(tmp_path, clock=clock, speed=900.0, wrap=gate.wrap)
    try:
        client = running.client
        sampler = running.service.observability.sampler
        assert sampler is not None
        await until(lambda: sampler.rounds >= 1)
        before = _samples((await client.get("/metrics")).text)
        missing = {m.name for m in METRICS} - _names(before)
        assert missing == set()

        batch = [viewed(f"m{n}", n) for n in range(8)] + [viewed("held", 1)]
        # Subscribers need a phone and consent for the browse SMS: subscribe them first.
        from tests.integration.web.conftest import subscribed

        subs = [subscribed(f"m{n}") for n in range(8)]
        assert (await client.post("/v1/events", json=subs, headers=AUTH)).status_code == 202
        assert (await client.post("/v1/events", json=batch, headers=AUTH)).status_code == 202
        await asyncio.wait_for(gate.entered.wait(), 10)
        # The sampler reads the store in the background: wait for a sample with the timers.
        await until(lambda: sampler.latest is not None and sampler.latest.timers_armed)
        during = _samples((await client.get("/metrics")).text)
        assert _total(during, "keylane_keys_in_flight") == 1  # the held key
        assert _total(during, "keylane_messages_buffered") >= 1
        assert _total(during, "keylane_timers_armed") >= 1
        gate.open.set()

        gateway = running.pipeline.gateway
        assert gateway is not None
        # 8 welcome SMS, then 8 browse-abandonment SMS an hour (four seconds) later.
        await until(lambda: gateway.stats().deliveries >= 16, attempts=3000)
        seen_rounds = sampler.rounds
        await until(lambda: sampler.rounds > seen_rounds + 1)
        after = _samples((await client.get("/metrics")).text)
    finally:
        gate.open.set()
        await stop_service(running)

    assert _total(after, "keylane_events_ingested_total", outcome="accepted") == 17
    assert _total(after, "keylane_events_processed_total", outcome="ok") >= 17
    assert _total(after, "keylane_decision_duration_seconds_count") > _total(
        before, "keylane_decision_duration_seconds_count"
    )
    assert _total(after, "keylane_sends_total", stage="decision", outcome="planned") >= 16
    assert _total(after, "keylane_sends_total", stage="dispatch", outcome="sent") >= 16
    assert _total(after, "keylane_sends_total", channel="sms", stage="dispatch") >= 16
    assert _total(after, "keylane_timer_lateness_seconds_count") >= 8
    assert _total(after, "keylane_provider_request_duration_seconds_count", channel="sms") >= 16
    assert _total(after, "keylane_outbox_rows", status="sent") >= 16
    assert _total(after, "keylane_outbox_pending") == 0
    assert _total(after, "keylane_hash_ranges_owned") > 0
    assert _total(after, "keylane_hash_slots_owned") == 65535
    for name in ("keylane_keys_in_flight", "keylane_keys_stalled", "keylane_keys_parked"):
        assert _total(after, name) == 0
    for labels in ({"source": "broker"}, {"source": "lanes"}):
        assert ("keylane_redeliveries_total", tuple(labels.items())) in after
    for labels in ({"stage": "commit"}, {"stage": "dispatch"}):
        assert ("keylane_fence_rejections_total", tuple(labels.items())) in after
    for name in ("keylane_dead_lettered_total", "keylane_outbox_oldest_pending_age_seconds"):
        assert any(sample == name for sample, _ in after)
    consumers = {dict(have).get("consumer") for (sample, have) in after if "hash" in sample}
    assert consumers <= {"worker-0", "worker-1", None}  # no per-key labels anywhere
    assert all("key" not in dict(have) for (sample, have) in after if sample.startswith("keylane_"))
