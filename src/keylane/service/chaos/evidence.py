"""What the harness reads once the run is over: histories, dead letters, the gateway's log, the
outbox, and from them the consent changes and each fault's recovery time.

Imports the broker factory, the state store factory, the checker, the workload's phone table and
the harness's values; no CLI.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from keylane.brokers import InitialPosition, SubscriptionType, connect
from keylane.check import OK, Attempt, History, read_history
from keylane.journeys import Event, JourneySet
from keylane.lanes import DEAD_LETTER_ERROR
from keylane.lanes.deadletter import ORIGIN_MESSAGE_ID
from keylane.service.chaos.cluster import Cluster
from keylane.service.chaos.consent import replay_consent
from keylane.service.chaos.report import FaultRecord
from keylane.service.chaos.schedule import FaultKind
from keylane.service.chaos.timeline import (
    Completion,
    GatewayEvent,
    completion_gap,
    gateway_recovery,
    owned_keys,
)
from keylane.service.chaos.verify import Evidence, unbacked_dedupes
from keylane.state import SendStatus, open_store
from keylane.workload import subscriber_phones

__all__ = ["gather", "read_dead_letters", "recoveries"]

#: Seconds after a fault ended within which its affected completions must resume.
HORIZON = 45.0


async def read_dead_letters(cluster: Cluster, idle: float = 3.0) -> dict[str, str]:
    """The dead-letter topic's messages: origin message id -> ``KEYLANE_DLQ_ERROR``."""
    found: dict[str, str] = {}
    options = {"admin_url": cluster.services.admin_url, "log_file": str(cluster.dir / "pulsar.log")}
    async with connect(cluster.services.broker_url, **options) as broker:
        consumer = await broker.subscribe(
            cluster.dlq_topic,
            "chaos-verify",
            subscription_type=SubscriptionType.EXCLUSIVE,
            initial_position=InitialPosition.EARLIEST,
        )
        try:
            while True:
                try:
                    message = await consumer.receive(timeout=idle)
                except TimeoutError:
                    break
                origin = message.properties.get(ORIGIN_MESSAGE_ID, str(message.message_id))
                found[origin] = message.properties.get(DEAD_LETTER_ERROR, "")
                await consumer.acknowledge(message)
        finally:
            await consumer.close()
    return found


def read_gateway_log(path: Path) -> list[dict[str, object]]:
    """Every record of the gateway's JSON Lines log (a cut last line skipped)."""
    records = []
    with contextlib.suppress(FileNotFoundError), open(path, encoding="utf-8") as file:
        for line in file:
            with contextlib.suppress(ValueError):
                records.append(json.loads(line))
    return records


async def sent_keys(store_url: str, keys: Iterable[str]) -> frozenset[str]:
    """Idempotency keys of the outbox rows marked SENT, over ``keys``."""
    sent: set[str] = set()
    async with open_store(store_url) as store:
        gate = asyncio.Semaphore(16)

        async def one(key: str) -> None:
            async with gate:
                for row in await store.sends_for(key):
                    if row.status is SendStatus.SENT:
                        sent.add(row.idempotency_key)

        await asyncio.gather(*(one(key) for key in keys))
    return frozenset(sent)


async def marked(
    store_url: str, schema: str, pairs: Sequence[tuple[str, str]]
) -> set[tuple[str, str]]:
    """Which ``(key, event_id)`` the store's dedupe marks hold (asyncpg, read-only)."""
    if not pairs:
        return set()
    import asyncpg

    connection = await asyncpg.connect(store_url.partition("?")[0])
    try:
        rows = await connection.fetch(
            f'SELECT key, event_id FROM "{schema}".keylane_dedupe '
            "WHERE (key, event_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))",
            [k for k, _ in pairs],
            [e for _, e in pairs],
        )
    finally:
        await connection.close()
    return {(str(r["key"]), str(r["event_id"])) for r in rows}


def _in_doubt_commits(dedupes: Sequence[Attempt], confirmed: set[tuple[str, str]]) -> list[Attempt]:
    """Commits the histories lack but the store confirms, dated at the dedupe that found them."""
    return [
        replace(a, outcome=OK, version=a.read_version, committed=a.loaded, loaded=a.loaded)
        for a in dedupes
        if (a.key, a.event_id or "") in confirmed and a.read_version
    ]


def history_paths(cluster: Cluster) -> list[Path]:
    """Every history file of the run: publishers', the harness's, every worker's."""
    paths = [*cluster.publication_paths, cluster.harness_path, *cluster.tail.paths]
    return [p for p in paths if p.exists()]


