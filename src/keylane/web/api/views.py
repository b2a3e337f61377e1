"""The admin views: one subscriber, one key, and the dashboard's overview (JSON).

- ``GET /v1/subscribers/{brand}/{id}``: the stored state (decoded), consent and suppression,
  armed timers, this process's recent decisions with their reasons and relay outcomes, the
  delivery ledger (every outbox row), and a ``timeline`` of all of them in time order.
- ``GET /v1/keys/{key}``: who holds the key in this process and since when, what is in flight
  and queued, its hash slot and the consumer whose range holds it (read from the broker).
- ``GET /v1/overview``: what the dashboard shows (see :func:`overview`); ``GET /v1/consumers``,
  ``GET /v1/lanes`` and ``GET /v1/decisions`` are parts of it.

Recipients are masked everywhere. Imports the API's helpers, the observability and the
runtime's contracts; starlette.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from keylane.errors import InvalidArgumentError, KeylaneError
from keylane.hashing import partition_for_key
from keylane.journeys import StateError, decode_state, subscriber_key
from keylane.observability.decisions import DecisionEntry
from keylane.observability.hub import Attached, Observability
from keylane.observability.ownership import read_subscription
from keylane.providers.base import mask_recipient
from keylane.runtime.codec import decode_intent
from keylane.state import SendRecord, Snapshot, Timer
from keylane.web.api.activity import recent_deliveries
from keylane.web.api.http import Refused, authorize, error, json_response
from keylane.web.api.state import ApiState

__all__ = [
    "attached_of",
    "get_consumers",
    "get_key",
    "get_lanes",
    "get_overview",
    "get_subscriber",
    "iso",
    "ledger_row",
    "overview",
    "state_view",
]

#: Keys listed per category in the lanes view (the busiest first).
TOP_KEYS = 100


def iso(epoch: float | None) -> str | None:
    """Epoch seconds as ISO 8601 UTC (``...Z``); None stays None."""
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


def attached_of(request: Request) -> tuple[ApiState, Attached]:
    """The state and the attached worker of an authorized request.

    Raises:
        Refused: 401 (the token), 503 no worker runs in this process.
    """
    state: ApiState = request.app.state.api
    authorize(request, state)
    attached = state.observability.attached
    if attached is None:
        raise Refused(error(503, "no_worker", "", "no worker runs in this process"))
    return state, attached


def ledger_row(row: SendRecord) -> dict[str, Any]:
    """One outbox row as JSON: status, attempts, times, and its intent (recipient masked)."""
    out: dict[str, Any] = {
        "idempotency_key": row.idempotency_key,
        "channel": row.channel,
        "status": row.status.value.lower(),
        "attempts": row.attempts,
        "created_at": iso(row.created_at),
        "not_before": iso(row.not_before),
        "expires_at": iso(row.expires_at),
        "dispatched_at": iso(row.dispatched_at),
        "finished_at": iso(row.finished_at),
        "detail": row.detail,
    }
    try:
        intent = decode_intent(row.payload)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return out
    out.update(
        journey=intent.journey,
        step=intent.step,
        message_class=intent.message_class.value,
        to=mask_recipient(intent.to),
    )
    return out


def state_view(raw: bytes | None) -> tuple[dict[str, Any] | None, str | None]:
    """A stored state decoded for display (recipients masked), or why it cannot be."""
    if raw is None:
        return None, None
    try:
        state = decode_state(raw)
    except StateError as exc:
        return None, str(exc)
    data = msgspec.to_builtins(state)
    fields = msgspec.structs.fields(type(state))
    view = {f.name: value for f, value in zip(fields, data, strict=False)}
    for secret in ("seen", "seen_at"):
        view.pop(secret, None)
    if state.phone:
        view["phone"] = mask_recipient(state.phone)
    if state.email:
        view["email"] = mask_recipient(state.email)
    return view, None


async def read_subscriber(
    attached: Attached, key: str
) -> tuple[Snapshot, list[SendRecord], list[Timer]]:
    """A subscriber's stored state, delivery ledger and armed timers, read from the store.

    Raises:
        Refused: 422 for a key the store refuses, 503 (with ``Retry-After``) when the store
            cannot answer.
    """
    store = attached.store
    try:
        snapshot = await store.load(key)
        ledger = await store.sends_for(key)
        timers = await store.timers_for(key)
    except InvalidArgumentError as exc:
        raise Refused(error(422, "invalid_key", "key", str(exc))) from None
    except KeylaneError as exc:
        raise Refused(
            error(503, "store_unavailable", "", str(exc), headers={"Retry-After": "1"})
        ) from None
    return snapshot, ledger, timers


async def get_subscriber(request: Request) -> Response:
    """``GET /v1/subscribers/{brand}/{id}``."""
    try:
        state, attached = attached_of(request)
    except Refused as refused:
        return refused.response
    brand = request.path_params["brand"]
    subscriber = request.path_params["subscriber"]
    key = subscriber_key(brand, subscriber)
    try:
        snapshot, ledger, timers = await read_subscriber(attached, key)
    except Refused as refused:
        return refused.response
    view, problem = state_view(snapshot.state)
    log = state.observability.decisions
    decisions = [d.to_dict() for d in log.decisions_of(key)]
    deliveries = [d.to_dict() for d in log.deliveries_of(key)]
    timeline = sorted([*decisions, *deliveries], key=lambda e: float(e["wall_time"]))
    return json_response(
        200,
        {
            "key": key,
            "brand_id": brand,
            "subscriber_id": subscriber,
            "exists": snapshot.version > 0,
            "version": snapshot.version,
            "state": view,
            "state_error": problem,
            "consent": None
            if view is None
            else {
                "sms": view.get("sms_consent"),
                "email": view.get("email_consent"),
                "sms_ever": view.get("sms_consent_ever"),
            },
            "suppression": None if view is None else {"opted_out": view.get("opted_out")},
            "timers": [{"timer_id": t.timer_id, "due_at": iso(t.due_at)} for t in timers],
            "decisions": decisions,
            "deliveries": deliveries,
            "decisions_scope": "this process only: the last "
            f"{log.per_key} attempts it ran for this subscriber",
            "ledger": [ledger_row(row) for row in ledger],
            "timeline": timeline,
        },
    )


def _holder(attached: Attached, key: str) -> dict[str, Any]:
    group = attached.worker.stats().lanes
    now = time.time()
    for name, lanes in group.by_consumer.items():
        depth = lanes.queue_depths.get(key)
        if depth is None and key not in lanes.parked_keys:
            continue
        age = lanes.in_flight_age.get(key)
        if key in lanes.in_flight_keys:
            status = "running"
        elif key in lanes.retrying_keys:
            status = "retrying"
        elif key in lanes.parked_keys:
            status = "parked"
        elif key in lanes.waiting_keys:
            status = "waiting_for_a_slot"
        else:
            status = "queued"
        return {
            "consumer": name,
            "status": status,
            "in_flight": key in lanes.in_flight_keys,
            "in_flight_seconds": age,
            "since": iso(now - age) if age is not None else None,
            "queued": depth or 0,
            "stalled": key in lanes.stalled_keys,
            "parked_error": lanes.parked_keys.get(key),
        }
    return {"consumer": None, "status": "idle", "in_flight": False, "queued": 0}


async def get_key(request: Request) -> Response:
    """``GET /v1/keys/{key}``."""
    try:
        state, attached = attached_of(request)
    except Refused as refused:
        return refused.response
    key = request.path_params["key"]
    if not key or len(key) > 512:
        return error(422, "invalid_key", "key", "a key is 1 to 512 characters")
    config = attached.worker.config
    topic, partition = config.topic, None
    owner: dict[str, Any] = {"consumer": None}
    try:
        partitions = await attached.broker.topic_partitions(topic)
        if len(partitions) > 1:
            partition = partition_for_key(key, len(partitions))
            topic = partitions[partition]
        view = await read_subscription(attached.broker, topic, config.subscription)
    except KeylaneError as exc:
        slot_info: dict[str, Any] = {"slot": None, "error": str(exc)}
    else:
        slot = view.slot_of(key)
        drain = view.draining_of(slot)
        consumer = view.owner_of(slot)
        owner = {
            "consumer": consumer,
            "in_this_process": consumer in attached.worker.group.consumer_names,
            "source": view.source,
            "draining": None
            if drain is None
            else {"unacked": drain.unacked, "blocked_attempts": drain.blocked_attempts},
        }
        slot_info = {
            "slot": slot,
            "slot_function": "slot_consistent" if view.consistent else "slot_range",
        }
    last = state.observability.decisions.decisions_of(key)
    return json_response(
        200,
        {
            "key": key,
            "worker": config.name,
            "topic": topic,
            "partition": partition,
            "subscription": config.subscription,
            **slot_info,
            "range_owner": owner,
            "holder": _holder(attached, key),
            "last_decision": last[-1].to_dict() if last else None,
            "holder_scope": "this process's lanes; range_owner comes from the broker",
        },
    )


def lanes_view(attached: Attached) -> dict[str, Any]:
    """Lanes in flight, stalled, parked and the deepest queues (at most :data:`TOP_KEYS` each)."""
    stats = attached.worker.stats()
    total = stats.lanes.total
    ages = total.in_flight_age
    busiest = sorted(total.queue_depths.items(), key=lambda kv: -kv[1])[:TOP_KEYS]
    return {
        "state": total.state,
        "in_flight": total.in_flight,
        "buffered": total.buffered,
        "in_flight_keys": [
            {"key": k, "seconds": ages.get(k, 0.0), "queued": total.queue_depths.get(k, 0)}
            for k in sorted(total.in_flight_keys, key=lambda k: -ages.get(k, 0.0))[:TOP_KEYS]
        ],
        "stalled_keys": [
            {"key": k, "seconds": ages.get(k, 0.0)}
            for k in sorted(total.stalled_keys, key=lambda k: -ages.get(k, 0.0))[:TOP_KEYS]
        ],
        "parked_keys": [
            {"key": k, "error": e} for k, e in list(total.parked_keys.items())[:TOP_KEYS]
        ],
        "deepest_queues": [{"key": k, "queued": n} for k, n in busiest],
        "counters": {
            "received": total.received,
            "completed": total.completed,
            "failed": total.failed,
            "retried": total.retried,
            "dead_lettered": total.dead_lettered,
            "parked": total.parked,
            "acked": total.acked,
        },
        "by_consumer": {
            name: {
                "in_flight": s.in_flight,
                "buffered": s.buffered,
                "received": s.received,
                "acked": s.acked,
                "stalled": len(s.stalled_keys),
                "parked": len(s.parked_keys),
            }
            for name, s in stats.lanes.by_consumer.items()
        },
    }


def overview(obs: Observability) -> dict[str, Any]:
    """Everything the dashboard shows, from the latest sample and the live counters.

    With a worker attached also the engine's clock (``engine_time``: simulated time in
    ``keylane run``), committed decisions by event type (``events``) and by reason code
    (``reasons``), ``timers_fired`` and ``stall_threshold_seconds``; always the latest relay
    outcomes of the latest active subscribers (``recent_deliveries``).
    """
    attached = obs.attached
    sampler = obs.sampler
    sample = None if sampler is None else sampler.latest
    series = [] if sampler is None else [p.to_dict() for p in sampler.series()]
    sends: dict[str, dict[str, dict[str, int]]] = {}
    for (channel, stage, outcome), n in sorted(obs.metrics.send_counts.items()):
        sends.setdefault(stage, {}).setdefault(channel, {})[outcome] = n
    data: dict[str, Any] = {
        "time": time.time(),
        "series": series,
        "ingest": dict(obs.metrics.ingest_counts),
        "sends": sends,
        "dead_letters": {"poison": [e.to_dict() for e in obs.decisions.poison()[-20:]]},
        "sample_errors": [] if sample is None else list(sample.errors),
    }
    if sample is not None:
        outbox = sample.outbox
        data["outbox"] = (
            None
            if outbox is None
            else {
                "pending": outbox.pending,
                "dispatching": outbox.dispatching,
                "oldest_pending_age_seconds": outbox.oldest_pending_age,
                "by_status": {s.value.lower(): n for s, n in outbox.by_status.items()},
            }
        )
        data["timers_armed"] = sample.timers_armed
        view = sample.subscription
        data["consumers"] = None if view is None else view.to_dict()
    if attached is not None:
        stats = attached.worker.stats()
        data["worker"] = attached.worker.config.name
        data["decisions"] = dict(stats.decisions)
        data["relay"] = None if stats.relay is None else dict(stats.relay.outcomes)
        data["lanes"] = lanes_view(attached)
        data["dead_letters"]["count"] = stats.lanes.total.dead_lettered
        data["engine_time"] = attached.clock.now().isoformat().replace("+00:00", "Z")
        data["events"] = dict(stats.events)
        data["reasons"] = dict(stats.reasons)
        data["timers_fired"] = stats.timers_fired
        data["stall_threshold_seconds"] = attached.worker.config.lanes.stall_threshold
    data["recent_deliveries"] = recent_deliveries(obs.decisions)
    return data


async def get_overview(request: Request) -> Response:
    """``GET /v1/overview``."""
    state: ApiState = request.app.state.api
    try:
        authorize(request, state)
    except Refused as refused:
        return refused.response
    return json_response(200, overview(state.observability))


async def get_consumers(request: Request) -> Response:
    """``GET /v1/consumers``: the subscription's consumers, ranges and draining hashes, now."""
    try:
        _, attached = attached_of(request)
    except Refused as refused:
        return refused.response
    config = attached.worker.config
    try:
        view = await read_subscription(attached.broker, config.topic, config.subscription)
    except KeylaneError as exc:
        return error(503, "broker_unavailable", "", str(exc), headers={"Retry-After": "1"})
    return json_response(200, view.to_dict())


async def get_lanes(request: Request) -> Response:
    """``GET /v1/lanes``."""
    try:
        _, attached = attached_of(request)
    except Refused as refused:
        return refused.response
    return json_response(200, lanes_view(attached))


async def get_decisions(request: Request) -> Response:
    """``GET /v1/decisions?limit=N``: this process's latest attempts, oldest first."""
    state: ApiState = request.app.state.api
    try:
        authorize(request, state)
    except Refused as refused:
        return refused.response
    raw = request.query_params.get("limit", "100")
    if not (raw.isascii() and raw.isdecimal()) or not 1 <= int(raw) <= 10_000:
        return error(400, "bad_request", "limit", "must be an integer from 1 to 10000")
    entries: list[DecisionEntry] = state.observability.decisions.recent_decisions(int(raw))
    return json_response(200, {"decisions": [e.to_dict() for e in entries]})
