"""Fuzzing the ingest API: over 10,000 generated requests, never a 5xx, no accepted event lost.

Hypothesis generates requests at ``POST /v1/events`` (and, one in ten, at the other routes):
valid events and batches, events with one field broken (missing, wrong type, unknown), arbitrary
JSON, arbitrary bytes, malformed and truncated JSON, unicode edge cases (lone surrogates, NULs,
RTL overrides, emoji, zero-width characters), huge numbers and strings, deep nesting, batches at
and over the limit, bodies over the size limit, missing and invalid tokens, wrong content types.

Most requests go through httpx's ASGI transport into the app of the running service (fast);
part of them, and a list of hand-picked edge cases, over the service's real socket (uvicorn).
Both reach the same service: the embedded pipeline (memory broker, SQLite, the real gateway).

The pass condition, checked on every answer and at the end:

- never a 5xx; every 4xx in the error shape (``error``, ``field``, ``reason``, non-empty);
- where the answer is known (a bad token, a wrong content type, a valid event, a broken field,
  the batch and size limits) it is that answer, naming the broken field;
- the server stays up (``/healthz`` and ``/readyz`` answer after);
- no event accepted with 202 is lost: each accepted ``(key, event_id)`` is eventually committed
  by the engine, or decided as a dedupe of a committed ``event_id`` (read from the decision
  observer of the worker), and none is dead-lettered.

It prints the number of requests and the answers per status code, and writes them to
``test-output/fuzz-api.json``.
"""

from __future__ import annotations

import asyncio
import json
import string
import threading
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from keylane.runtime import DecisionOutcome, DecisionRecord
from keylane.web.api import ApiConfig, create_app
from tests.integration.web.conftest import TOKEN, Running, start_service, stop_service

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[3]
MAX_BATCH = 8
MAX_BODY = 16 * 1024
ASGI_EXAMPLES = 8_500
SOCKET_EXAMPLES = 1_800
MIN_REQUESTS = 10_000
ERROR_FIELDS = ("error", "field", "reason")

# -- strategies ----------------------------------------------------------------------------

PHONES = [
    "+14155550123",
    "+12125550199",
    "+13055550142",
    "+14055550117",
    "+33612345678",
    "+4915112345678",
]
ZONES = ["America/New_York", "America/Chicago", "America/Los_Angeles", "Europe/Paris", "UTC"]
SPECIAL_IDS = [
    "\u202eevil\u202c", "\u05e9\u05dc\u05d5\u05dd", "\U0001f600" * 128, "a" * 128, "x:y:z",
    "%2F..%2F", "../../etc/passwd", "<script>alert(1)</script>", "\ufeffbom", "\u200b",
    "e\u0301", "\U0010ffff", "null", "0",
]  # fmt: skip


def _id_chars(c: str) -> bool:
    return not c.isspace()


ids = st.one_of(
    st.text(
        st.characters(exclude_categories=("Cs", "Cc"), exclude_characters="\x7f").filter(_id_chars),
        min_size=1,
        max_size=128,
    ),
    st.sampled_from(SPECIAL_IDS),
    st.from_regex(
        r"[a-z]{1,3}-[0-9]{1,3}", fullmatch=True
    ),  # collisions: repeated ids, one key's order
)
brands = st.one_of(
    st.sampled_from(["acme", "evergreen"]),
    st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", fullmatch=True),
)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda m: timezone(timedelta(minutes=m))
)
moments = st.datetimes(
    min_value=datetime(1970, 1, 2), max_value=datetime(2200, 1, 1), timezones=offsets
)
profiles = st.fixed_dictionaries(
    {},
    optional={
        "phone": st.sampled_from(PHONES),
        "email": st.sampled_from(["a@example.com", "Shopper.One+tag@Example.ORG"]),
        "timezone": st.sampled_from(ZONES),
        "consent": st.fixed_dictionaries(
            {}, optional={"sms": st.booleans(), "email": st.booleans()}
        ),
        "source": st.text(max_size=40),
        "attributes": st.dictionaries(
            st.text(max_size=20),
            st.one_of(
                st.text(max_size=60),
                st.booleans(),
                st.integers(-(2**63), 2**63 - 1),
                st.floats(allow_nan=False, allow_infinity=False),
            ),
            max_size=5,
        ),
    },
)
SHOPPING = [
    "product_viewed",
    "added_to_cart",
    "checkout_started",
    "order_placed",
    "message_clicked",
]


