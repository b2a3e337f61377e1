"""HTTP helpers of the service API: JSON answers, the error shape, the token check, bodies.

Every error is ``{"error": <code>, "field": <where or "">, "reason": <one line>}`` (the embedded
gateway's shape), with the status that says what to do: 400 malformed, 401 no or wrong token,
404 unknown, 413 too big, 415 not JSON, 422 invalid, 503 retry later (``Retry-After``).

Imports starlette and msgspec.
"""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from keylane.web.api.state import ApiState, token_matches

__all__ = ["Refused", "authorize", "error", "json_response", "read_json_body"]

_ENCODER = msgspec.json.Encoder()


def json_response(status: int, data: Any, headers: dict[str, str] | None = None) -> Response:
    """``data`` as a JSON answer."""
    return Response(_ENCODER.encode(data), status, headers, media_type="application/json")


def error(
    status: int,
    code: str,
    field: str,
    reason: str,
    *,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    """An error answer in the API's one shape (plus ``extra`` keys)."""
    return json_response(
        status, {"error": code, "field": field, "reason": reason, **extra}, headers
    )


class Refused(Exception):
    """A request refused with an answer (raised by the helpers, returned by the routes)."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if request.method == "GET":  # EventSource cannot set headers: the stream takes ?token=
        return request.query_params.get("token") or None
    return None


def authorize(request: Request, state: ApiState) -> None:
    """Check the bearer token (``Authorization: Bearer <token>``; on GET also ``?token=``).

    Raises:
        Refused: 401, the token is missing or wrong.
    """
    given = _bearer(request)
    if given is None:
        raise Refused(
            error(
                401,
                "missing_token",
                "Authorization",
                "send the API token as 'Authorization: Bearer <token>'",
                headers={"WWW-Authenticate": 'Bearer realm="keylane"'},
            )
        )
    if not token_matches(given, state.token):
        raise Refused(
            error(
                401,
                "invalid_token",
                "Authorization",
                "the API token is not valid",
                headers={"WWW-Authenticate": 'Bearer realm="keylane", error="invalid_token"'},
            )
        )


async def read_json_body(request: Request, limit: int) -> bytes:
    """The body of a JSON request, at most ``limit`` bytes.

    Raises:
        Refused: 415 not ``application/json``; 400 a bad Content-Length; 413 too big.
    """
    content_type = request.headers.get("content-type", "")
    if content_type.split(";", 1)[0].strip().lower() != "application/json":
        shown = content_type[:100] or "none"
        raise Refused(
            error(
                415,
                "unsupported_media_type",
                "Content-Type",
                f"Content-Type must be application/json, got {shown}",
            )
        )
    too_big = f"the body is larger than {limit} bytes"
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise Refused(error(400, "bad_request", "Content-Length", "not a number"))
        if int(declared) > limit:
            raise Refused(error(413, "payload_too_large", "", too_big))
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Refused(error(413, "payload_too_large", "", too_big))
        chunks.append(chunk)
    return b"".join(chunks)
