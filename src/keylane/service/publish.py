"""``keylane publish``: a load generator for the events topic (pipelined, paced, recorded).

The events are the synthetic day (:func:`keylane.workload.generate`) or a JSON Lines file,
in time order; ``skip`` and ``count`` select a slice of them. Each is published keyed by its
subscriber, as the schema's JSON, paced by one of:

- ``rate``: events per second, evenly, whatever their times;
- ``speed``: at their own times on a scaled clock (``speed`` simulated seconds per real one,
  starting at the first selected event's time): the clock a worker gets with the same
  ``--speed`` and ``--clock-start``;
- neither: as fast as the broker takes them.

Sends are pipelined (:meth:`~keylane.brokers.base.Producer.enqueue`): up to ``window``
unconfirmed, handed over in event order (a producer keeps its call order per key, so each
subscriber's events are published in order). ``seconds`` bounds the run; :meth:`Publisher.stop`
ends it after the sends in flight (the CLI calls it on SIGTERM and SIGINT); confirmations still
missing ``confirm_timeout`` seconds after the last send are given up on and counted.

With ``history_path`` every publication is a checker record
``{"published": true, "key", "seq", "message_id", "sent": <time.monotonic() at the send>}``;
``sent`` (ignored by ``keylane check``) lets a benchmark measure publish-to-commit latency
against the workers' histories (``CLOCK_MONOTONIC`` is shared by the processes of a host).

Imports the broker contract and factory, the workload, the runtime's codec; no CLI.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO

from keylane._validate import check_int, check_number, check_seconds
from keylane.brokers import connect
from keylane.brokers.base import MessageId, Producer
from keylane.errors import InvalidArgumentError
from keylane.journeys import Event
from keylane.runtime import DEFAULT_TOPIC, encode_event
from keylane.runtime.codec import seq_of_position
from keylane.state import Position
from keylane.workload import BlackFridaySpec, generate, load_events_file

__all__ = [
    "PublicationLog",
    "PublishConfig",
    "PublishSummary",
    "Publisher",
    "publish_load",
    "select_events",
]

#: Publication records buffered before they are written to the history file.
_FLUSH_EVERY = 256


@dataclass(frozen=True, slots=True)
class PublishConfig:
    """What ``keylane publish`` publishes, where and how fast.

    Args:
        broker_url: ``pulsar://host:6650`` (``memory://`` only makes sense in-process).
        broker_options: more ``connect()`` options (``admin_url``, ``log_file``).
        topic: the events topic.
        events_path: a JSON Lines event file; None: the synthetic day of ``workload``.
        workload: the synthetic day's shape.
        skip: leave out the first ``skip`` events (to continue an earlier run).
        count: publish at most this many (None: all).
        rate: events per second (None: unpaced, or paced by ``speed``).
        speed: publish at the events' times on a clock this fast (not with ``rate``).
        seconds: stop after this many seconds (None: when the events run out).
        window: sends in flight at most.
        confirm_timeout: seconds to wait, at the end, for the broker's last confirmations.
        history_path: record every publication for ``keylane check`` (JSON Lines).

    Raises:
        InvalidArgumentError: a bad value, naming the field; ``rate`` and ``speed`` together.
    """

    broker_url: str
    broker_options: Mapping[str, object] = field(default_factory=dict)
    topic: str = DEFAULT_TOPIC
    events_path: Path | None = None
    workload: BlackFridaySpec = field(default_factory=BlackFridaySpec)
    skip: int = 0
    count: int | None = None
    rate: float | None = None
    speed: float | None = None
    seconds: float | None = None
    window: int = 1000
    confirm_timeout: float = 30.0
    history_path: Path | None = None

    def __post_init__(self) -> None:
        check_int("skip", self.skip, 0)
        if self.count is not None:
            check_int("count", self.count, 1)
        if self.rate is not None:
            check_number("rate", self.rate, above=0, maximum=1e7)
        if self.speed is not None:
            check_number("speed", self.speed, above=0, maximum=1e7)
        if self.rate is not None and self.speed is not None:
            raise InvalidArgumentError("rate and speed: give one of them, not both")
        if self.seconds is not None:
            check_seconds("seconds", self.seconds, allow_zero=False)
        check_int("window", self.window, 1, 100_000)
        check_seconds("confirm_timeout", self.confirm_timeout, allow_zero=False)


@dataclass(frozen=True, slots=True)
class PublishSummary:
    """What a run published.

    Attributes:
        published: events the broker confirmed.
        unconfirmed: events sent whose confirmation did not come within the confirm timeout.
        selected: events the run had to publish.
        seconds: from the first send to the last confirmation.
        rate: ``published / seconds``.
        stopped_early: the run ended before every selected event was published (stop, time).
        first_event_time, last_event_time: the times (ISO-8601) of the first and last selected
            event, for a worker's ``--clock-start``.
    """

    published: int
    unconfirmed: int
    selected: int
    seconds: float
    rate: float
    stopped_early: bool
    first_event_time: str
    last_event_time: str

    def as_dict(self) -> dict[str, object]:
        """The summary as a JSON-ready dict."""
        return asdict(self)


def select_events(config: PublishConfig) -> list[Event]:
    """The events ``config`` publishes, in time order.

    Raises:
        InvalidArgumentError: a bad event file (naming the file and line); nothing left after
            ``skip``.
    """
    if config.events_path is not None:
        events = load_events_file(config.events_path)
    else:
        events = generate(config.workload)
    end = None if config.count is None else config.skip + config.count
    selected = events[config.skip : end]
    if not selected:
        raise InvalidArgumentError(
            f"skip: {config.skip} leaves none of the {len(events)} events to publish"
        )
    return selected


class PublicationLog:
    """Publication records with their send time, written to a JSON Lines file (replaced).

    Records are buffered and written every 256, and on :meth:`flush` and :meth:`close`.
    """

    def __init__(self, path: Path) -> None:
        self._file: IO[str] = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed by close()
        self._pending: list[str] = []

    def add(self, key: str, seq: int, message_id: str, sent: float) -> None:
        """Record one publication (``sent``: ``time.monotonic()`` when it was handed over)."""
        record = {"published": True, "key": key, "seq": seq, "message_id": message_id}
        self._pending.append(json.dumps({**record, "sent": sent}, ensure_ascii=True))
        if len(self._pending) >= _FLUSH_EVERY:
            self.flush()

    def flush(self) -> None:
        """Write the buffered records."""
        if self._pending:
            self._file.write("\n".join(self._pending) + "\n")
            self._pending.clear()
            self._file.flush()

    def close(self) -> None:
        """Flush and close the file."""
        try:
            self.flush()
        finally:
            self._file.close()


class Publisher:
    """Publishes ``events`` on ``producer``, paced and pipelined (see the module docstring).

    Args:
        producer: where the events go.
        events: the events, in time order.
        config: the pace, the window and the bound (its broker fields are not used here).
        log: where publications are recorded, if anywhere.
        monotonic: the real-time clock (pacing and the records' ``sent``).
    """

    def __init__(
        self,
        producer: Producer,
        events: list[Event],
        config: PublishConfig,
        *,
        log: PublicationLog | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._producer = producer
        self._events = events
        self._config = config
        self._log = log
        self._monotonic = monotonic
        self._stop = asyncio.Event()
        self._inflight: set[asyncio.Future[MessageId]] = set()
        self._room = asyncio.Event()
        self._error: BaseException | None = None
        self.published = 0

    def stop(self) -> None:
        """End the run after the sends in flight."""
        self._stop.set()

    def _due(self) -> Callable[[int, Event], float]:
        """Seconds after the start at which event ``i`` is due."""
        rate, speed = self._config.rate, self._config.speed
        if rate is not None:
            return lambda i, event: i / rate
        if speed is not None:
            first = self._events[0].occurred_at
            return lambda i, event: (event.occurred_at - first).total_seconds() / speed
        return lambda i, event: 0.0

    async def run(self) -> PublishSummary:
        """Publish until done, stopped or out of time; return the summary.

        Raises:
            KeylaneError: a send failed (no new send starts after it).
        """
        due = self._due()
        window = self._config.window
        limit = self._config.seconds
        started = self._monotonic()
        stopped = False
        for i, event in enumerate(self._events):
            wait = due(i, event) - (self._monotonic() - started)
            if limit is not None and due(i, event) >= limit:
                stopped = True
                break
            if wait > 0 and await self._sleep(wait):
                stopped = True
                break
            while len(self._inflight) >= window and self._error is None:
                self._room.clear()
                await self._room.wait()
            if self._stop.is_set() or self._error is not None:
                stopped = True
                break
            sent = self._monotonic()
            future = await self._producer.enqueue(encode_event(event), key=event.key)
            self._inflight.add(future)
            future.add_done_callback(functools.partial(self._finished, event.key, sent))
        if self._inflight:
            # Bounded: a broker that never confirms must not keep the process forever.
            await asyncio.wait(set(self._inflight), timeout=self._config.confirm_timeout)
        unconfirmed = len(self._inflight)
        for future in list(self._inflight):
            future.cancel()
        seconds = max(self._monotonic() - started, 1e-9)
        if self._error is not None:
            raise self._error
        return PublishSummary(
            published=self.published,
            unconfirmed=unconfirmed,
            selected=len(self._events),
            seconds=seconds,
            rate=self.published / seconds,
            stopped_early=stopped or self.published < len(self._events),
            first_event_time=self._events[0].occurred_at.isoformat(),
            last_event_time=self._events[-1].occurred_at.isoformat(),
        )

    async def _sleep(self, seconds: float) -> bool:
        """Sleep ``seconds`` or until stopped; True if stopped."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._stop.wait()
        return self._stop.is_set()

    def _finished(self, key: str, sent: float, future: asyncio.Future[MessageId]) -> None:
        self._inflight.discard(future)
        self._room.set()
        if future.cancelled():
            return
        error = future.exception()
        if error is not None:
            if self._error is None:
                self._error = error
            return
        self.published += 1
        if self._log is not None:
            message_id = future.result()
            self._log.add(key, seq_of_position(Position.of(message_id)), str(message_id), sent)


async def publish_load(
    config: PublishConfig, *, on_start: Callable[[Publisher], None] | None = None
) -> PublishSummary:
    """Connect, publish what ``config`` says, close; return the summary.

    Args:
        config: what and how.
        on_start: called with the :class:`Publisher` before the first send (e.g. to wire a
            signal to :meth:`Publisher.stop`).

    Raises:
        InvalidArgumentError: a bad event file, nothing to publish, an unwritable history.
        KeylaneError: the broker failed.
    """
    events = await asyncio.to_thread(select_events, config)
    log = None if config.history_path is None else PublicationLog(config.history_path)
    try:
        async with connect(config.broker_url, **config.broker_options) as broker:
            producer = await broker.create_producer(config.topic)
            try:
                publisher = Publisher(producer, events, config, log=log)
                if on_start is not None:
                    on_start(publisher)
                return await publisher.run()
            finally:
                await producer.close()
    finally:
        if log is not None:
            log.close()
