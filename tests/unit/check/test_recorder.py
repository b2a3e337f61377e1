"""HistoryRecorder (memory and file) and the recorded() handler wrapper."""

from __future__ import annotations

import asyncio
import itertools
import json
from dataclasses import dataclass

import pytest

from keylane.brokers.base import Message, MessageId
from keylane.check import (
    SEQ_PROPERTY,
    Attempt,
    HistoryRecorder,
    Published,
    check,
    read_history,
    recorded,
)
from keylane.errors import InvalidArgumentError
from tests.unit.check.factories import attempt


@dataclass(frozen=True, slots=True)
class Context:
    """Stands in for keylane.lanes.HandlerContext (same attributes)."""

    key: str
    attempt: int
    consumer_name: str


def message(seq: object = 1, key: str = "u1", entry: int = 0) -> Message:
    properties = {} if seq is None else {SEQ_PROPERTY: str(seq)}
    return Message(
        data=b"{}",
        key=key,
        ordering_key=None,
        properties=properties,
        message_id=MessageId(partition=-1, ledger_id=1, entry_id=entry),
        topic="persistent://public/default/events",
        publish_time=0.0,
    )


def ticking_clock(step: float = 1.0):
    """A fake clock that advances by ``step`` on every reading."""
    counter = itertools.count()
    return lambda: next(counter) * step


class TestRecorder:
    def test_keeps_attempts_and_publications_in_memory(self):
        recorder = HistoryRecorder(clock=ticking_clock())
        recorder.published("u1", 1, "m1")
        recorder.attempt(attempt("u1", 1, 0, 1))
        h = recorder.history()
        assert h.published == [Published("u1", 1, "m1")]
        assert h.attempts == [attempt("u1", 1, 0, 1)]
        # a snapshot: later records do not change it
        recorder.attempt(attempt("u1", 2, 1, 2))
        assert len(h.attempts) == 1
        assert len(recorder.history().attempts) == 2

    def test_now_reads_the_injected_clock(self):
        recorder = HistoryRecorder(clock=ticking_clock(0.5))
        assert [recorder.now(), recorder.now(), recorder.now()] == [0.0, 0.5, 1.0]

    def test_default_clock_is_monotonic(self):
        recorder = HistoryRecorder()
        first = recorder.now()
        assert recorder.now() >= first

    def test_file_is_written_in_batches_and_on_close(self, tmp_path):
        path = tmp_path / "c1.jsonl"
        recorder = HistoryRecorder(path, flush_every=3)
        recorder.attempt(attempt("u1", 1, 0, 1))
        recorder.attempt(attempt("u1", 2, 1, 2))
        assert path.read_text() == ""  # buffered
        recorder.published("u1", 3, "u1/3")
        assert len(path.read_text().splitlines()) == 3  # a full batch is written
        recorder.attempt(attempt("u1", 3, 2, 3))
        recorder.close()
        lines = path.read_text().splitlines()
        assert [json.loads(line).get("seq") for line in lines] == [1, 2, 3, 3]
        h = read_history([path])
        assert h.attempts == recorder.history().attempts
        assert h.published == [Published("u1", 3, "u1/3")]

    def test_flush_writes_what_is_buffered(self, tmp_path):
        path = tmp_path / "c1.jsonl"
        with HistoryRecorder(path) as recorder:
            recorder.attempt(attempt("u1", 1, 0, 1))
            recorder.flush()
            assert len(path.read_text().splitlines()) == 1
            recorder.flush()  # nothing new: no change
            assert len(path.read_text().splitlines()) == 1
        assert recorder.path == path

    def test_replaces_the_file_unless_appending(self, tmp_path):
        path = tmp_path / "c1.jsonl"
        with HistoryRecorder(path) as recorder:
            recorder.attempt(attempt("u1", 1, 0, 1))
        with HistoryRecorder(path, append=True) as recorder:
            recorder.attempt(attempt("u1", 2, 1, 2))
        assert [a.seq for a in read_history([path]).attempts] == [1, 2]
        with HistoryRecorder(path) as recorder:
            recorder.attempt(attempt("u1", 3, 2, 3))
        assert [a.seq for a in read_history([path]).attempts] == [3]

    def test_file_only_recorder_keeps_no_history(self, tmp_path):
        path = tmp_path / "c1.jsonl"
        with HistoryRecorder(path, keep_in_memory=False) as recorder:
            recorder.attempt(attempt("u1", 1, 0, 1))
            with pytest.raises(InvalidArgumentError, match="read its file instead"):
                recorder.history()
        assert len(read_history([path]).attempts) == 1

    def test_close_is_idempotent_and_recording_after_it_fails(self, tmp_path):
        recorder = HistoryRecorder(tmp_path / "c1.jsonl")
        recorder.close()
        recorder.close()
        with pytest.raises(InvalidArgumentError, match="closed"):
            recorder.attempt(attempt("u1", 1, 0, 1))
        with pytest.raises(InvalidArgumentError, match="closed"):
            recorder.published("u1", 1, "m")
        assert recorder.history().attempts == []

    @pytest.mark.parametrize(
        ("start", "end"), [(2.0, 1.0), (0.0, float("nan")), (float("-inf"), 0.0)]
    )
    def test_rejects_impossible_times(self, start, end):
        recorder = HistoryRecorder()
        with pytest.raises(InvalidArgumentError, match="start <= end"):
            recorder.attempt(attempt("u1", 1, start, end))
        assert recorder.history().attempts == []

    @pytest.mark.parametrize("flush_every", [0, -1, 1.5, True])
    def test_rejects_bad_flush_every(self, flush_every):
        with pytest.raises(InvalidArgumentError, match="flush_every"):
            HistoryRecorder(flush_every=flush_every)

    def test_rejects_recording_nowhere(self):
        with pytest.raises(InvalidArgumentError, match="keep_in_memory"):
            HistoryRecorder(keep_in_memory=False)

    def test_bad_path_fails_at_construction(self, tmp_path):
        with pytest.raises(FileNotFoundError):
            HistoryRecorder(tmp_path / "missing-dir" / "c1.jsonl")


