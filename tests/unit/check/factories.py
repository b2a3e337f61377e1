"""Builders of crafted history records for the checker tests."""

from __future__ import annotations

from keylane.check import Attempt, History, Published


def attempt(
    key: str,
    seq: int,
    start: float,
    end: float,
    outcome: str = "ok",
    *,
    consumer: str = "c1",
    number: int = 1,
    message_id: str | None = None,
) -> Attempt:
    """One attempt; the message id defaults to ``"<key>/<seq>"``."""
    return Attempt(
        key=key,
        consumer=consumer,
        message_id=message_id or f"{key}/{seq}",
        seq=seq,
        attempt=number,
        start=start,
        end=end,
        outcome=outcome,
    )


def published(key: str, seq: int) -> Published:
    """One publication with the default message id of :func:`attempt`."""
    return Published(key=key, seq=seq, message_id=f"{key}/{seq}")


def history(*attempts: Attempt, published_seqs: dict[str, int] | None = None) -> History:
    """A history of ``attempts``; ``published_seqs`` maps key -> n publishes seqs 1..n."""
    publications = [
        published(key, seq)
        for key, count in (published_seqs or {}).items()
        for seq in range(1, count + 1)
    ]
    return History(attempts=list(attempts), published=publications)
