"""Property-based tests of lanes: random keys, latencies, failures, hangs, ack failures, stops.

Each example runs on a fresh looptime event loop (virtual time), so sleeps cost nothing and runs
are deterministic. Properties checked on every example:

* never two handlers of one key at once;
* per key, finished messages (handler succeeded or dead-lettered) are a prefix of the receive
  order, so successes complete in receive order and retries never let a later message overtake;
* no attempt of a message starts before the previous message of its key finished;
* no loss: every message is acked exactly once after success / dead-lettering, or is unacked and
  back in the consumer after stop (never acked without success or dead-lettering);
* the buffered total never exceeds ``max_buffered_total``;
* stats counters agree with what the handler saw.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass

import looptime
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keylane.brokers.base import Message
from keylane.lanes import ExhaustedPolicy, HandlerContext, LaneConfig, Lanes
from tests.unit.lanes.fakes import FakeConsumer, eventually, make_message, seq_of

TICK = 0.25
TIMEOUT = 2.0


@dataclass(frozen=True)
class Spec:
    """One message of a scenario."""

    key: int
    gap: int  # ticks after the previous message's arrival
    duration: int  # ticks a successful (or raising) attempt takes
    fails: int  # how many attempts fail before one succeeds
    hang: bool  # failing attempts hang past the timeout instead of raising
    ack_fails: bool  # the first ack of this message fails


@dataclass(frozen=True)
class Scenario:
    specs: list[Spec]
    max_in_flight: int
    max_attempts: int
    policy: ExhaustedPolicy
    per_key: int
    total: int
    backoff: float
    stop_at: float | None  # None: run until nothing can progress, then stop
    grace: float


specs = st.builds(
    Spec,
    key=st.integers(0, 5),
    gap=st.integers(0, 3),
    duration=st.integers(0, 4),
    fails=st.sampled_from([0, 0, 0, 1, 2, 5]),
    hang=st.booleans(),
    ack_fails=st.sampled_from([False] * 9 + [True]),
)

scenarios = st.builds(
    Scenario,
    specs=st.lists(specs, min_size=1, max_size=50),
    max_in_flight=st.integers(1, 4),
    max_attempts=st.integers(1, 3),
    policy=st.sampled_from(ExhaustedPolicy),
    per_key=st.integers(1, 5),
    total=st.integers(1, 20),
    backoff=st.sampled_from([0.0, 0.1, 1.0]),
    stop_at=st.one_of(st.none(), st.floats(0.0, 15.0)),
    grace=st.sampled_from([0.0, 1.0, 5.0]),
)


class Observer:
    """The handler + dead-letter sink of a scenario, recording everything lanes make them do."""

    def __init__(self, scenario: Scenario, lanes_ref: list[Lanes]) -> None:
        self.scenario = scenario
        self.lanes_ref = lanes_ref
        self.running: dict[str, int] = defaultdict(int)
        self.violations: list[str] = []
        self.starts: dict[str, list[int]] = defaultdict(list)  # key -> seq per attempt start
        self.finished: dict[str, list[int]] = defaultdict(list)  # key -> seq succeeded / dead
        self.succeeded: set[int] = set()
        self.dead: set[int] = set()
        self.failed_attempts = 0
        self.max_buffered = 0

    def _watch_buffer(self) -> None:
        self.max_buffered = max(self.max_buffered, self.lanes_ref[0].stats().buffered)

    async def handler(self, message: Message, context: HandlerContext) -> None:
        key, seq = context.key, seq_of(message)
        spec = self.scenario.specs[seq]
        self._watch_buffer()
        self.running[key] += 1
        if self.running[key] > 1:
            self.violations.append(f"{key} ran twice at once (seq {seq})")
        self.starts[key].append(seq)
        try:
            if context.attempt <= spec.fails:
                self.failed_attempts += 1
                await asyncio.sleep(1000.0 if spec.hang else spec.duration * TICK)
                raise RuntimeError(f"seq {seq} attempt {context.attempt}")
            await asyncio.sleep(spec.duration * TICK)
            self.succeeded.add(seq)
            self.finished[key].append(seq)
        finally:
            self.running[key] -= 1

    async def sink(self, message: Message, error: BaseException, attempts: int) -> None:
        seq = seq_of(message)
        assert attempts == self.scenario.max_attempts
        self.dead.add(seq)
        self.finished[message.sticky_key].append(seq)


async def run_scenario(scenario: Scenario) -> None:
    messages = [make_message(f"k{s.key}", i, entry=i) for i, s in enumerate(scenario.specs)]
    consumer = FakeConsumer()
    first_ack_failed: set[int] = set()

    def fail_ack(message: Message) -> bool:
        seq = seq_of(message)
        if scenario.specs[seq].ack_fails and seq not in first_ack_failed:
            first_ack_failed.add(seq)
            return True
        return False

    consumer.fail_ack = fail_ack
    config = LaneConfig(
        max_in_flight=scenario.max_in_flight,
        handler_timeout=TIMEOUT,
        max_attempts=scenario.max_attempts,
        retry_backoff=scenario.backoff,
        retry_backoff_max=max(scenario.backoff, 2.0),
        on_exhausted=scenario.policy,
        max_buffered_per_key=scenario.per_key,
        max_buffered_total=scenario.total,
        shutdown_grace=scenario.grace,
    )
    ref: list[Lanes] = []
    observer = Observer(scenario, ref)
    sink = observer.sink if scenario.policy is ExhaustedPolicy.DEAD_LETTER else None
    lanes = Lanes(consumer, observer.handler, config, dead_letter=sink)
    ref.append(lanes)
    fed = 0

    async def feed() -> None:
        nonlocal fed
        for spec, message in zip(scenario.specs, messages, strict=True):
            if spec.gap:
                await asyncio.sleep(spec.gap * TICK)
            consumer.put(message)
            fed += 1
            observer._watch_buffer()

    await lanes.start()
    feeder = asyncio.create_task(feed())
    if scenario.stop_at is not None:
        await asyncio.sleep(scenario.stop_at)
    else:
        await feeder
        while True:  # until nothing can progress any more
            await lanes.wait_idle()
            await asyncio.sleep(0.01)
            stats = lanes.stats()
            busy = stats.in_flight_keys or stats.retrying_keys or stats.waiting_keys
            if not busy and (consumer.queued == 0 or stats.buffered >= scenario.total):
                break
    feeder.cancel()
    await asyncio.gather(feeder, return_exceptions=True)
    await lanes.stop()
    check(scenario, observer, consumer, lanes, messages[:fed])


def check(
    scenario: Scenario,
    observer: Observer,
    consumer: FakeConsumer,
    lanes: Lanes,
    fed: list[Message],
) -> None:
    assert observer.violations == []
    # Per key: finished messages are a prefix of the receive order.
    received: dict[str, list[int]] = defaultdict(list)
    for message in consumer.delivered:
        received[message.sticky_key].append(seq_of(message))
    for key, done in observer.finished.items():
        assert done == received[key][: len(done)], key
        # No attempt of a later message before the earlier one finished.
        starts = observer.starts[key]
        assert starts == sorted(starts), key
    # No loss: acked exactly once and only after success/dead-letter; the rest is unacked and back.
    acked = [seq_of(m) for m in consumer.acked]
    assert len(acked) == len(set(acked))
    assert set(acked) <= observer.succeeded | observer.dead
    back = {seq_of(m) for m in consumer._queue}
    assert set(acked).isdisjoint(back)
    assert set(acked) | back == {seq_of(m) for m in fed}
    assert consumer.nacked == []
    # Backpressure: the total cap held (ack-failed messages stay outstanding at the broker).
    assert observer.max_buffered <= scenario.total
    assert consumer.max_outstanding <= scenario.total + sum(s.ack_fails for s in scenario.specs)
    # Counters agree with what the handler and sink saw.
    stats = lanes.stats()
    assert stats.failed == observer.failed_attempts or scenario.stop_at is not None
    assert stats.completed == len(observer.succeeded)
    assert stats.dead_lettered == len(observer.dead)
    assert stats.acked == len(acked)
    if scenario.stop_at is None and scenario.policy is ExhaustedPolicy.DEAD_LETTER:
        # Nothing parks, nothing is cut short: every message finished.
        assert observer.succeeded | observer.dead == set(range(len(scenario.specs)))
        assert stats.abandoned == 0


def run_on_virtual_time(scenario: Scenario) -> None:
    loop = looptime.new_event_loop(start=0)
    try:
        loop.run_until_complete(asyncio.wait_for(run_scenario(scenario), timeout=100_000))
    finally:
        loop.close()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios)
def test_random_scenarios_keep_every_guarantee(scenario: Scenario) -> None:
    run_on_virtual_time(scenario)


@dataclass(frozen=True)
class StuckScenario:
    others: list[tuple[int, int]]  # (key 1..5, duration ticks)
    stuck_messages: int
    max_in_flight: int


stuck_scenarios = st.builds(
    StuckScenario,
    others=st.lists(st.tuples(st.integers(1, 5), st.integers(0, 4)), min_size=1, max_size=40),
    stuck_messages=st.integers(1, 10),
    max_in_flight=st.integers(2, 4),
)


async def run_stuck(scenario: StuckScenario) -> None:
    # Key k0 hangs forever (no timeout); its messages are spread among the others.
    gate = asyncio.Event()
    messages: list[Message] = []
    stuck_left = scenario.stuck_messages
    for i, (key, _) in enumerate(scenario.others):
        if stuck_left and i % 3 == 0:
            messages.append(make_message("k0", len(messages), entry=len(messages)))
            stuck_left -= 1
        messages.append(make_message(f"k{key}", len(messages), entry=len(messages)))
    for _ in range(stuck_left):
        messages.append(make_message("k0", len(messages), entry=len(messages)))
    durations = {}
    j = 0
    for message in messages:
        if message.key != "k0":
            durations[seq_of(message)] = scenario.others[j][1]
            j += 1

    async def handler(message: Message, context: HandlerContext) -> None:
        if context.key == "k0":
            await gate.wait()
        await asyncio.sleep(durations.get(seq_of(message), 0) * TICK)

    consumer = FakeConsumer(messages)
    config = LaneConfig(
        max_in_flight=scenario.max_in_flight,
        handler_timeout=None,
        max_buffered_per_key=2,
        max_buffered_total=scenario.stuck_messages + 1,
        on_exhausted=ExhaustedPolicy.PARK,
    )
    lanes = Lanes(consumer, handler, config)
    others = {seq_of(m) for m in messages if m.key != "k0"}
    async with lanes:
        await eventually(lambda: others <= {seq_of(m) for m in consumer.acked}, timeout=10_000)
        # Then every other key finished while k0 is still stuck on its first message
        stats = lanes.stats()
        assert stats.in_flight_keys == {"k0"}
        assert {seq_of(m) for m in consumer.acked} == others
        gate.set()
        await lanes.wait_idle()
    assert len(consumer.acked) == len(messages)


@settings(max_examples=60, deadline=None)
@given(stuck_scenarios)
def test_a_stuck_key_never_blocks_the_others(scenario: StuckScenario) -> None:
    loop = looptime.new_event_loop(start=0)
    try:
        loop.run_until_complete(run_stuck(scenario))
    finally:
        loop.close()
