"""The whole pipeline of one test: broker, store, gateway, providers, workers, publisher, history.

:class:`Pipeline` owns the real components a scenario runs on: the embedded broker (strict
delayed delivery), a state store of the test's backend, the embedded gateway as a real HTTP
server with ``WebhookProvider``s behind a ``ChannelRouter``, a :class:`~keylane.clock.ScaledClock`,
and a :class:`~keylane.check.HistoryRecorder` that every worker records its decisions in and the
publisher its publications. It also holds the two judges: :meth:`Pipeline.report` (the history
checker) and :meth:`Pipeline.assert_effectively_once` (the checker and the gateway's log).
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from keylane.brokers.base import MessageId, Producer
from keylane.check import DEDUPE, OK, HistoryRecorder, Report, check
from keylane.clock import ScaledClock
from keylane.journeys import Event, JourneySet, parse_event, subscriber_key
from keylane.lanes import ExhaustedPolicy, LaneConfig
from keylane.providers import ChannelRouter, Provider
from keylane.runtime import RelayConfig, Worker, WorkerConfig, encode_event
from keylane.runtime.codec import seq_of_position
from keylane.state import Position, SendStatus, StateStore
from keylane.web.gateway import GatewayServer

__all__ = ["BRAND", "Pipeline", "eventually"]

BRAND = "acme"
#: Seconds any single wait of a test may take before it fails (generous: 2 shared cores).
WAIT = 15.0


async def eventually(
    condition: Callable[[], bool | Awaitable[bool]], what: str, timeout: float = WAIT
) -> None:
    """Poll ``condition`` every 10 ms until it holds; fail naming ``what`` after ``timeout``."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                result = condition()
                if not isinstance(result, bool):
                    result = await result
                if result:
                    return
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(f"timed out after {timeout:g} s waiting for {what}") from None


