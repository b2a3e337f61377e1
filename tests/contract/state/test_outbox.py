"""The outbox contract: idempotency keys, cancels, claims, leases, fenced finishes, the ledger."""

from __future__ import annotations

import pytest

from keylane.errors import InvalidArgumentError
from keylane.state import SendStatus, StateStore
from tests.contract.state.support import commit, send

OWNER = "relay-1"


async def add_sends(store: StateStore, key: str, *names: str, not_before: float = 0.0) -> None:
    version = (await store.load(key)).version
    sends = tuple(send(name, key, not_before) for name in names)
    await store.commit(commit(key, version, sends=sends))


async def statuses(store: StateStore, key: str) -> dict[str, SendStatus]:
    return {r.idempotency_key: r.status for r in await store.sends_for(key)}


async def test_a_replayed_step_is_a_no_op(store: StateStore) -> None:
    # Given a send committed once
    await store.commit(commit("u", 0, sends=(send("u:j1:s1", "u", payload=b"first"),)))
    # When the same journey step is decided again (a new event, so not a duplicate commit)
    again = commit("u", 1, sends=(send("u:j1:s1", "u", payload=b"second"), send("u:j1:s2", "u")))
    await store.commit(again)
    # Then the outbox still has one row for that key, with the first payload
    records = await store.sends_for("u")
    assert [r.idempotency_key for r in records] == ["u:j1:s1", "u:j1:s2"]
    assert records[0].payload == b"first"


async def test_idempotency_keys_are_unique_across_the_store(store: StateStore) -> None:
    await store.commit(commit("a", 0, sends=(send("shared-name", "a"),)))
    await store.commit(commit("b", 0, sends=(send("shared-name", "b"),)))
    assert [r.key for r in await store.sends_for("a")] == ["a"]
    assert await store.sends_for("b") == []


async def test_cancels_touch_only_this_keys_waiting_rows(store: StateStore) -> None:
    # Given key u with a pending, a retrying, a dispatching and a sent row; key v with one pending
    await add_sends(store, "u", "u:sent", "u:retry", "u:dispatching", "u:pending")
    await add_sends(store, "v", "v:pending")
    await drive(store, "u:sent", SendStatus.SENT)
    await drive(store, "u:retry", SendStatus.RETRY)
    await drive(store, "u:dispatching", None)
    # When u's commit cancels all four by name, and names v's row too
    names = ("u:sent", "u:dispatching", "u:retry", "u:pending", "v:pending")
    await store.commit(commit("u", 1, cancel_sends=names))
    # Then only u's pending and retrying rows are cancelled
    assert await statuses(store, "u") == {
        "u:sent": SendStatus.SENT,
        "u:dispatching": SendStatus.DISPATCHING,
        "u:retry": SendStatus.CANCELLED,
        "u:pending": SendStatus.CANCELLED,
    }
    assert await statuses(store, "v") == {"v:pending": SendStatus.PENDING}
    cancelled = [r for r in await store.sends_for("u") if r.status is SendStatus.CANCELLED]
    assert all(r.finished_at is not None for r in cancelled)


async def drive(store: StateStore, name: str, status: SendStatus | None) -> None:
    """Claim the next row, which must be ``name``; finish it with ``status`` (None: keep it)."""
    (claim,) = await store.claim_sends(now=1.0, limit=1, lease=30.0, owner=OWNER)
    assert claim.idempotency_key == name
    retry_at = 99.0 if status is SendStatus.RETRY else None
    if status is not None:
        done = await store.finish_send(
            name, owner=OWNER, attempt=claim.attempt, status=status, now=1.0, retry_at=retry_at
        )
        assert done


async def test_cancel_all_sends_then_insert(store: StateStore) -> None:
    await add_sends(store, "u", "u:1", "u:2")
    # When a STOP decision cancels everything and adds a confirmation
    await store.commit(commit("u", 1, cancel_all_sends=True, sends=(send("u:stop-ack", "u"),)))
    # Then the old rows are cancelled and the new one is pending
    assert await statuses(store, "u") == {
        "u:1": SendStatus.CANCELLED,
        "u:2": SendStatus.CANCELLED,
        "u:stop-ack": SendStatus.PENDING,
    }


async def test_claim_takes_due_rows_oldest_first(store: StateStore) -> None:
    # Given three keys' sends due at 3, 1 and 2, and one not due until 100
    await add_sends(store, "a", "a:1", not_before=3.0)
    await add_sends(store, "b", "b:1", not_before=1.0)
    await add_sends(store, "c", "c:1", not_before=2.0)
    await add_sends(store, "d", "d:1", not_before=100.0)
    # When a relay claims two at time 10, then more
    first = await store.claim_sends(now=10.0, limit=2, lease=5.0, owner=OWNER)
    rest = await store.claim_sends(now=10.0, limit=10, lease=5.0, owner=OWNER)
    # Then the oldest due come first, the future one never, each as DISPATCHING attempt 1
    assert [c.idempotency_key for c in first] == ["b:1", "c:1"]
    assert [c.idempotency_key for c in rest] == ["a:1"]
    assert all((c.attempt, c.owner, c.lease_until) == (1, OWNER, 15.0) for c in first + rest)
    assert first[0].payload == b"payload of b:1"
    assert first[0].channel == "sms"
    assert (await store.sends_for("d"))[0].status is SendStatus.PENDING


