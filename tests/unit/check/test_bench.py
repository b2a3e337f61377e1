"""Benchmarks of recording and checking (print numbers; assert correctness only).

Run: ``.venv/bin/python -m pytest tests/unit/check/test_bench.py -m bench -s``.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from keylane.brokers.base import Message, MessageId
from keylane.check import Attempt, History, HistoryRecorder, check, read_history, recorded
from keylane.lanes import HandlerContext

pytestmark = pytest.mark.bench

KEYS = 1000
PER_KEY = 200  # 200,000 attempts


def serial_attempts() -> list[Attempt]:
    return [
        Attempt(f"user-{k}", f"c{k % 8}", f"(1,{k * PER_KEY + s},-1,-1)", s, 1, s, s + 0.5, "ok")
        for k in range(KEYS)
        for s in range(PER_KEY)
    ]


def test_recorder_throughput(tmp_path: Path) -> None:
    attempts = serial_attempts()
    path = tmp_path / "c1.jsonl"
    t0 = time.perf_counter()
    with HistoryRecorder(path) as recorder:
        for a in attempts:
            recorder.attempt(a)
    elapsed = time.perf_counter() - t0
    print(
        f"\nrecorder: {len(attempts)} attempts to memory + file in {elapsed:.3f}s "
        f"= {len(attempts) / elapsed:,.0f} attempts/s"
    )
    t0 = time.perf_counter()
    history = read_history([path])
    elapsed = time.perf_counter() - t0
    print(f"read_history: {len(history.attempts)} lines in {elapsed:.3f}s")
    assert len(history.attempts) == len(attempts)


def test_checker_time() -> None:
    attempts = serial_attempts()
    # Every 1000th attempt also overlaps its predecessor on another consumer
    extra = [
        Attempt(a.key, "intruder", a.message_id, a.seq, 2, a.start + 0.1, a.start + 0.2, "error")
        for a in attempts[::1000]
    ]
    history = History(attempts=attempts + extra)
    t0 = time.perf_counter()
    report = check(history)
    elapsed = time.perf_counter() - t0
    print(f"\ncheck: {len(history.attempts)} attempts on {KEYS} keys in {elapsed:.3f}s")
    assert report.exclusivity_count == len(extra)


async def test_recorded_wrapper_overhead() -> None:
    calls = 100_000
    recorder = HistoryRecorder(clock=asyncio.get_running_loop().time)
    message = Message(b"", "user-1", None, {"seq": "1"}, MessageId(-1, 1, 1), "t", 0.0)
    context = HandlerContext(key="user-1", attempt=1, consumer_name="c1")

    async def handler(msg: Message, ctx: HandlerContext) -> None:
        return None

    wrapped = recorded(handler, recorder)
    t0 = time.perf_counter()
    for _ in range(calls):
        await handler(message, context)
    bare = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(calls):
        await wrapped(message, context)
    wrapped_time = time.perf_counter() - t0
    print(
        f"\nrecorded(): {(wrapped_time - bare) / calls * 1e6:.2f} us overhead per call "
        f"({calls} calls: bare {bare:.3f}s, recorded {wrapped_time:.3f}s)"
    )
    assert len(recorder.history().attempts) == calls