async def gather(
    cluster: Cluster,
    events: Sequence[Event],
    journeys: JourneySet,
    gateway_duplicates: int,
) -> tuple[Evidence, list[dict[str, object]]]:
    """Everything :func:`~keylane.service.chaos.verify.verify` needs, and the gateway's log."""
    history = await asyncio.to_thread(read_history, history_paths(cluster), skip_malformed=True)
    dead = await read_dead_letters(cluster)
    log = await asyncio.to_thread(read_gateway_log, cluster.dir / "gateway.jsonl")
    deliveries = [r for r in log if r.get("type") == "delivery"]
    received = [
        {**r, "sent_at": cluster.engine_at_wall(_wall(r["received_at"])).isoformat()}
        for r in deliveries
    ]
    known = {e.event_id: e for e in events} | cluster.harness_events
    keys = {e.key for e in known.values()}
    sent = await sent_keys(cluster.store_url, keys)
    dedupes = unbacked_dedupes(history.attempts)
    confirmed = await marked(
        cluster.services.store_url, cluster.schema, [(a.key, a.event_id or "") for a in dedupes]
    )
    commits = [*history.attempts, *_in_doubt_commits(dedupes, confirmed)]
    replay = await asyncio.to_thread(replay_consent, commits, known, journeys, cluster.engine_at)
    evidence = Evidence(
        history=history,
        poison=tuple(cluster.poison),
        dead_letters=dead,
        deliveries=deliveries,
        gateway_duplicates=gateway_duplicates,
        sent_keys=sent,
        consent=replay,
        journeys=journeys,
        phones=subscriber_phones(events),
        in_doubt=frozenset(confirmed),
        received=received,
    )
    return evidence, log


def completions_of(history: History) -> list[Completion]:
    """Every commit of the history, by commit time."""
    found = [
        Completion(a.committed if a.committed is not None else a.end, a.key, a.consumer)
        for a in history.attempts
        if a.outcome == "ok"
    ]
    found.sort(key=lambda c: c.time)
    return found


def _wall(iso: object) -> float:
    return datetime.fromisoformat(str(iso)).timestamp()


def _gateway_events(log: Sequence[Mapping[str, object]], wall_offset: float) -> list[GatewayEvent]:
    events = []
    for record in log:
        kind = record.get("type")
        if kind not in ("fault", "delivery", "replay") or not record.get("idempotency_key"):
            continue
        wall = datetime.fromisoformat(str(record["received_at"])).timestamp()
        events.append(
            GatewayEvent(wall - wall_offset, str(record["idempotency_key"]), kind == "fault")
        )
    return events


def zombie_summary(history: History, fault: FaultRecord, marks: Sequence[str]) -> str:
    """What the zombie's handlers did across its pause, from the histories."""
    prefix = f"{fault.target}-"
    across = Counter(
        a.outcome
        for a in history.attempts
        if a.consumer.startswith(prefix) and a.start < fault.started and a.end > fault.ended
    )
    wanted = set(marks)
    marked = Counter(
        ("zombie" if a.consumer.startswith(prefix) else "others", a.outcome)
        for a in history.attempts
        if a.event_id in wanted
    )
    shown = ", ".join(f"{who} {outcome} {n}" for (who, outcome), n in sorted(marked.items()))
    spanning = ", ".join(f"{o} {n}" for o, n in sorted(across.items())) or "none"
    return f"its attempts across the pause: {spanning}; marked events: {shown or 'none seen'}"


def recoveries(
    faults: Sequence[FaultRecord],
    history: History,
    log: Sequence[Mapping[str, object]],
    hang: tuple[str, str, str] | None,
    marks: Sequence[str] = (),
) -> list[FaultRecord]:
    """Each fault with its recovery time (see ``docs/chaos.md``, "Recovery times")."""
    completions = completions_of(history)
    wall_offset = time.time() - time.monotonic()
    out = []
    for i, f in enumerate(faults):
        horizon = f.ended + HORIZON
        if i + 1 < len(faults):  # a gap of the next fault is not this one's
            horizon = max(min(horizon, faults[i + 1].started), f.ended + 1.0)
        if f.kind in (FaultKind.KILL, FaultKind.ZOMBIE, FaultKind.SCALE_IN):
            keys = owned_keys(completions, f.target, f.started)
            gap = completion_gap(completions, f.started, horizon, keys=keys)
            what = f"longest gap in the commits of {f.target}'s {len(keys)} keys"
            if f.kind is FaultKind.ZOMBIE:
                f = replace(f, detail=f"{f.detail}; {zombie_summary(history, f, marks)}")
            out.append(f.with_recovery(None if gap is None else gap.seconds, what))
        elif f.kind is FaultKind.SLOW_SUBSCRIBER and hang is not None:
            event_id, _, key = hang
            done = [
                a.committed or a.end
                for a in history.attempts
                if a.event_id == event_id and a.outcome == "ok"
            ]
            seconds = min(done) - f.started if done else None
            out.append(f.with_recovery(seconds, f"publish to commit of the hung event of {key}"))
        elif f.kind is FaultKind.GATEWAY:
            seconds = gateway_recovery(_gateway_events(log, wall_offset), f.started, f.ended)
            what = "after the window, until every send it failed was delivered or replayed"
            out.append(f.with_recovery(seconds, what))
        else:
            gap = completion_gap(completions, f.started, horizon)
            out.append(
                f.with_recovery(None if gap is None else gap.seconds, "longest gap in all commits")
            )
    return out