@st.composite
def valid_events(draw: st.DrawFn) -> dict[str, Any]:
    """An event the schema accepts."""
    kind = draw(
        st.sampled_from([*SHOPPING, "subscribed", "sms_received", "profile_updated", "timer_fired"])
    )
    properties: dict[str, Any]
    if kind == "subscribed":
        properties = draw(profiles)
        properties["phone"] = draw(st.sampled_from(PHONES))
    elif kind == "profile_updated":
        properties = draw(profiles)
    elif kind == "sms_received":
        text = st.one_of(st.sampled_from(["STOP", "START", "HELP", "stop", " Stop "]), st.text())
        properties = {"text": draw(text.filter(lambda t: len(t) <= 1600))}
    elif kind == "timer_fired":
        properties = {"timer_id": draw(st.text(min_size=1, max_size=80))}
    else:
        properties = draw(st.dictionaries(st.text(max_size=16), json_values, max_size=6))
    event: dict[str, Any] = {
        "event_id": draw(ids),
        "brand_id": draw(brands),
        "subscriber_id": draw(ids),
        "type": kind,
        "occurred_at": draw(moments).isoformat(),
        "properties": properties,
    }
    if draw(st.booleans()):
        event["schema_version"] = 1
    return event


REQUIRED = ["event_id", "brand_id", "subscriber_id", "type", "occurred_at"]
WRONG_TYPES: st.SearchStrategy[Any] = st.one_of(
    st.integers(), st.booleans(), st.none(), st.lists(st.integers(), max_size=2), st.just({})
)