class Pipeline:
    """One scenario's components; :meth:`close` tears down everything it started."""

    def __init__(
        self,
        *,
        kind: str,
        store: StateStore,
        broker: Any,
        gateway: GatewayServer,
        provider: ChannelRouter,
        clock: ScaledClock,
        journeys: JourneySet,
    ) -> None:
        self.kind = kind
        self.store = store
        self.broker = broker
        self.gateway = gateway
        self.provider = provider
        self.clock = clock
        self.speed = clock.speed
        self.journeys = journeys
        self.recorder = HistoryRecorder()
        self.workers: list[Worker] = []
        self._producer: Producer | None = None
        self._batching: Producer | None = None
        self._ids = itertools.count(1)
        self.phones: dict[str, str] = {}

    # -- configuration -----------------------------------------------------------------------

    def relay_config(self, **overrides: Any) -> RelayConfig:
        """The relay's knobs in *real* seconds, scaled to the engine's clock."""
        config = RelayConfig(
            lease=30.0 * self.speed,
            poll_interval=0.02,
            retry_backoff=0.02 * self.speed,
            retry_backoff_max=0.3 * self.speed,
        )
        return replace(config, **overrides)

    def worker_config(self, name: str, **overrides: Any) -> WorkerConfig:
        lanes = LaneConfig(
            max_in_flight=64,
            handler_timeout=20.0,
            max_attempts=3,
            on_exhausted=ExhaustedPolicy.DEAD_LETTER,
            shutdown_grace=3.0,
        )
        config = WorkerConfig(
            name=name,
            consumers=2,
            lanes=lanes,
            relay=self.relay_config(),
            sweep_interval=0.25,
            sweep_grace=1.0 * self.speed,
        )
        return replace(config, **overrides)

    async def start_worker(
        self,
        name: str = "w",
        *,
        store: StateStore | None = None,
        provider: Provider | None = None,
        **overrides: Any,
    ) -> Worker:
        """Start a worker (its consumers join the subscription) recording into the history."""
        if store is not None and store is not self.store:
            await store.open()
        worker = Worker(
            self.broker,
            self.store if store is None else store,
            self.provider if provider is None else provider,
            self.journeys,
            self.clock,
            self.worker_config(name, **overrides),
            history=self.recorder,
        )
        self.workers.append(worker)
        await worker.start()
        return worker

    # -- events ------------------------------------------------------------------------------

    def phone(self, subscriber: str) -> str:
        """The subscriber's (fictional, valid) phone number."""
        if subscriber not in self.phones:
            self.phones[subscriber] = f"+1415555{1000 + len(self.phones):04d}"
        return self.phones[subscriber]

    def key(self, subscriber: str) -> str:
        return subscriber_key(BRAND, subscriber)

    def event(self, subscriber: str, kind: str, event_id: str | None = None, **props: Any) -> Event:
        """A valid event of ``subscriber`` happening now on the engine's clock."""
        return parse_event(
            {
                "event_id": event_id or f"e{next(self._ids)}",
                "brand_id": BRAND,
                "subscriber_id": subscriber,
                "type": kind,
                "occurred_at": self.clock.now().isoformat(),
                "properties": props,
            }
        )

    def subscribed(self, subscriber: str, event_id: str | None = None) -> Event:
        return self.event(
            subscriber,
            "subscribed",
            event_id,
            phone=self.phone(subscriber),
            email=f"{subscriber}@example.com",
            consent={"sms": True, "email": True},
        )

    def sms(self, subscriber: str, text: str, event_id: str | None = None) -> Event:
        return self.event(subscriber, "sms_received", event_id, text=text)

    async def producer(self, *, batched: bool = False) -> Producer:
        """The test's producer: unbatched, or with keylane's default KEY_BASED batching."""
        topic = WorkerConfig().topic
        if batched:
            if self._batching is None:
                self._batching = await self.broker.create_producer(topic)
            return self._batching
        if self._producer is None:
            self._producer = await self.broker.create_producer(topic, batching=None)
        return self._producer

    async def publish(self, *events: Event, batched: bool = False) -> list[MessageId]:
        """Publish valid events, in order, each recorded for the lost-event check.

        ``batched``: all at once through a KEY_BASED batching producer, so a subscriber's events
        share batch entries (a redelivery then brings back the entry's acked messages too).
        """
        producer = await self.producer(batched=batched)
        if batched:
            ids = list(
                await asyncio.gather(*(producer.send(encode_event(e), key=e.key) for e in events))
            )
        else:
            ids = [await producer.send(encode_event(e), key=e.key) for e in events]
        for event, message_id in zip(events, ids, strict=True):
            seq = seq_of_position(Position.of(message_id))
            self.recorder.published(event.key, seq, str(message_id))
        return ids

    async def publish_raw(self, data: bytes, key: str) -> MessageId:
        """Publish bytes that are not a valid event (not recorded: there is no decision)."""
        return await (await self.producer()).send(data, key=key)

    # -- waiting -----------------------------------------------------------------------------

    def outcomes(self, event_id: str) -> list[str]:
        """The recorded outcomes of ``event_id``'s attempts, in the order they ended."""
        attempts = [a for a in self.recorder.history().attempts if a.event_id == event_id]
        return [a.outcome for a in sorted(attempts, key=lambda a: a.end)]

    def committed(self, event_id: str) -> bool:
        return OK in self.outcomes(event_id)

    async def wait_committed(self, *event_ids: str, timeout: float = WAIT) -> None:
        await eventually(
            lambda: all(self.committed(e) for e in event_ids), f"commits of {event_ids}", timeout
        )

    def decided(self) -> bool:
        """Every published event has a commit or a dedupe in the history."""
        history = self.recorder.history()
        done = {(a.key, a.seq) for a in history.attempts if a.outcome in (OK, DEDUPE)}
        return all((p.key, p.seq) in done for p in history.published)

    async def outbox_quiet(self, pending: int = 0) -> bool:
        stats = await self.store.outbox_stats(self.clock.now().timestamp())
        return stats.dispatching == 0 and stats.pending == pending

    async def settle(self, *, pending: int = 0, timeout: float = WAIT) -> None:
        """Wait until every published event is decided and the outbox holds ``pending`` rows."""
        await eventually(self.decided, "every published event to be decided", timeout)
        await eventually(lambda: self.outbox_quiet(pending), "the outbox to drain", timeout)

    # -- the judges --------------------------------------------------------------------------

    def report(self) -> Report:
        """The history checker's verdict on every decision recorded so far."""
        return check(self.recorder.history())

    def delivered(self) -> Counter[str]:
        """Deliveries per idempotency key, from the gateway's log."""
        return Counter(r.delivery.idempotency_key for r in self.gateway.ledger.deliveries())

    def steps_to(self, subscriber: str) -> list[str]:
        """The steps the subscriber's phone received, oldest first (the gateway's phone view)."""
        return [r.delivery.step for r in self.gateway.ledger.messages_to(self.phone(subscriber))]

    async def sent_keys(self) -> set[str]:
        """Idempotency keys the outbox records as SENT, over every subscriber seen."""
        sent: set[str] = set()
        for subscriber in self.phones:
            for row in await self.store.sends_for(self.key(subscriber)):
                if row.status is SendStatus.SENT:
                    sent.add(row.idempotency_key)
        return sent

    async def assert_effectively_once(
        self, *, order: bool = True, outbox_matches: bool = True
    ) -> Report:
        """0 duplicate deliveries, 0 lost decisions, committed decisions in publish order.

        Also (``outbox_matches``): what the outbox marks SENT is exactly what the gateway
        delivered.
        """
        stats = self.gateway.stats()
        assert stats.duplicate_deliveries == 0, stats
        delivered = self.delivered()
        assert all(n == 1 for n in delivered.values()), delivered
        if outbox_matches:
            assert set(delivered) == await self.sent_keys()
        report = self.report()
        decisions = report.decisions
        assert decisions is not None, "no decision was recorded"
        assert report.lost_count == 0, report.lost_messages
        assert report.duplicate_count == 0, report.duplicates
        assert decisions.decided_twice == 0, decisions.examples
        assert decisions.committed_overlaps == 0, decisions.examples
        assert decisions.version_conflicts == 0, decisions.examples
        assert decisions.unbacked_dedupes == 0, decisions.examples
        if order:
            assert decisions.commit_order == 0, decisions.examples
            assert report.order_count == 0, report.order_violations
            assert decisions.clean
        return report

    # -- teardown ----------------------------------------------------------------------------

    async def close(self) -> None:
        for worker in reversed(self.workers):
            await worker.stop(grace=2.0)
        for producer in (self._producer, self._batching):
            if producer is not None:
                await producer.close()
        self.recorder.close()
