"""state: the MessagePack codec, its version check, and the bounded dedupe window."""

from __future__ import annotations

import msgspec
import pytest

from keylane.journeys import (
    STATE_VERSION,
    StateError,
    StateVersionError,
    decode_state,
    encode_state,
    new_state,
)
from keylane.journeys.state import (
    DEDUPE_MAX_AGE_MS,
    DEDUPE_WINDOW,
    Run,
    Timer,
    remember,
    seen_before,
)

T = 1_780_000_000_000


def test_round_trip_keeps_every_field():
    state = msgspec.structs.replace(
        new_state("acme", "u1"),
        phone="+13055550123",
        phone_zones=("America/New_York",),
        phone_state="FL",
        sms_consent=True,
        attributes={"first_name": "Ann", "vip": True},
        runs=(Run("cart", "r1", "wait", 2, T, {"cart_url": "u"}),),
        timers=(Timer("cart:r1:wait:2", "cart", "r1", "wait", T + 1),),
        sms_sends=(T,),
        last_started={"cart": T},
    )
    data = encode_state(state)
    assert isinstance(data, bytes)
    assert decode_state(data) == state
    assert decode_state(data).version == STATE_VERSION


def test_a_newer_version_is_refused_clearly():
    newer = msgspec.structs.replace(new_state("acme", "u1"), version=STATE_VERSION + 1)
    with pytest.raises(
        StateVersionError, match=rf"version {STATE_VERSION + 1} was written by a newer keylane"
    ):
        decode_state(encode_state(newer))
    # ...also when the newer layout does not even decode as this one.
    alien = msgspec.msgpack.encode([STATE_VERSION + 5, "acme", "u1", "unexpected", {"x": 1}])
    with pytest.raises(StateVersionError, match=f"version {STATE_VERSION + 5}"):
        decode_state(alien)


@pytest.mark.parametrize("data", [b"", b"\xc1", msgspec.msgpack.encode({"a": 1}),
                                  msgspec.msgpack.encode([1, 2, 3])])  # fmt: skip
def test_garbage_is_a_state_error(data):
    with pytest.raises(StateError, match=r"^state: "):
        decode_state(data)


def test_the_dedupe_window_keeps_the_last_64_and_forgets_the_old():
    state = new_state("acme", "u1")
    digests = [i.to_bytes(8, "big") for i in range(1, 101)]
    for index, digest in enumerate(digests):
        seen, seen_at = remember(state, digest, T + index)
        state = msgspec.structs.replace(state, seen=seen, seen_at=seen_at)
    assert len(state.seen) == 8 * DEDUPE_WINDOW
    assert seen_before(state, digests[-1])
    assert seen_before(state, digests[-DEDUPE_WINDOW])
    assert not seen_before(state, digests[-DEDUPE_WINDOW - 1])
    # A digest straddling two stored ones is not a match (alignment is checked).
    assert not seen_before(state, digests[-2][4:] + digests[-1][:4])
    later = T + DEDUPE_MAX_AGE_MS + 1000 * DEDUPE_WINDOW
    seen, seen_at = remember(state, b"\xff" * 8, later)
    assert seen == b"\xff" * 8
    assert len(seen_at) == 4