async def test_at_most_one_dispatching_row_per_key(store: StateStore) -> None:
    await add_sends(store, "u", "u:1", "u:2", "u:3")
    # When a relay claims while u's first row is dispatching
    first = await store.claim_sends(now=1.0, limit=10, lease=5.0, owner=OWNER)
    second = await store.claim_sends(now=1.0, limit=10, lease=5.0, owner="relay-2")
    # Then it gets one row of u, and nothing more until that row is finished
    assert [c.idempotency_key for c in first] == ["u:1"]
    assert second == []
    done = await store.finish_send("u:1", owner=OWNER, attempt=1, status=SendStatus.SENT, now=2.0)
    assert done
    third = await store.claim_sends(now=2.0, limit=10, lease=5.0, owner="relay-2")
    assert [c.idempotency_key for c in third] == ["u:2"]


async def test_an_expired_lease_is_claimed_again_and_fences_the_old_owner(
    store: StateStore,
) -> None:
    await add_sends(store, "u", "u:1", "u:2")
    (old,) = await store.claim_sends(now=1.0, limit=10, lease=5.0, owner="slow-relay")
    assert (old.idempotency_key, old.attempt) == ("u:1", 1)
    # Before the lease expires nobody else gets u's rows
    assert await store.claim_sends(now=5.9, limit=10, lease=5.0, owner="fast-relay") == []
    # When the lease expires, another relay claims the same row (not u:2), as attempt 2
    (new,) = await store.claim_sends(now=6.0, limit=10, lease=5.0, owner="fast-relay")
    assert (new.idempotency_key, new.attempt, new.owner) == ("u:1", 2, "fast-relay")
    # Then the old owner's finish is fenced and changes nothing
    fenced = await store.finish_send(
        "u:1", owner="slow-relay", attempt=1, status=SendStatus.UNKNOWN, now=7.0
    )
    assert fenced is False
    assert (await store.sends_for("u"))[0].status is SendStatus.DISPATCHING
    # And the same owner with a stale attempt is fenced too
    stale = await store.finish_send(
        "u:1", owner="fast-relay", attempt=1, status=SendStatus.SENT, now=7.0
    )
    assert stale is False
    assert await store.finish_send(
        "u:1", owner="fast-relay", attempt=2, status=SendStatus.SENT, now=7.0, detail="id-42"
    )
    record = (await store.sends_for("u"))[0]
    assert (record.status, record.attempts, record.detail) == (SendStatus.SENT, 2, "id-42")
    assert (record.dispatched_at, record.finished_at, record.lease_until) == (6.0, 7.0, None)


async def test_retry_waits_for_retry_at_under_the_same_key(store: StateStore) -> None:
    await add_sends(store, "u", "u:1")
    (claim,) = await store.claim_sends(now=1.0, limit=1, lease=5.0, owner=OWNER)
    assert await store.finish_send(
        "u:1", owner=OWNER, attempt=1, status=SendStatus.RETRY, now=2.0, retry_at=10.0,
        detail="503",
    )  # fmt: skip
    record = (await store.sends_for("u"))[0]
    assert (record.status, record.retry_at, record.finished_at) == (SendStatus.RETRY, 10.0, None)
    assert await store.claim_sends(now=9.9, limit=1, lease=5.0, owner=OWNER) == []
    (again,) = await store.claim_sends(now=10.0, limit=1, lease=5.0, owner=OWNER)
    assert (again.idempotency_key, again.attempt) == (claim.idempotency_key, 2)


async def test_deferred_goes_back_to_pending_later(store: StateStore) -> None:
    await add_sends(store, "u", "u:1")
    await store.claim_sends(now=1.0, limit=1, lease=5.0, owner=OWNER)
    # When the relay's quiet-hours check defers it to 50
    assert await store.finish_send(
        "u:1", owner=OWNER, attempt=1, status=SendStatus.DEFERRED, now=2.0, not_before=50.0,
        detail="quiet hours",
    )  # fmt: skip
    record = (await store.sends_for("u"))[0]
    assert (record.status, record.not_before, record.detail) == (
        SendStatus.PENDING,
        50.0,
        "quiet hours",
    )
    assert await store.claim_sends(now=49.0, limit=1, lease=5.0, owner=OWNER) == []
    assert len(await store.claim_sends(now=50.0, limit=1, lease=5.0, owner=OWNER)) == 1


