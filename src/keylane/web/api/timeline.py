"""The dashboard's subscriber routes: ``GET /v1/timeline?key=`` and ``GET /v1/search?q=``.

- ``GET /v1/timeline?key=<brand>:<subscriber>``: the subscriber's profile (consent, suppression,
  time zone, masked recipients), armed timers, and its timeline
  (:func:`~keylane.web.api.activity.timeline`): each remembered event with the decision, its
  reasons and the sends it created, each send with the store's ledger row and the relay's
  outcomes. The ledger comes from the store (the whole truth); the decisions from this
  process's ring.
- ``GET /v1/search?q=<text>&limit=N``: remembered subscriber keys containing the text.

Both need the token (``?token=`` too). Imports the API's helpers, the views and the activity;
starlette.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from keylane.web.api.activity import search_keys, timeline
from keylane.web.api.http import Refused, authorize, error, json_response
from keylane.web.api.state import ApiState
from keylane.web.api.views import attached_of, iso, ledger_row, read_subscriber, state_view

__all__ = ["get_search", "get_timeline"]

#: The longest key or search text accepted.
MAX_KEY = 512


def _key_param(request: Request) -> str:
    """The ``key`` query parameter, ``<brand>:<subscriber>``.

    Raises:
        Refused: 422 missing, too long or without a ``:``.
    """
    key = request.query_params.get("key", "")
    if not key:
        raise Refused(error(422, "invalid_key", "key", "give ?key=<brand>:<subscriber>"))
    if len(key) > MAX_KEY:
        raise Refused(error(422, "invalid_key", "key", f"a key is at most {MAX_KEY} characters"))
    brand, sep, subscriber = key.partition(":")
    if not (brand and sep and subscriber):
        raise Refused(
            error(422, "invalid_key", "key", "a key is <brand>:<subscriber>, e.g. acme:u1")
        )
    return key


async def get_timeline(request: Request) -> Response:
    """``GET /v1/timeline?key=<brand>:<subscriber>``."""
    try:
        state, attached = attached_of(request)
        key = _key_param(request)
    except Refused as refused:
        return refused.response
    brand, _, subscriber = key.partition(":")
    try:
        snapshot, rows, timers = await read_subscriber(attached, key)
    except Refused as refused:
        return refused.response
    view, problem = state_view(snapshot.state)
    log = state.observability.decisions
    profile = None
    if view is not None:
        profile = {
            name: view.get(name)
            for name in ("phone", "email", "timezone", "sms_consent", "email_consent", "opted_out")
        }
    return json_response(
        200,
        {
            "key": key,
            "brand_id": brand,
            "subscriber_id": subscriber,
            "exists": snapshot.version > 0,
            "version": snapshot.version,
            "profile": profile,
            "state_error": problem,
            "timers": [{"timer_id": t.timer_id, "due_at": iso(t.due_at)} for t in timers],
            **timeline(
                log.decisions_of(key), log.deliveries_of(key), [ledger_row(r) for r in rows]
            ),
            "scope": f"decisions: this process's last {log.per_key} attempts for this "
            "subscriber; sends: the store's ledger",
        },
    )


async def get_search(request: Request) -> Response:
    """``GET /v1/search?q=<text>&limit=N``: remembered keys containing ``text``."""
    state: ApiState = request.app.state.api
    try:
        authorize(request, state)
    except Refused as refused:
        return refused.response
    text = request.query_params.get("q", "")
    if not text or len(text) > MAX_KEY:
        return error(422, "invalid_query", "q", f"search 1 to {MAX_KEY} characters")
    raw = request.query_params.get("limit", "20")
    if not (raw.isascii() and raw.isdecimal()) or not 1 <= int(raw) <= 100:
        return error(400, "bad_request", "limit", "must be an integer from 1 to 100")
    keys = search_keys(state.observability.decisions, text, int(raw))
    return json_response(200, {"query": text, "keys": keys})
