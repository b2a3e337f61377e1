"""Randomised Key_Shared runs: consumers join and leave under load (spec 1.4.4-1.4.6).

Checked at every receive and at the end:

* a key is outstanding (delivered, not acknowledged, prefetched included) at no more than one
  connected consumer at a time -- the 4.x draining-hashes rule;
* each key's messages are acknowledged in publish order, each exactly once (nothing lost).
"""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict

import pytest

from keylane.brokers.base import Consumer, SubscriptionType
from keylane.brokers.memory import MemoryBroker, MemoryBrokerConfig
from keylane.errors import AlreadyClosedError
from tests.unit.memory.conftest import subscribe

pytestmark = pytest.mark.looptime

MESSAGES = 400
KEYS = [f"user-{i}" for i in range(12)]


def outstanding_keys(consumer: Consumer) -> set[str | None]:
    """Keys with entries pending at the broker for ``consumer``."""
    part = consumer._parts[0]  # type: ignore[attr-defined]
    log = part.sub.log
    return {log.get(entry_id).messages[0][1] for entry_id in part.pending}


class Run:
    """One randomised run: a group of consumers that changes while messages flow."""

    def __init__(self, broker: MemoryBroker, rng: random.Random) -> None:
        self.broker = broker
        self.rng = rng
        self.acked: dict[str, list[int]] = defaultdict(list)
        self.violations: list[str] = []
        self.live: dict[str, tuple[Consumer, asyncio.Task[None]]] = {}
        self.joined = 0
        self.all_acked = asyncio.Event()

    def check_exclusive(self) -> None:
        seen: dict[str | None, str] = {}
        for name, (consumer, _) in self.live.items():
            for key in outstanding_keys(consumer):
                if key in seen:
                    self.violations.append(f"{key} outstanding at {seen[key]} and {name}")
                seen[key] = name

    async def work(self, consumer: Consumer) -> None:
        try:
            while True:
                message = await consumer.receive()
                self.check_exclusive()
                await asyncio.sleep(self.rng.random() * 0.02)
                await consumer.acknowledge(message)
                assert message.key is not None
                self.acked[message.key].append(int(message.data))
                if sum(len(v) for v in self.acked.values()) >= MESSAGES:
                    self.all_acked.set()
        except AlreadyClosedError:
            return

    async def join(self) -> None:
        self.joined += 1
        name = f"c{self.joined}"
        consumer = await subscribe(
            self.broker,
            "t",
            SubscriptionType.KEY_SHARED,
            name,
            receiver_queue_size=self.rng.randint(1, 8),
        )
        self.live[name] = (consumer, asyncio.ensure_future(self.work(consumer)))

    async def leave(self, name: str | None = None) -> None:
        name = name or self.rng.choice(sorted(self.live))
        consumer, task = self.live.pop(name)
        await consumer.close()
        await task

    async def change_group(self) -> None:
        if len(self.live) < 4 and (len(self.live) == 1 or self.rng.random() < 0.6):
            await self.join()
        else:
            await self.leave()


@pytest.mark.parametrize("consistent", [True, False], ids=["ring", "ranges"])
@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_joins_and_leaves_keep_keys_exclusive_and_ordered(
    seed: int, consistent: bool
) -> None:
    rng = random.Random(seed)
    config = MemoryBrokerConfig(key_shared_use_consistent_hashing=consistent)
    async with MemoryBroker(config) as broker:
        run = Run(broker, rng)
        await run.join()
        producer = await broker.create_producer("t", batching=None)
        for seq in range(MESSAGES):
            await producer.send(str(seq).encode(), key=rng.choice(KEYS))
            if rng.random() < 0.3:
                await asyncio.sleep(rng.random() * 0.01)
            if rng.random() < 0.03:
                await run.change_group()
        await asyncio.wait_for(run.all_acked.wait(), 60)
        for name in sorted(run.live):
            await run.leave(name)

    assert run.violations == []
    assert run.joined > 3  # the run really rebalanced
    everything = sorted(seq for seqs in run.acked.values() for seq in seqs)
    assert everything == list(range(MESSAGES))
    for key, seqs in run.acked.items():
        assert seqs == sorted(seqs), f"{key} acknowledged out of order: {seqs}"