@pytest.mark.parametrize(
    "status",
    [
        SendStatus.SENT,
        SendStatus.FAILED_PERMANENT,
        SendStatus.UNKNOWN,
        SendStatus.SKIPPED,
        SendStatus.CANCELLED,
    ],
)
async def test_final_statuses_are_recorded_and_never_claimed_again(
    store: StateStore, status: SendStatus
) -> None:
    await add_sends(store, "u", "u:1")
    await store.claim_sends(now=1.0, limit=1, lease=5.0, owner=OWNER)
    assert await store.finish_send(
        "u:1", owner=OWNER, attempt=1, status=status, now=3.0, detail="why"
    )
    record = (await store.sends_for("u"))[0]
    assert (record.status, record.finished_at, record.detail) == (status, 3.0, "why")
    assert await store.claim_sends(now=1000.0, limit=5, lease=5.0, owner=OWNER) == []
    # A second finish does nothing
    assert not await store.finish_send("u:1", owner=OWNER, attempt=1, status=status, now=4.0,
                                       detail="again")  # fmt: skip


async def test_finish_of_an_unknown_or_unclaimed_send(store: StateStore) -> None:
    await add_sends(store, "u", "u:1")
    for name in ("nope", "u:1"):
        assert not await store.finish_send(
            name, owner=OWNER, attempt=1, status=SendStatus.SENT, now=1.0
        )
    assert (await store.sends_for("u"))[0].status is SendStatus.PENDING


async def test_finish_rejects_bad_arguments(store: StateStore) -> None:
    bad: list[tuple[dict[str, object], str]] = [
        ({"status": SendStatus.PENDING}, "status"),
        ({"status": SendStatus.DISPATCHING}, "status"),
        ({"status": "LOST"}, "unknown send status"),
        ({"status": SendStatus.RETRY}, "retry_at"),
        ({"status": SendStatus.SENT, "retry_at": 3.0}, "retry_at"),
        ({"status": SendStatus.DEFERRED}, "not_before"),
        ({"status": SendStatus.SKIPPED}, "reason"),
        ({"status": SendStatus.SENT, "attempt": 0}, "attempt"),
        ({"status": SendStatus.SENT, "now": float("nan")}, "now"),
    ]
    for overrides, message in bad:
        arguments = {"owner": OWNER, "attempt": 1, "now": 1.0, **overrides}
        with pytest.raises(InvalidArgumentError, match=message):
            await store.finish_send("u:1", **arguments)  # type: ignore[arg-type]


async def test_claim_rejects_bad_arguments(store: StateStore) -> None:
    bad: list[tuple[dict[str, object], str]] = [
        ({"limit": 0}, "limit"),
        ({"limit": True}, "limit"),
        ({"lease": 0}, "lease"),
        ({"lease": float("inf")}, "lease"),
        ({"owner": ""}, "owner"),
        ({"now": "soon"}, "now"),
    ]
    for overrides, message in bad:
        arguments = {"now": 1.0, "limit": 1, "lease": 1.0, "owner": OWNER, **overrides}
        with pytest.raises(InvalidArgumentError, match=message):
            await store.claim_sends(**arguments)  # type: ignore[arg-type]


async def test_the_ledger_and_the_stats(store: StateStore) -> None:
    # Given sends in several states
    await add_sends(store, "a", "a:1", not_before=10.0)
    await add_sends(store, "b", "b:1", not_before=20.0)
    await add_sends(store, "c", "c:1", not_before=30.0)
    await add_sends(store, "d", "d:1", not_before=500.0)
    claims = await store.claim_sends(now=25.0, limit=1, lease=100.0, owner=OWNER)
    assert [c.idempotency_key for c in claims] == ["a:1"]
    await store.claim_sends(now=25.0, limit=1, lease=100.0, owner=OWNER)  # b:1
    await store.finish_send("b:1", owner=OWNER, attempt=1, status=SendStatus.SENT, now=26.0)
    # When the stats are read at 40
    stats = await store.outbox_stats(40.0)
    # Then c:1 (due at 30) is the oldest due waiting row; d:1 is pending but not due
    assert (stats.pending, stats.dispatching) == (2, 1)
    assert stats.oldest_pending_age == pytest.approx(10.0)
    assert stats.by_status[SendStatus.SENT] == 1
    assert stats.by_status[SendStatus.PENDING] == 2
    assert stats.by_status[SendStatus.CANCELLED] == 0
    assert (await store.outbox_stats(5.0)).oldest_pending_age == 0.0
    record = (await store.sends_for("a"))[0]
    assert (record.key, record.channel, record.owner, record.lease_until) == (
        "a",
        "sms",
        OWNER,
        125.0,
    )
    assert record.created_at > 0
    assert record.expires_at is None


async def test_expires_at_is_kept_for_the_relay(store: StateStore) -> None:
    await store.commit(commit("u", 0, sends=(send("u:1", "u", 5.0, expires_at=60.0),)))
    (claim,) = await store.claim_sends(now=6.0, limit=1, lease=1.0, owner=OWNER)
    assert (claim.not_before, claim.expires_at) == (5.0, 60.0)
