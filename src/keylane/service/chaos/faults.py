"""The injectors: one coroutine per :class:`~keylane.service.chaos.schedule.FaultKind`.

Each takes the running :class:`~keylane.service.chaos.cluster.Cluster` and its
:class:`~keylane.service.chaos.schedule.FaultSpec`, does the fault, and returns a
:class:`~keylane.service.chaos.report.FaultRecord` saying when it hit, when it was over, whether
it took effect and what happened. Recovery times are computed afterwards, from the histories
(:mod:`~keylane.service.chaos.runner`).

Imports the harness's cluster, hooks, schedule and report; httpx for the gateway's fault switch.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import signal
import time
from collections.abc import Awaitable, Callable

import httpx

from keylane.journeys import Event, EventType, parse_event
from keylane.runtime import encode_event
from keylane.service.chaos.cluster import Cluster
from keylane.service.chaos.hooks import MARK, mark
from keylane.service.chaos.report import FaultRecord
from keylane.service.chaos.schedule import FaultKind, FaultSpec

__all__ = ["GATEWAY_PLAN", "HANG_SECONDS", "INJECTORS"]

#: The gateway's misbehaviour during its window (``POST /v1/faults``): 5xx and late answers
#: (after delivering: the "did it go out?" case), longer than the relay's 10 s client timeout.
GATEWAY_PLAN = {
    "error_rate": 0.3,
    "error_status": 503,
    "timeout_rate": 0.2,
    "timeout_mode": "after_delivery",
    "timeout_delay": 12.0,
    "seed": 11,
}
#: How long a slow subscriber's first attempt hangs (lanes cancel it at 30 s).
HANG_SECONDS = 40.0
#: How long the zombie's marked events sleep before (or after) deciding.
ZOMBIE_SLOW = 4.0


def _event(cluster: Cluster, key: str, label: str, chaos: dict[str, object]) -> Event:
    brand, _, subscriber = key.partition(":")
    properties: dict[str, object] = {"product_id": f"chaos-{label}"}
    if chaos:
        properties[MARK] = chaos
    return parse_event(
        {
            "event_id": f"chaos-{label}-{secrets.token_hex(6)}",
            "brand_id": brand,
            "subscriber_id": subscriber,
            "type": EventType.PRODUCT_VIEWED.value,
            "occurred_at": cluster.engine_now().isoformat(),
            "properties": properties,
        }
    )


async def gateway_faults(cluster: Cluster, spec: FaultSpec) -> FaultRecord:
    """The gateway answers 5xx and times out for ``spec.duration`` seconds."""
    url = cluster.gateway_url
    async with httpx.AsyncClient(timeout=10.0) as client:
        before = (await client.get(f"{url}/v1/stats")).json()["injected_failures"]
        started = time.monotonic()
        (await client.post(f"{url}/v1/faults", json=GATEWAY_PLAN)).raise_for_status()
        await asyncio.sleep(spec.duration)
        (await client.delete(f"{url}/v1/faults")).raise_for_status()
        ended = time.monotonic()
        after = (await client.get(f"{url}/v1/stats")).json()["injected_failures"]
    injected = {k: after[k] - before.get(k, 0) for k in after if after[k] > before.get(k, 0)}
    detail = f"{spec.duration:g} s of 30% 503 and 20% answers held 12 s after delivering: " + (
        ", ".join(f"{k} {n}" for k, n in sorted(injected.items())) or "no request came"
    )
    return FaultRecord(spec.kind, "gateway", started, ended, bool(injected), detail)


async def poison(cluster: Cluster, spec: FaultSpec) -> FaultRecord:
    """Three events that cannot be decided: not JSON, not an event, under another key."""
    keys = sorted({c.key for c in cluster.tail.completions[-200:]}) or ["acme:chaos-a"]
    victim = keys[0]
    other = _event(cluster, victim, "poison-key", {})
    items = [
        (b'{"event_id": "chaos-poison-json", "type": ', "chaos:poison-json"),
        (json.dumps({"event_id": "chaos-poison-event", "brand_id": "acme"}).encode(), victim),
        (encode_event(other), "acme:chaos-not-" + victim.partition(":")[2]),
    ]
    started = time.monotonic()
    ids = await cluster.publish_poison(items)
    detail = f"{len(ids)} published: cut JSON, an event without type or time, one under another key"
    return FaultRecord(spec.kind, "topic", started, started, len(ids) == len(items), detail)


async def kill9(cluster: Cluster, spec: FaultSpec) -> FaultRecord:
    """``kill -9`` a worker, then start it again after ``spec.duration`` seconds."""
    name = "w1" if "w1" in cluster.workers else next(iter(cluster.workers))
    pid = cluster.workers[name].child.pid
    started = time.monotonic()
    code = await cluster.kill_worker(name)
    await asyncio.sleep(spec.duration)
    run = await cluster.start_worker(name)
    ended = time.monotonic()
    detail = (
        f"pid {pid} killed (exit {code}); restarted as pid {run.child.pid} after "
        f"{spec.duration:g} s, ready {ended - started:.1f} s after the kill"
    )
    return FaultRecord(spec.kind, name, started, ended, code == -signal.SIGKILL, detail)


async def zombie(cluster: Cluster, spec: FaultSpec) -> FaultRecord:
    """SIGSTOP a worker until the broker dropped its consumer and its keys moved; SIGCONT."""
    name = "w2" if "w2" in cluster.workers else list(cluster.workers)[-1]
    run = cluster.workers[name]
    consumer = f"{name}-0"
    keepalive = await cluster.services.keepalive()
    owned = sorted(cluster.tail.keys_of(name, time.monotonic()))
    # Per pair of keys: slowed everywhere (the zombie and the new owner race), slowed on the
    # zombie only before its decision (the new owner decides first), after it (committed, not
    # acked when the pause begins)
    marks = [
        *[mark(slow=ZOMBIE_SLOW)] * 2,
        *[mark(slow=ZOMBIE_SLOW, only=name)] * 2,
        *[mark(slow=ZOMBIE_SLOW, only=name, after=True)] * 2,
    ]
    marked = [
        _event(cluster, key, "zombie", chaos) for key, chaos in zip(owned[:6], marks, strict=False)
    ]
    if marked:
        await cluster.publish(marked)
        await asyncio.sleep(1.0)  # delivered: the marked handlers are in their sleep
    started = time.monotonic()
    run.child.signal(signal.SIGSTOP)
    deadline = started + 3 * keepalive + 15
    dropped_at = None
    while time.monotonic() < deadline:
        names = await cluster.services.consumers(cluster.topic, cluster.subscription)
        if names is not None and consumer not in names:
            dropped_at = time.monotonic()
            break
        await asyncio.sleep(0.25)
    moved = 0
    if dropped_at is not None:  # let the keys' new owners decide some of the zombie's keys
        # Usually a second or two; up to 25 s on a loaded machine (the loop ends at the first)
        until = time.monotonic() + 25.0
        keys = set(owned)
        while time.monotonic() < until and moved == 0:
            await asyncio.sleep(0.25)
            cluster.tail.poll()
            moved = sum(
                1
                for c in cluster.tail.completions
                if c.time > started and c.key in keys and not c.consumer.startswith(f"{name}-")
            )
        await asyncio.sleep(1.0)
        cluster.tail.poll()
        moved = sum(
            1
            for c in cluster.tail.completions
            if c.time > started and c.key in keys and not c.consumer.startswith(f"{name}-")
        )
    run.child.signal(signal.SIGCONT)
    ended = time.monotonic()
    cluster.zombie_marks = tuple(e.event_id for e in marked)
    dropped = (
        f"the broker dropped {consumer} after {dropped_at - started:.1f} s (keepalive "
        f"{keepalive:g} s)"
        if dropped_at is not None
        else f"the broker never dropped {consumer} (keepalive {keepalive:g} s)"
    )
    detail = (
        f"stopped {ended - started:.1f} s; {dropped}; {moved} decisions of its {len(owned)} keys "
        f"elsewhere meanwhile; {len(marked)} marked events slowed {ZOMBIE_SLOW:g} s in its handlers"
    )
    effective = dropped_at is not None and moved > 0
    return FaultRecord(spec.kind, name, started, ended, effective, detail)


async def slow_subscriber(cluster: Cluster, spec: FaultSpec) -> FaultRecord:
    """An event whose handler hangs past the handler timeout on its first attempt."""
    recent = [c.key for c in cluster.tail.completions[-50:]]
    key = recent[-1] if recent else "acme:chaos-slow"
    event = _event(cluster, key, "hang", mark(hang=HANG_SECONDS))
    started = time.monotonic()
    (message_id,) = await cluster.publish([event])
    cluster.hang_event = (event.event_id, message_id, key)
    detail = f"one event of {key} hangs {HANG_SECONDS:g} s on its first attempt"
    return FaultRecord(spec.kind, key, started, started, True, detail)


async def scale_out(cluster: Cluster, spec: FaultSpec) -> FaultRecord:
    """A new worker joins the subscription under load."""
    name = f"w{1 + max(int(n[1:]) for n in cluster.names_ever)}"
    started = time.monotonic()
    run = await cluster.start_worker(name)
    ended = time.monotonic()
    detail = f"{name} (pid {run.child.pid}) ready {ended - started:.1f} s after its start"
    return FaultRecord(spec.kind, name, started, ended, True, detail)


async def broker_restart(cluster: Cluster, spec: FaultSpec) -> FaultRecord:
    """``services.py pulsar restart --keep-data`` under load."""
    before = await cluster.services.pid("pulsar")
    started = time.monotonic()
    seconds = await cluster.services.restart_broker()
    ended = time.monotonic()
    after = await cluster.services.pid("pulsar")
    detail = f"pid {before} -> {after}, healthy again after {seconds:.1f} s"
    return FaultRecord(spec.kind, "broker", started, ended, after not in (None, before), detail)


async def store_restart(cluster: Cluster, spec: FaultSpec) -> FaultRecord:
    """``services.py postgres restart`` under load."""
    before = await cluster.services.pid("postgres")
    started = time.monotonic()
    seconds = await cluster.services.restart_store()
    ended = time.monotonic()
    after = await cluster.services.pid("postgres")
    detail = f"pid {before} -> {after}, healthy again after {seconds:.1f} s"
    return FaultRecord(spec.kind, "postgres", started, ended, after not in (None, before), detail)


async def scale_in(cluster: Cluster, spec: FaultSpec) -> FaultRecord:
    """SIGTERM one worker under load: it drains and exits 0."""
    names = list(cluster.workers)
    name = "w3" if "w3" in names else names[-1]
    pid = cluster.workers[name].child.pid
    started = time.monotonic()
    code = await cluster.stop_worker(name)
    ended = time.monotonic()
    detail = f"pid {pid} drained and exited {code} after {ended - started:.1f} s"
    return FaultRecord(spec.kind, name, started, ended, code == 0, detail)


INJECTORS: dict[FaultKind, Callable[[Cluster, FaultSpec], Awaitable[FaultRecord]]] = {
    FaultKind.GATEWAY: gateway_faults,
    FaultKind.POISON: poison,
    FaultKind.KILL: kill9,
    FaultKind.ZOMBIE: zombie,
    FaultKind.SLOW_SUBSCRIBER: slow_subscriber,
    FaultKind.SCALE_OUT: scale_out,
    FaultKind.BROKER_RESTART: broker_restart,
    FaultKind.STORE_RESTART: store_restart,
    FaultKind.SCALE_IN: scale_in,
}