class TestRecorded:
    async def test_success_is_recorded_as_ok_and_the_result_returned(self):
        recorder = HistoryRecorder(clock=ticking_clock())
        seen = []

        async def handler(msg: Message, ctx: Context) -> str:
            seen.append((msg.properties[SEQ_PROPERTY], ctx.key))
            return "done"

        wrapped = recorded(handler, recorder)
        result = await wrapped(message(seq=7, entry=3), Context("u1", 2, "c9"))
        assert result == "done"
        assert seen == [("7", "u1")]
        assert recorder.history().attempts == [
            Attempt("u1", "c9", "(1,3,-1,-1)", 7, 2, 0.0, 1.0, "ok", redelivery_count=0)
        ]
        assert wrapped.__name__ == "handler"

    async def test_exception_is_recorded_as_error_and_reraised(self):
        recorder = HistoryRecorder(clock=ticking_clock())

        async def handler(msg: Message, ctx: Context) -> None:
            raise RuntimeError("boom")

        with pytest.raises(RuntimeError, match="boom"):
            await recorded(handler, recorder)(message(), Context("u1", 1, "c1"))
        [a] = recorder.history().attempts
        assert (a.outcome, a.start, a.end) == ("error", 0.0, 1.0)

    async def test_timeout_is_recorded_as_timeout(self):
        recorder = HistoryRecorder(clock=ticking_clock())

        async def handler(msg: Message, ctx: Context) -> None:
            await asyncio.Event().wait()

        wrapped = recorded(handler, recorder)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.01):
                await wrapped(message(), Context("u1", 1, "c1"))
        assert [a.outcome for a in recorder.history().attempts] == ["timeout"]

    async def test_a_handler_raising_timeout_error_is_a_timeout(self):
        recorder = HistoryRecorder()

        async def handler(msg: Message, ctx: Context) -> None:
            raise TimeoutError

        with pytest.raises(TimeoutError):
            await recorded(handler, recorder)(message(), Context("u1", 1, "c1"))
        assert recorder.history().attempts[0].outcome == "timeout"

    async def test_cancellation_is_recorded_and_propagates(self):
        recorder = HistoryRecorder()
        started = asyncio.Event()

        async def handler(msg: Message, ctx: Context) -> None:
            started.set()
            await asyncio.Event().wait()

        task = asyncio.create_task(recorded(handler, recorder)(message(), Context("u1", 1, "c1")))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert recorder.history().attempts[0].outcome == "timeout"

    async def test_missing_seq_fails_before_the_handler_runs(self):
        recorder = HistoryRecorder()
        calls = []

        async def handler(msg: Message, ctx: Context) -> None:
            calls.append(msg)

        wrapped = recorded(handler, recorder)
        with pytest.raises(InvalidArgumentError, match="has no 'seq' property"):
            await wrapped(message(seq=None), Context("u1", 1, "c1"))
        with pytest.raises(InvalidArgumentError, match="non-integer 'seq' property: 'x'"):
            await wrapped(message(seq="x"), Context("u1", 1, "c1"))
        assert calls == []
        assert recorder.history().attempts == []

    async def test_lanes_handler_context_is_accepted(self):
        from keylane.lanes import HandlerContext

        recorder = HistoryRecorder(clock=ticking_clock())

        async def handler(msg: Message, ctx: HandlerContext) -> None:
            return None

        await recorded(handler, recorder)(message(seq=4), HandlerContext("u1", 3, "c2"))
        [a] = recorder.history().attempts
        assert (a.key, a.consumer, a.seq, a.attempt, a.outcome) == ("u1", "c2", 4, 3, "ok")

    async def test_custom_seq_of(self):
        recorder = HistoryRecorder()

        async def handler(msg: Message, ctx: Context) -> None:
            return None

        wrapped = recorded(handler, recorder, seq_of=lambda m: int(m.data))
        await wrapped(
            Message(b"42", "u1", None, {}, MessageId(-1, 1, 1), "t", 0.0), Context("u1", 1, "c1")
        )
        assert recorder.history().attempts[0].seq == 42

    @pytest.mark.looptime
    async def test_virtual_time_clock_and_concurrent_keys(self):
        # Given handlers that sleep in virtual time, recorded on the loop's clock
        loop = asyncio.get_running_loop()
        recorder = HistoryRecorder(clock=loop.time)

        async def handler(msg: Message, ctx: Context) -> None:
            await asyncio.sleep(10)

        wrapped = recorded(handler, recorder)
        t0 = loop.time()

        async def serial(key: str) -> None:
            for seq in (1, 2, 3):
                await wrapped(message(seq=seq, key=key), Context(key, 1, f"c-{key}"))

        # When two keys run concurrently, each serially
        await asyncio.gather(serial("a"), serial("b"))
        # Then the attempts carry virtual times, and the history is clean
        starts = sorted(
            (a.key, a.seq, a.start - t0, a.end - t0) for a in recorder.history().attempts
        )
        assert starts == [
            (key, seq, 10.0 * (seq - 1), 10.0 * seq) for key in ("a", "b") for seq in (1, 2, 3)
        ]
        assert check(recorder.history()).clean

    async def test_two_consumers_running_one_key_at_once_are_caught(self):
        # Given two consumers processing one key concurrently (the bug the checker exists for)
        recorder = HistoryRecorder(clock=asyncio.get_running_loop().time)
        gate = asyncio.Event()

        async def handler(msg: Message, ctx: Context) -> None:
            await gate.wait()

        wrapped = recorded(handler, recorder)
        tasks = [
            asyncio.create_task(wrapped(message(seq=s, key="u1"), Context("u1", 1, f"c{s}")))
            for s in (1, 2)
        ]
        await asyncio.sleep(0.001)
        gate.set()
        await asyncio.gather(*tasks)
        report = check(recorder.history())
        assert report.exclusivity_count == 1
        assert {
            report.exclusivity_violations[0].first.consumer,
            report.exclusivity_violations[0].second.consumer,
        } == {"c1", "c2"}
