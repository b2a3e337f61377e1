"""Quickstart: two Key_Shared consumers with lanes on the embedded broker, checked afterwards."""

from __future__ import annotations

import asyncio

from keylane.brokers import Message, SubscriptionType, connect
from keylane.check import HistoryRecorder, Report, check, recorded
from keylane.lanes import ExhaustedPolicy, HandlerContext, LaneConfig, Lanes


async def decide(message: Message, context: HandlerContext) -> None:
    await asyncio.sleep(0.005)  # read the user's state, call a service, write the decision


async def main(users: int = 50, events: int = 8) -> Report:
    recorder = HistoryRecorder()  # give it a path to also write JSON Lines for `keylane check`
    config = LaneConfig(max_in_flight=32, on_exhausted=ExhaustedPolicy.PARK)
    async with connect("memory://") as broker:
        lanes = []
        for pod in ("pod-1", "pod-2"):
            consumer = await broker.subscribe(
                "events", "decisions", subscription_type=SubscriptionType.KEY_SHARED,
                consumer_name=pod,
            )  # fmt: skip
            lanes.append(Lanes(consumer, recorded(decide, recorder), config))
            await lanes[-1].start()
        producer = await broker.create_producer("events")  # key-based batching
        published = [(f"user-{u}", seq) for seq in range(events) for u in range(users)]
        ids = await asyncio.gather(
            *(producer.send(b"cart", key=k, properties={"seq": str(s)}) for k, s in published)
        )
        for (key, seq), message_id in zip(published, ids, strict=True):
            recorder.published(key, seq, str(message_id))
        while sum(lane.stats().acked for lane in lanes) < len(published):  # noqa: ASYNC110
            await asyncio.sleep(0.01)  # a demo may poll; services run until told to stop
        for lane in lanes:
            await lane.stop()
    return check(recorder.history())


if __name__ == "__main__":
    report = asyncio.run(main())
    print(report.counts(), "clean" if report.clean else "ANOMALIES")
