"""Memory soak of the embedded broker behind a parked key (issue 7 item 4).

A steady Key_Shared workload: a KEY_BASED-batching producer at a fixed rate over a pool of keys,
consumers each running :class:`~keylane.lanes.Lanes` with ``ExhaustedPolicy.PARK``. With
``parked=True`` the first message has a key whose handler always fails, so lanes park it: that
one message stays unacknowledged for the whole run and holds the subscription's mark-delete
position. Every ``interval`` seconds the process's resident set size (RSS) and the throughput
are sampled. Memory behind the parked key must be O(unacknowledged), so RSS must stay flat.

:func:`run_soak` runs the workload once without and once with the parked key, each in a fresh
process (so one run's heap cannot hide or inflate the other's) and reports whether RSS stayed
within a tolerance of its median after the warm-up. Not a test: it prints measured numbers.

Imports the embedded broker, lanes and the broker contract; no other backend.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import multiprocessing
import os
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field

from keylane.brokers.base import Message, SubscriptionType
from keylane.brokers.memory import MemoryBroker
from keylane.errors import InvalidArgumentError, KeylaneError
from keylane.lanes import ExhaustedPolicy, HandlerContext, LaneConfig, Lanes

__all__ = [
    "PARKED_KEY",
    "SoakParams",
    "SoakResult",
    "SoakSample",
    "rss_bytes",
    "run_soak",
    "soak_once",
]

#: Key of the message whose handler always fails in the parked run.
PARKED_KEY = "soak-parked-key"
_TOPIC = "soak"
_PAYLOAD = b"x" * 64
#: Seconds between producer ticks.
_TICK = 0.01


def rss_bytes() -> int:
    """This process's resident set size, from ``/proc/self/statm``.

    Raises:
        KeylaneError: there is no ``/proc`` (the soak measures RSS on Linux only).
    """
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            resident_pages = int(statm.read().split()[1])
    except (OSError, IndexError, ValueError) as exc:
        raise KeylaneError(f"cannot read this process's RSS from /proc/self/statm: {exc}") from exc
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True, slots=True)
class SoakParams:
    """One soak run's workload.

    Attributes:
        seconds: how long the producer runs.
        rate: messages per second the producer aims at.
        keys: distinct keys the messages cycle through (the parked key comes on top).
        consumers: Key_Shared consumers, one ``Lanes`` each.
        interval: seconds between samples.
        warmup: seconds at the start that the verdict leaves out (queues and heaps fill up).
        max_lag: most messages sent and not yet handled; the producer waits beyond it, so a
            slow machine lowers the throughput instead of growing a backlog.
    """

    seconds: float = 30.0
    rate: int = 10_000
    keys: int = 2_000
    consumers: int = 2
    interval: float = 3.0
    warmup: float = 9.0
    max_lag: int = 20_000

    def __post_init__(self) -> None:
        for name in ("seconds", "interval"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise InvalidArgumentError(f"{name} must be a positive number, got {value!r}")
        if not 0 <= self.warmup < self.seconds:
            raise InvalidArgumentError(
                f"warmup must be in [0, seconds), got {self.warmup!r} with seconds={self.seconds}"
            )
        for name in ("rate", "keys", "consumers", "max_lag"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidArgumentError(f"{name} must be an int >= 1, got {value!r}")


@dataclass(frozen=True, slots=True)
class SoakSample:
    """One sample.

    Attributes:
        elapsed: seconds since the producer started.
        rss_mb: resident set size, MiB.
        handled: messages handled and acknowledged so far.
        rate: messages handled per second since the previous sample.
    """

    elapsed: float
    rss_mb: float
    handled: int
    rate: float


@dataclass(frozen=True, slots=True)
class SoakResult:
    """One run: its samples and what lanes reported at the end.

    Attributes:
        parked: whether the run had a parked key.
        params: the workload.
        samples: in time order.
        parked_keys: keys lanes reported parked at the end.
        unacked_at_end: messages received by lanes and not finished at the end.
    """

    parked: bool
    params: SoakParams
    samples: tuple[SoakSample, ...]
    parked_keys: tuple[str, ...] = ()
    unacked_at_end: int = 0

    @property
    def steady(self) -> tuple[SoakSample, ...]:
        """The samples after the warm-up."""
        return tuple(s for s in self.samples if s.elapsed > self.params.warmup)

    @property
    def rss_median(self) -> float:
        """Median RSS after the warm-up, MiB (0 without samples)."""
        steady = self.steady
        return statistics.median(s.rss_mb for s in steady) if steady else 0.0

    @property
    def rss_deviation(self) -> float:
        """Largest distance of a post-warm-up RSS sample from their median, as a fraction."""
        median = self.rss_median
        if not median:
            return float("inf")
        return max(abs(s.rss_mb - median) for s in self.steady) / median

    @property
    def rss_growth(self) -> float:
        """Last minus first post-warm-up RSS, MiB."""
        steady = self.steady
        return steady[-1].rss_mb - steady[0].rss_mb if steady else 0.0

    @property
    def throughput(self) -> float:
        """Mean messages per second after the warm-up."""
        steady = self.steady
        return statistics.fmean(s.rate for s in steady) if steady else 0.0

    def flat(self, tolerance: float) -> bool:
        """Whether every post-warm-up RSS sample is within ``tolerance`` of their median."""
        return len(self.steady) >= 2 and self.rss_deviation <= tolerance

    def as_dict(self) -> dict[str, object]:
        """A JSON-friendly view."""
        return {
            "parked": self.parked,
            "seconds": self.params.seconds,
            "rate_target": self.params.rate,
            "warmup": self.params.warmup,
            "samples": [
                {
                    "elapsed": round(s.elapsed, 2),
                    "rss_mb": round(s.rss_mb, 1),
                    "handled": s.handled,
                    "rate": round(s.rate, 1),
                }
                for s in self.samples
            ],
            "rss_median_mb": round(self.rss_median, 1),
            "rss_deviation": round(self.rss_deviation, 4),
            "rss_growth_mb": round(self.rss_growth, 1),
            "throughput": round(self.throughput, 1),
            "parked_keys": list(self.parked_keys),
            "unacked_at_end": self.unacked_at_end,
        }


@dataclass
class _Counts:
    handled: int = 0
    samples: list[SoakSample] = field(default_factory=list)


async def soak_once(
    params: SoakParams,
    *,
    parked: bool,
    on_sample: Callable[[SoakSample], None] | None = None,
) -> SoakResult:
    """Run the workload once in this process and event loop (see the module docstring)."""
    counts = _Counts()

    async def handle(message: Message, context: HandlerContext) -> None:
        if context.key == PARKED_KEY:
            raise RuntimeError("this key is parked on purpose")
        counts.handled += 1

    config = LaneConfig(
        max_in_flight=256,
        handler_timeout=None,
        max_attempts=1,
        on_exhausted=ExhaustedPolicy.PARK,
        max_buffered_total=params.max_lag,
    )
    loop = asyncio.get_running_loop()
    async with MemoryBroker() as broker:
        lanes = []
        for i in range(params.consumers):
            consumer = await broker.subscribe(
                _TOPIC,
                "soak",
                subscription_type=SubscriptionType.KEY_SHARED,
                consumer_name=f"soak-{i}",
            )
            lanes.append(Lanes(consumer, handle, config))
            await lanes[-1].start()
        producer = await broker.create_producer(_TOPIC)  # KEY_BASED batching
        if parked:
            await producer.send(b"parked", key=PARKED_KEY)
        keys = [f"user-{i}" for i in range(params.keys)]
        start = loop.time()
        sent = 0
        last_at, last_handled = start, 0
        next_sample = start + params.interval
        while (now := loop.time()) - start < params.seconds:
            due = min(
                int((now - start) * params.rate) - sent, params.max_lag - (sent - counts.handled)
            )
            if due > 0:
                await asyncio.gather(
                    *(producer.send(_PAYLOAD, key=keys[(sent + i) % len(keys)]) for i in range(due))
                )
                sent += due
            now = loop.time()
            if now >= next_sample:
                handled = counts.handled
                sample = SoakSample(
                    elapsed=now - start,
                    rss_mb=rss_bytes() / 2**20,
                    handled=handled,
                    rate=(handled - last_handled) / (now - last_at),
                )
                counts.samples.append(sample)
                if on_sample is not None:
                    on_sample(sample)
                last_at, last_handled = now, handled
                next_sample += params.interval
            await asyncio.sleep(_TICK)
        parked_keys: set[str] = set()
        unacked = 0
        for lane in lanes:
            stats = lane.stats()
            parked_keys.update(stats.parked_keys)
            unacked += stats.buffered
            await lane.stop(grace=1.0)
        await producer.close()
    return SoakResult(
        parked=parked,
        params=params,
        samples=tuple(counts.samples),
        parked_keys=tuple(sorted(parked_keys)),
        unacked_at_end=unacked,
    )


def _child(params: SoakParams, parked: bool) -> SoakResult:
    """One run in a fresh process; prints each sample as it is taken."""
    label = "with a parked key" if parked else "no parked key"

    def show(sample: SoakSample) -> None:
        print(
            f"  [{label:>17}] t={sample.elapsed:6.1f}s  RSS {sample.rss_mb:7.1f} MiB  "
            f"handled {sample.handled:>9,}  {sample.rate:>9,.0f} msg/s",
            flush=True,
        )

    return asyncio.run(soak_once(params, parked=parked, on_sample=show))


def run_soak(params: SoakParams, *, quiet: bool = False) -> list[SoakResult]:
    """Run the soak without, then with, a parked key, each in a fresh (spawned) process.

    Args:
        params: the workload of each run.
        quiet: do not print the samples while running.

    Raises:
        KeylaneError: the machine has no ``/proc`` to read RSS from.
    """
    rss_bytes()  # fail before spawning anything
    context = multiprocessing.get_context("spawn")
    results = []
    for parked in (False, True):
        with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
            target = _child_quiet if quiet else _child
            results.append(pool.submit(target, params, parked).result())
    return results


def _child_quiet(params: SoakParams, parked: bool) -> SoakResult:
    """:func:`_child` without printing."""
    return asyncio.run(soak_once(params, parked=parked))
