"""The :class:`OutboxRelay`: the only sender. Claims due sends, re-checks them, calls the provider.

Loop: claim due outbox rows with a lease (``claim_sends``: at most one in flight per subscriber,
``FOR UPDATE SKIP LOCKED`` on PostgreSQL), and for each one:

1. load the subscriber's current state and ask the domain's ``recheck`` (opt-out, cancellation,
   consent, staleness, quiet hours *now*) and the dispatch-time caps (:mod:`.dispatch`);
2. SEND: call the provider with the intent's idempotency key and record the outcome: SENT,
   RETRY (a 5xx or timeout: backoff, same key), FAILED_PERMANENT or UNKNOWN;
3. DEFER: put the row back with a later ``not_before``; SKIP: close it with the reason.

A relay that crashes after the provider call and before recording the outcome leaves the row
DISPATCHING; once the lease expires another claim retries it under the same key, and a provider
that honours keys (the embedded gateway, the webhook contract) delivers it once.

Imports the state, providers and journeys contracts; no backend.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import msgspec

from keylane._validate import check_int, check_seconds
from keylane.clock import Clock
from keylane.journeys import (
    JourneySet,
    MessageClass,
    ReasonCode,
    SendIntent,
    VerdictAction,
    decode_state,
    recheck,
)
from keylane.providers import Outcome, Provider
from keylane.runtime.codec import TRACE_CONTEXT, decode_intent, delivery_of, trace_of
from keylane.runtime.dispatch import caps_defer_until
from keylane.state import ClaimedSend, SendStatus, StateStore, StoreUnavailableError

__all__ = ["DeliveredHook", "OutboxRelay", "RelayConfig", "RelayStats"]

#: ``(claim, sent_at, outcome word)`` after each recorded outcome (``sent_at`` for sends only).
DeliveredHook = Callable[[ClaimedSend, "datetime | None", str], None]

logger = logging.getLogger("keylane.runtime.relay")


@dataclass(frozen=True, slots=True)
class RelayConfig:
    """Knobs of an :class:`OutboxRelay`.

    Args:
        batch: rows claimed per round.
        concurrency: provider calls in flight at once.
        lease: seconds of the engine's clock a claim lasts before another relay may retry it;
            longer than the slowest provider call (scale it with a scaled clock).
        poll_interval: real seconds between claims while nothing is due (a commit that
            inserts a send wakes the relay at once through :meth:`OutboxRelay.poke`).
        retry_backoff: engine seconds before the first retry of a retryable failure; doubled
            per attempt up to ``retry_backoff_max``.
        retry_backoff_max: the longest retry delay, engine seconds.
    """

    batch: int = 128
    concurrency: int = 32
    lease: float = 30.0
    poll_interval: float = 0.05
    retry_backoff: float = 1.0
    retry_backoff_max: float = 300.0

    def __post_init__(self) -> None:
        check_int("batch", self.batch, 1)
        check_int("concurrency", self.concurrency, 1)
        for name in ("lease", "poll_interval", "retry_backoff", "retry_backoff_max"):
            check_seconds(name, getattr(self, name), allow_zero=False)


@dataclass(frozen=True, slots=True)
class RelayStats:
    """Counters of an :class:`OutboxRelay` since it started.

    Attributes:
        claimed: rows claimed.
        outcomes: finished rows by final status word (``sent``, ``retry``, ``failed_permanent``,
            ``unknown``, ``skipped_<reason>``, ``deferred_<reason>``).
        fenced: outcomes not recorded because the claim had expired and was taken again.
        in_flight: provider calls running now.
        provider_seconds: total seconds spent in provider calls (real time).
    """

    claimed: int
    outcomes: dict[str, int]
    fenced: int
    in_flight: int
    provider_seconds: float


class OutboxRelay:
    """Dispatches the outbox of ``store`` through ``provider``.

    Args:
        store: an open state store.
        provider: where deliveries go.
        journeys: the journeys (for the dispatch-time re-check).
        clock: the engine's clock (``sent_at``, quiet hours, staleness, leases).
        config: the knobs.
        owner: this relay's name in the outbox (unique per relay; random by default).
    """

    def __init__(
        self,
        store: StateStore,
        provider: Provider,
        journeys: JourneySet,
        clock: Clock,
        config: RelayConfig | None = None,
        *,
        owner: str | None = None,
    ) -> None:
        self._store = store
        self._provider = provider
        self._journeys = journeys
        self._clock = clock
        self._config = RelayConfig() if config is None else config
        self._owner = owner or f"relay-{secrets.token_hex(4)}"
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._running = False
        self._inflight: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(self._config.concurrency)
        self._claimed = 0
        self._fenced = 0
        self._outcomes: Counter[str] = Counter()
        self._provider_seconds = 0.0
        self.on_delivered: list[DeliveredHook] = []
        """Called with (claim, sent_at, outcome word) after each recorded outcome."""

    @property
    def owner(self) -> str:
        """This relay's owner name in the outbox."""
        return self._owner

    def poke(self) -> None:
        """Claim again now (a commit just inserted a send)."""
        self._wake.set()

    async def start(self) -> None:
        """Start the dispatch loop in a background task."""
        if self._task is not None:
            raise RuntimeError("OutboxRelay already started")
        self._running = True
        self._task = asyncio.get_running_loop().create_task(self._loop(), name=self._owner)

    async def stop(self, grace: float = 10.0) -> None:
        """Stop claiming; let provider calls in flight finish for ``grace`` real seconds.

        Calls still running then are cancelled: their rows stay DISPATCHING and are retried
        under the same key once the lease expires.
        """
        self._running = False
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._inflight:
            _, pending = await asyncio.wait(self._inflight, timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1.0)

    async def drain(self, timeout: float) -> None:
        """Wait until nothing is due or in flight (for tests and the end of a run)."""
        async with asyncio.timeout(timeout):
            while True:
                stats = await self._store.outbox_stats(self._now())
                if stats.oldest_pending_age == 0 and stats.dispatching == 0 and not self._inflight:
                    return
                self.poke()
                await asyncio.sleep(self._config.poll_interval)

    def stats(self) -> RelayStats:
        """A snapshot of the counters."""
        return RelayStats(
            claimed=self._claimed,
            outcomes=dict(self._outcomes),
            fenced=self._fenced,
            in_flight=len(self._inflight),
            provider_seconds=self._provider_seconds,
        )

    def _now(self) -> float:
        return self._clock.now().timestamp()

    async def _loop(self) -> None:
        config = self._config
        while self._running:
            self._wake.clear()
            try:
                claims = await self._store.claim_sends(
                    now=self._now(),
                    limit=min(config.batch, config.concurrency - len(self._inflight) or 1),
                    lease=config.lease,
                    owner=self._owner,
                )
            except StoreUnavailableError as exc:
                logger.warning("relay: store unavailable (%s); retrying", exc)
                await asyncio.sleep(min(1.0, config.poll_interval * 20))
                continue
            except Exception:
                logger.exception("relay: claim failed")
                await asyncio.sleep(config.poll_interval)
                continue
            self._claimed += len(claims)
            for claim in claims:
                await self._slots.acquire()
                task = asyncio.get_running_loop().create_task(self._dispatch(claim))
                self._inflight.add(task)
                task.add_done_callback(self._done)
            if not claims:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(config.poll_interval):
                        await self._wake.wait()

    def _done(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        self._slots.release()
        if not task.cancelled() and task.exception() is not None:
            logger.error("relay: dispatch crashed", exc_info=task.exception())
        self._wake.set()  # a key may have its next row due

    async def _dispatch(self, claim: ClaimedSend) -> None:
        try:
            intent = decode_intent(claim.payload)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            await self._finish(claim, SendStatus.FAILED_PERMANENT, f"unreadable payload: {exc}")
            return
        # This task's own context: a tracing provider continues the decision's trace.
        TRACE_CONTEXT.set(trace_of(claim.payload))
        # The attempt's instant, read BEFORE the state is loaded: the state then reflects every
        # commit that finished before it, so a STOP committed earlier is seen, and one committed
        # later is later than this send's sent_at. The re-checks and sent_at use this one value.
        now = self._clock.now()
        snapshot = await self._store.load(claim.key)
        if snapshot.state is None:
            await self._finish(claim, SendStatus.SKIPPED, "no_state")
            return
        state = decode_state(snapshot.state)
        verdict = recheck(state, intent, now, self._journeys)
        if verdict.action is VerdictAction.SEND and intent.message_class is MessageClass.MARKETING:
            ledger = await self._store.sends_for(claim.key)
            later = caps_defer_until(state, intent, ledger, now, self._journeys)
            if later is not None:
                if intent.expires_at is not None and later > intent.expires_at:
                    await self._finish(claim, SendStatus.SKIPPED, ReasonCode.SKIPPED_FREQUENCY_CAP)
                else:
                    await self._finish(
                        claim, SendStatus.DEFERRED, "deferred_frequency_cap", not_before=later
                    )
                return
        if verdict.action is VerdictAction.DEFER:
            assert verdict.until is not None
            reason = verdict.reason.value if verdict.reason else "deferred"
            await self._finish(claim, SendStatus.DEFERRED, reason, not_before=verdict.until)
            return
        if verdict.action is VerdictAction.SKIP:
            reason = verdict.reason.value if verdict.reason else "skipped"
            await self._finish(claim, SendStatus.SKIPPED, reason)
            return
        await self._send(claim, intent, now)

    async def _send(self, claim: ClaimedSend, intent: SendIntent, sent_at: datetime) -> None:
        loop = asyncio.get_running_loop()
        began = loop.time()
        receipt = await self._provider.send(delivery_of(intent, sent_at))
        self._provider_seconds += loop.time() - began
        if receipt.outcome is Outcome.SENT:
            await self._finish(claim, SendStatus.SENT, receipt.detail, sent_at=sent_at)
        elif receipt.outcome is Outcome.FAILED_RETRYABLE:
            config = self._config
            delay = min(
                config.retry_backoff * 2 ** min(claim.attempt - 1, 30), config.retry_backoff_max
            )
            retry_at = max(self._now(), sent_at.timestamp()) + delay
            await self._finish(claim, SendStatus.RETRY, receipt.detail, retry_at=retry_at)
        elif receipt.outcome is Outcome.FAILED_PERMANENT:
            logger.warning(
                "relay: %s failed permanently: %s", claim.idempotency_key, receipt.detail
            )
            await self._finish(claim, SendStatus.FAILED_PERMANENT, receipt.detail)
        else:
            await self._finish(claim, SendStatus.UNKNOWN, receipt.detail, sent_at=sent_at)

    async def _finish(
        self,
        claim: ClaimedSend,
        status: SendStatus,
        detail: str,
        *,
        retry_at: float | None = None,
        not_before: datetime | None = None,
        sent_at: datetime | None = None,
    ) -> None:
        now = self._now()
        if not_before is not None:
            # A deferral is never before now (a window that is open again must not loop).
            later: float | None = max(not_before.astimezone(UTC).timestamp(), now)
        else:
            later = None
        for attempt in range(1, 6):
            try:
                applied = await self._store.finish_send(
                    claim.idempotency_key,
                    owner=claim.owner,
                    attempt=claim.attempt,
                    status=status,
                    now=now,
                    detail=str(detail) or status.value.lower(),
                    retry_at=retry_at,
                    not_before=later,
                )
                break
            except StoreUnavailableError:
                await asyncio.sleep(0.05 * 2**attempt)
        else:
            logger.error("relay: could not record %s for %s", status, claim.idempotency_key)
            return
        word = _word(status, detail)
        if not applied:
            self._fenced += 1
            return
        self._outcomes[word] += 1
        for hook in self.on_delivered:
            try:
                hook(claim, sent_at, word)
            except Exception:
                logger.exception("relay: an on_delivered hook raised")


def _word(status: SendStatus, detail: str) -> str:
    if status is SendStatus.SKIPPED:
        return f"skipped_{detail}" if not str(detail).startswith("skipped") else str(detail)
    if status is SendStatus.DEFERRED:
        return str(detail) if str(detail).startswith("deferred") else f"deferred_{detail}"
    return status.value.lower()