@st.composite
def broken_events(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    """A valid event with one field broken, and that field's name."""
    event = draw(valid_events())
    how = draw(st.sampled_from(["missing", "wrong_type", "unknown", "bad_type", "naive"]))
    name = draw(st.sampled_from(REQUIRED))
    if how == "missing":
        del event[name]
    elif how == "wrong_type":
        event[name] = draw(WRONG_TYPES)
    elif how == "unknown":
        name = "x_" + draw(st.text(string.ascii_lowercase, min_size=1, max_size=8))
        event[name] = draw(json_scalars)
    elif how == "bad_type":
        name = "type"
        event[name] = draw(st.text(max_size=20).filter(lambda t: t not in _TYPES))
    else:
        name = "occurred_at"
        event[name] = "2026-03-02T15:00:00"
    return event, name


_TYPES = {*SHOPPING, "subscribed", "sms_received", "profile_updated", "timer_fired"}


def _dumps(value: Any, ascii_only: bool = True) -> bytes:
    return json.dumps(value, ensure_ascii=ascii_only).encode()


@dataclass(frozen=True)
class Body:
    """A request body and what the API must answer to it (None: any 202 or 4xx)."""

    content: bytes
    expect: int | None = None
    at: str | None = None
    events: tuple[dict[str, Any], ...] = ()


@st.composite
def bodies(draw: st.DrawFn) -> Body:
    kind = draw(
        st.sampled_from(
            ["one", "one", "batch", "broken", "broken_in_batch", "json", "bytes", "text",
             "surrogate", "truncated", "deep", "huge", "limit", "empty"]
        )
    )  # fmt: skip
    ascii_only = draw(st.booleans())
    if kind == "one":
        event = draw(valid_events())
        return Body(_dumps(event, ascii_only), 202, events=(event,))
    if kind == "batch":
        batch = draw(st.lists(valid_events(), min_size=0, max_size=MAX_BATCH + 2))
        expect = 422 if not batch else 413 if len(batch) > MAX_BATCH else 202
        events = tuple(batch) if expect == 202 else ()
        return Body(_dumps(batch, ascii_only), expect, events=events)
    if kind in ("broken", "broken_in_batch"):
        event, name = draw(broken_events())
        if kind == "broken":
            return Body(_dumps(event, ascii_only), 422, name)
        batch = draw(st.lists(valid_events(), max_size=MAX_BATCH - 1))
        index = draw(st.integers(0, len(batch)))
        batch.insert(index, event)
        return Body(_dumps(batch, ascii_only), 422, f"[{index}].{name}")
    if kind == "json":
        return Body(_dumps(draw(json_values), ascii_only))
    if kind == "bytes":
        return Body(draw(st.binary(max_size=300)))
    if kind == "text":
        return Body(draw(st.text(max_size=300)).encode("utf-8"))
    if kind == "surrogate":
        event = draw(valid_events())
        target = draw(st.sampled_from(["event_id", "subscriber_id", "properties"]))
        lone = draw(st.sampled_from(["\\ud800", "\\udfff", "\\ud83d", "\\ude00x"]))
        event[target] = "SURROGATE" if target != "properties" else {"k": "SURROGATE"}
        text = json.dumps(event).replace("SURROGATE", lone)
        return Body(text.encode(), 400)
    if kind == "truncated":
        raw = _dumps(draw(valid_events()))
        cut = draw(st.integers(1, len(raw) - 1))
        return Body(raw[:cut], 400)
    if kind == "deep":
        depth = draw(st.integers(1, 30_000))
        opener, closer = draw(st.sampled_from([(b"[", b"]"), (b'{"a":', b"}")]))
        return Body(opener * depth + b"1" + closer * depth)
    if kind == "huge":
        event = draw(valid_events())
        value = draw(
            st.one_of(
                st.integers(min_value=2**64).map(str),
                st.integers(1, 6000).map(lambda n: "9" * n),
                st.sampled_from(["1e999", "-1e999", "1e-999", "-0", "0.0e0"]),
            )
        )
        event["properties"] = {"n": "NUMBER"}
        if event["type"] in ("subscribed", "profile_updated"):
            event["properties"] = {"attributes": {"n": "NUMBER"}, "phone": PHONES[0]}
        number = json.dumps(event).replace('"NUMBER"', value)
        return Body(number.encode())
    if kind == "limit":
        size = draw(st.sampled_from([MAX_BODY, MAX_BODY + 1, MAX_BODY * 3]))
        event = draw(valid_events())
        event["properties"] = {"pad": ""}
        raw = _dumps(event)
        pad = max(0, size - len(raw))
        return Body(raw.replace(b'"pad": ""', b'"pad": "' + b"p" * pad + b'"'))
    return Body(b"" if draw(st.booleans()) else b"   \n\t ")


@dataclass(frozen=True)
class Auth:
    headers: dict[str, bytes]
    valid: bool


VALID_AUTH = st.sampled_from(
    [
        Auth({"Authorization": f"Bearer {TOKEN}".encode()}, True),
        Auth({"Authorization": f"bearer   {TOKEN}".encode()}, True),
    ]
)
BAD_AUTH = st.one_of(
    st.sampled_from(
        [
            Auth({}, False),
            Auth({"Authorization": b"Bearer"}, False),
            Auth({"Authorization": b"Bearer "}, False),
            Auth({"Authorization": f"Basic {TOKEN}".encode()}, False),
            Auth({"Authorization": f"Bearer {TOKEN}x".encode()}, False),
            Auth({"Authorization": f"Bearer {TOKEN[:-1]}".encode()}, False),
            Auth({"Authorization": f"Bearer {TOKEN.upper()}".encode()}, False),
            Auth({"Authorization": b"Bearer " + b"\xff\xfe\xe9" * 10}, False),
            Auth({"Authorization": b"Bearer " + b"A" * 8000}, False),
        ]
    ),
    st.binary(min_size=1, max_size=60)
    .filter(lambda b: all(c >= 0x20 and c != 0x7F for c in b) and b.strip() == b and b != b"")
    .map(lambda b: Auth({"Authorization": b"Bearer " + b}, False)),
)


def _mostly(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``good`` four times in five (``one_of`` does not weigh repeated branches)."""
    return st.integers(0, 99).flatmap(lambda n: good if n < 80 else bad)


AUTHS = _mostly(VALID_AUTH, BAD_AUTH)


GOOD_TYPES = ["application/json", "application/json; charset=utf-8", "Application/JSON"]
BAD_TYPES = [
    None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
    "application/jsonx", "application/problem+json", "", "json", "text/json",
]  # fmt: skip
CONTENT_TYPES = _mostly(st.sampled_from(GOOD_TYPES), st.sampled_from(BAD_TYPES))


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, bytes]
    content: bytes
    expect: int | None
    at: str | None = None
    events: tuple[dict[str, Any], ...] = ()
    params: dict[str, str] = field(default_factory=dict)


@st.composite
def ingest_requests(draw: st.DrawFn) -> Request:
    auth = draw(AUTHS)
    content_type = draw(CONTENT_TYPES)
    body = draw(bodies())
    headers = dict(auth.headers)
    if content_type is not None:
        headers["Content-Type"] = content_type.encode()
    good_type = content_type in GOOD_TYPES
    expect, fld = body.expect, body.at
    if not auth.valid:
        expect, fld = 401, "Authorization"
    elif not good_type:
        expect, fld = 415, "Content-Type"
    elif len(body.content) > MAX_BODY:
        expect, fld = 413, None
    events = body.events if expect == 202 else ()
    return Request("POST", "/v1/events", headers, body.content, expect, fld, events)


@st.composite
def other_requests(draw: st.DrawFn) -> Request:
    auth = draw(AUTHS)
    text = st.text(max_size=30)
    segment = text.map(lambda t: quote(t, safe=""))  # never a scheme-relative //host
    method, path, params = draw(
        st.one_of(
            st.tuples(st.sampled_from(["GET", "PUT", "DELETE", "PATCH"]), st.just("/v1/events"),
                      st.just({})),
            st.tuples(st.just("GET"), st.just("/v1/timeline"),
                      st.fixed_dictionaries({}, optional={"key": text})),
            st.tuples(st.just("GET"), st.just("/v1/search"),
                      st.fixed_dictionaries({}, optional={"q": text, "limit": text})),
            st.tuples(st.just("GET"), st.just("/v1/decisions"),
                      st.fixed_dictionaries({}, optional={"limit": text})),
            st.tuples(st.just("GET"), segment.map(lambda t: f"/v1/subscribers/acme/{t}"),
                      st.just({})),
            st.tuples(st.just("GET"), segment.map(lambda t: f"/v1/keys/{t}"), st.just({})),
            st.tuples(st.sampled_from(["GET", "POST"]),
                      segment.filter(lambda t: "stream" not in t).map(lambda t: f"/{t}"),
                      st.just({})),
        )
    )  # fmt: skip
    return Request(method, path, dict(auth.headers), b"", None, params=params)


requests = _mostly(ingest_requests(), other_requests())

# -- checking ------------------------------------------------------------------------------


@dataclass
class Tally:
    """Every answer, and every event the API accepted."""

    statuses: Counter[str] = field(default_factory=Counter)
    by_transport: Counter[str] = field(default_factory=Counter)
    accepted: set[tuple[str, str]] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def check(self, request: Request, response: httpx.Response, transport: str) -> None:
        status = response.status_code
        with self.lock:
            self.statuses[str(status)] += 1
            self.by_transport[transport] += 1
        where = f"{request.method} {request.path} {request.content[:120]!r}"
        assert status < 500, f"{status} for {where}: {response.text[:500]}"
        if status >= 400:
            body = response.json()
            assert isinstance(body, dict), where
            assert all(isinstance(body.get(k), str) for k in ERROR_FIELDS), (where, body)
            assert body["error"], (where, body)
            assert body["reason"], (where, body)
        if request.expect is not None:
            assert status == request.expect, (where, status, response.text[:500])
        if request.at is not None and status >= 400:
            assert response.json()["field"] == request.at, (where, response.text[:500])
        if status == 202:
            self._accepted(request, response.json(), where)

    def _accepted(self, request: Request, body: dict[str, Any], where: str) -> None:
        results = body["results"]
        assert body["accepted"] == len(results), where
        assert all(r["status"] == "accepted" and r["message_id"] for r in results), where
        if request.events:
            sent = [
                (f"{e['brand_id']}:{e['subscriber_id']}", e["event_id"]) for e in request.events
            ]
            assert [(r["key"], r["event_id"]) for r in results] == sent, where
        with self.lock:
            self.accepted.update((r["key"], r["event_id"]) for r in results)


@dataclass
class Decided:
    """What the engine decided, by ``(key, event_id)`` (a decision observer of the worker)."""

    committed: set[tuple[str, str]] = field(default_factory=set)
    deduped: set[tuple[str, str]] = field(default_factory=set)
    poison: list[str] = field(default_factory=list)

    def observe(self, record: DecisionRecord) -> None:
        if record.event_id is None:
            self.poison.append(f"{record.key}: unparsed: {record.detail}")
            return
        pair = (record.key, record.event_id)
        if record.outcome is DecisionOutcome.COMMITTED:
            self.committed.add(pair)
        elif record.outcome is DecisionOutcome.DEDUPE:
            self.deduped.add(pair)
        elif record.outcome is DecisionOutcome.POISON:
            self.poison.append(f"{pair}: {record.detail}")

    def missing(self, accepted: set[tuple[str, str]]) -> set[tuple[str, str]]:
        committed_ids = {event_id for _, event_id in self.committed}
        return {
            pair
            for pair in accepted
            if pair not in self.committed
            and not (pair in self.deduped and pair[1] in committed_ids)
        }


# -- the test --------------------------------------------------------------------------------


def _wire(headers: dict[str, bytes]) -> list[tuple[bytes, bytes]]:
    return [(name.encode(), value) for name, value in headers.items()]


def _fuzz(examples: int, send: Callable[[Request], None]) -> None:
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
    )
    @given(requests)
    def run(request: Request) -> None:
        send(request)

    run()


@pytest.fixture
async def fuzzed(tmp_path: Path) -> AsyncIterator[tuple[Running, Decided]]:
    api = ApiConfig(port=0, token=TOKEN, max_batch=MAX_BATCH, max_body_bytes=MAX_BODY)
    running = await start_service(tmp_path, api=api)
    decided = Decided()
    attached = running.service.observability.attached
    assert attached is not None
    attached.worker.handler.add_observer(decided.observe)
    try:
        yield running, decided
    finally:
        await stop_service(running)


async def test_ten_thousand_generated_requests(fuzzed: tuple[Running, Decided], capsys):
    running, decided = fuzzed
    assert running.service.server is not None
    loop = asyncio.get_running_loop()
    tally = Tally()
    app = create_app(running.service.server.state)
    asgi = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://fuzz")

    def via_asgi(request: Request) -> None:
        coroutine = asgi.request(
            request.method, request.path, headers=_wire(request.headers), content=request.content,
            params=request.params,
        )  # fmt: skip
        response = asyncio.run_coroutine_threadsafe(coroutine, loop).result(timeout=60)
        tally.check(request, response, "asgi")

    with httpx.Client(base_url=running.url, timeout=30) as client:

        def via_socket(request: Request) -> None:
            try:
                response = client.request(
                    request.method, request.path, headers=_wire(request.headers),
                    content=request.content, params=request.params,
                )  # fmt: skip
            except httpx.LocalProtocolError:  # h11 will not send it (e.g. "Bearer "): in-process
                via_asgi(request)
                return
            tally.check(request, response, "socket")

        def fuzz() -> None:
            for request in _edge_cases():
                via_socket(request)
            _streamed_bodies(client, tally)
            _fuzz(SOCKET_EXAMPLES, via_socket)
            _fuzz(ASGI_EXAMPLES, via_asgi)
            # The server is still up and ready.
            assert client.get("/healthz").status_code == 200
            assert client.get("/readyz").json() == {"ready": True}

        try:
            await asyncio.to_thread(fuzz)
        finally:
            await asgi.aclose()

    for _ in range(1200):  # bounded: every accepted event decided
        if not decided.missing(tally.accepted):
            break
        await asyncio.sleep(0.1)
    missing = decided.missing(tally.accepted)
    total = sum(tally.statuses.values())
    summary = {
        "requests": total,
        "by_transport": dict(tally.by_transport),
        "by_status": dict(sorted(tally.statuses.items())),
        "events_accepted": len(tally.accepted),
        "events_committed": len(decided.committed),
        "dedupes": len(decided.deduped),
        "lost": len(missing),
        "poison": len(decided.poison),
    }
    out = ROOT / "test-output"
    out.mkdir(exist_ok=True)
    (out / "fuzz-api.json").write_text(json.dumps(summary, indent=2) + "\n")
    with capsys.disabled():
        print(f"\nfuzz: {json.dumps(summary)}")
    assert total >= MIN_REQUESTS
    assert decided.poison == []
    assert missing == set(), sorted(missing)[:10]
    assert tally.statuses["202"] > 0
    assert tally.statuses["422"] > 0


# -- hand-picked cases over the real socket --------------------------------------------------

AUTH = {"Authorization": f"Bearer {TOKEN}".encode(), "Content-Type": b"application/json"}


def _event(**changes: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": "edge-1", "brand_id": "acme", "subscriber_id": "edge",
        "type": "product_viewed", "occurred_at": "2026-03-02T15:00:00Z", "properties": {},
    }  # fmt: skip
    event.update(changes)
    return event


#: Any 202 or 4xx (the loss check still applies to what is accepted).
ANY = 0


def _case(body: bytes | dict[str, Any] | list[Any], expect: int, at: str | None = None) -> Request:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    events: tuple[dict[str, Any], ...] = ()
    if expect == ANY:
        return Request("POST", "/v1/events", AUTH, content, None)
    if expect == 202:
        assert not isinstance(body, bytes)
        events = tuple(body) if isinstance(body, list) else (body,)
    return Request("POST", "/v1/events", AUTH, content, expect, at, events)


def _edge_cases() -> list[Request]:
    profile = {"phone": PHONES[0], "consent": {"sms": True}}
    cases = [
        _case(b'{"event_id":"\\ud800","brand_id":"acme"}', 400),
        _case(json.dumps(_event(properties={"k": "X"})).replace('"X"', '"\\udc00"').encode(), 400),
        _case(b'{"event_id":"\xed\xa0\x80","brand_id":"acme"}', 400),
        _case(_event(event_id="edge-nul", subscriber_id="a\u0000b"), 422, "subscriber_id"),
        _case(_event(event_id="edge-nul2", properties={"\u0000": "\u0000"}), 202),
        _case(_event(event_id="edge-rtl", subscriber_id="\u202eedge\u202c"), 202),
        _case(_event(event_id="edge-emoji", subscriber_id="\U0001f600" * 128), 202),
        _case(_event(event_id="edge-emoji2", subscriber_id="\U0001f600" * 129), 422,
              "subscriber_id"),
        _case(b"[" * 5000 + b"]" * 5000, 400),
        _case(b'{"a":' * 2000 + b"1" + b"}" * 2000, 400),
        _case(b"[" * 20_000 + b"]" * 20_000, 413),
        _case(json.dumps(_event(event_id="edge-big", properties={"n": 1})).replace(
            '"n": 1', '"n": ' + "9" * 5000).encode(), ANY),
        _case(json.dumps(_event(event_id="edge-inf", properties={"n": 1})).replace(
            '"n": 1', '"n": 1e999').encode(), 400),
        _case(_event(event_id="edge-y1", occurred_at="0001-01-01T00:00:00+14:00"), 422,
              "occurred_at"),
        _case(_event(event_id="edge-y9", occurred_at="9999-12-31T23:59:59-14:00"), 422,
              "occurred_at"),
        _case(b"\xef\xbb\xbf" + json.dumps(_event()).encode(), 400),
        _case(b"", 422), _case(b"null", 422), _case(b"1", 422), _case(b'"x"', 422),
        _case(b"[]", 422), _case(b"{}", 422, "event_id"),
        _case([_event(event_id=f"edge-b{i}") for i in range(MAX_BATCH)], 202),
        _case([_event(event_id=f"edge-c{i}") for i in range(MAX_BATCH + 1)], 413),
        _case(_event(event_id="edge-pad", properties={"p": "p" * MAX_BODY}), 413),
        _case(_event(event_id="edge-tz", type="profile_updated",
                     properties={"timezone": "a" * 5000}), 422, "properties.timezone"),
        _case(_event(event_id="edge-tz2", type="profile_updated",
                     properties={"timezone": "\u0000"}), 422, "properties.timezone"),
        _case(_event(event_id="edge-tz3", type="profile_updated",
                     properties={"timezone": "../../../etc/passwd"}), 422, "properties.timezone"),
        _case(_event(event_id="edge-attr", type="subscribed",
                     properties={**profile, "attributes": {"n": 10**30}}), 422,
              "properties.attributes.n"),
        _case(_event(event_id="edge-cart", type="added_to_cart",
                     properties={"sku": "s", "price": 10**30, "qty": -(2**70)}), ANY),
        _case(_event(event_id="edge-plain"), 202),
        _case(b'{"event_id":"edge-dup","event_id":"edge-dup2","brand_id":"acme",'
              b'"subscriber_id":"edge","type":"product_viewed",'
              b'"occurred_at":"2026-03-02T15:00:00Z"}', ANY),
        _case(_event(event_id="edge-sv", schema_version=2**70), 422, "schema_version"),
        _case(_event(event_id="edge-phone", type="subscribed",
                     properties={"phone": "+" + "9" * 5000}), 422, "properties.phone"),
        _case(_event(event_id="edge-sms", type="sms_received",
                     properties={"text": "\u0000STOP\u202e"}), 202),
    ]  # fmt: skip
    for content_type in BAD_TYPES:
        headers = {"Authorization": AUTH["Authorization"]}
        if content_type is not None:
            headers["Content-Type"] = content_type.encode()
        cases.append(Request("POST", "/v1/events", headers, b"{}", 415, "Content-Type"))
    for token in (b"", b"Bearer", b"Bearer wrong-token-0123456789", b"Token " + TOKEN.encode()):
        headers = {"Content-Type": b"application/json"}
        if token:
            headers["Authorization"] = token
        cases.append(Request("POST", "/v1/events", headers, b"{}", 401, "Authorization"))
    return cases


def _streamed_bodies(client: httpx.Client, tally: Tally) -> None:
    """Bodies without a Content-Length (chunked): over the limit 413, under it decided."""
    big = Request("POST", "/v1/events", AUTH, b"", 413)
    chunks = (b"[" + b" " * 4096 for _ in range(8))
    tally.check(big, client.post("/v1/events", headers=_wire(AUTH), content=chunks), "socket")
    event = _event(event_id="edge-chunked")
    raw = json.dumps(event).encode()
    small = Request("POST", "/v1/events", AUTH, raw, 202, events=(event,))
    pieces = (raw[i : i + 7] for i in range(0, len(raw), 7))
    tally.check(small, client.post("/v1/events", headers=_wire(AUTH), content=pieces), "socket")


def test_the_accepted_pairs_rule_can_fail() -> None:
    decided = Decided()
    decided.committed.add(("acme:a", "e1"))
    decided.deduped.update({("acme:b", "e1"), ("acme:c", "e2")})
    accepted = {("acme:a", "e1"), ("acme:b", "e1"), ("acme:c", "e2"), ("acme:d", "e3")}
    assert decided.missing(accepted) == {("acme:c", "e2"), ("acme:d", "e3")}
