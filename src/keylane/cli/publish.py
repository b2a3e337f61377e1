"""``keylane publish``: the load generator; publish the synthetic day or a JSONL file to a topic.

Thin: options to a :class:`keylane.service.publish.PublishConfig`, then
:func:`~keylane.service.publish.publish_load`, then one summary line (or ``--json``). SIGTERM
stops the run after the sends in flight and exits 0; SIGINT does the same and exits 130; a
second signal exits 130 at once.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Annotated

import typer

from keylane.cli.errors import EXIT_INTERRUPTED
from keylane.cli.options import (
    AdminUrlOption,
    BrokerOption,
    JsonOption,
    PulsarAllowInsecureOption,
    PulsarTokenFileOption,
    PulsarTokenOption,
    PulsarTrustCertsOption,
    PulsarValidateHostnameOption,
    broker_options,
    check_json_target,
    check_writable,
    json_to_stdout,
    write_json,
)
from keylane.errors import InvalidArgumentError
from keylane.runtime import DEFAULT_TOPIC
from keylane.service.publish import PublishConfig, Publisher, PublishSummary, publish_load
from keylane.workload import BlackFridaySpec

__all__ = ["publish_command"]


async def _publish(config: PublishConfig, interrupted: list[str]) -> PublishSummary:
    loop = asyncio.get_running_loop()
    running: list[Publisher] = []

    def stop(name: str) -> None:
        if interrupted:  # a second signal: now, whatever is in flight
            os._exit(EXIT_INTERRUPTED)
        interrupted.append(name)
        for publisher in running:
            publisher.stop()

    def wire(publisher: Publisher) -> None:
        running.append(publisher)
        if interrupted:  # a signal while the events were being read
            publisher.stop()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop, sig.name)
    try:
        return await publish_load(config, on_start=wire)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


def publish_command(
    broker: BrokerOption = "pulsar://127.0.0.1:6650",
    pulsar_admin_url: AdminUrlOption = None,
    pulsar_token: PulsarTokenOption = None,
    pulsar_token_file: PulsarTokenFileOption = None,
    pulsar_tls_trust_certs: PulsarTrustCertsOption = None,
    pulsar_tls_allow_insecure: PulsarAllowInsecureOption = None,
    pulsar_tls_validate_hostname: PulsarValidateHostnameOption = None,
    topic: Annotated[str, typer.Option(help="The events topic.")] = DEFAULT_TOPIC,
    events: Annotated[
        Path | None,
        typer.Option(help="Publish this JSON Lines event file instead of the synthetic day."),
    ] = None,
    subscribers: Annotated[
        int, typer.Option(min=1, help="Subscribers of the synthetic day.")
    ] = 20_000,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic day.")] = 2026,
    bot_views: Annotated[
        int, typer.Option(min=0, help="Views of the synthetic day's scraping bot (one hot key).")
    ] = 3_000,
    skip: Annotated[int, typer.Option(min=0, help="Leave out the first N events.")] = 0,
    count: Annotated[int | None, typer.Option(min=1, help="Publish at most N events.")] = None,
    rate: Annotated[
        float | None,
        typer.Option(min=0.001, help="Events per second (default: as fast as it goes)."),
    ] = None,
    speed: Annotated[
        float | None,
        typer.Option(
            min=0.001,
            help="Publish at the events' own times on a clock this fast (instead of --rate).",
        ),
    ] = None,
    seconds: Annotated[
        float | None, typer.Option(min=0.001, help="Stop after this many seconds.")
    ] = None,
    window: Annotated[int, typer.Option(min=1, help="Sends in flight at most.")] = 1000,
    history: Annotated[
        Path | None,
        typer.Option(help="Record every publication in this JSON Lines file for `keylane check`."),
    ] = None,
    json_path: JsonOption = None,
) -> None:
    """Publish events to the topic, paced by --rate or --speed, and print what was published."""
    check_json_target(json_path)
    if broker.partition("://")[0] == "memory":
        raise InvalidArgumentError(
            "--broker: memory:// is refused: the embedded broker would live and die inside this "
            "process; publish to the workers' broker, pulsar://host:6650"
        )
    if history is not None:
        check_writable(history, "--history")
    config = PublishConfig(
        broker_url=broker,
        broker_options=broker_options(
            broker,
            pulsar_admin_url,
            pulsar_token=pulsar_token,
            pulsar_token_file=pulsar_token_file,
            pulsar_tls_trust_certs=pulsar_tls_trust_certs,
            pulsar_tls_allow_insecure=pulsar_tls_allow_insecure,
            pulsar_tls_validate_hostname=pulsar_tls_validate_hostname,
        ),
        topic=topic,
        events_path=events,
        workload=BlackFridaySpec(subscribers=subscribers, seed=seed, bot_views=bot_views),
        skip=skip,
        count=count,
        rate=rate,
        speed=speed,
        seconds=seconds,
        window=window,
        history_path=history,
    )
    interrupted: list[str] = []
    summary = asyncio.run(_publish(config, interrupted))
    if not json_to_stdout(json_path):
        early = f" (stopped early: {interrupted[0] if interrupted else 'time'})"
        lost = f"; {summary.unconfirmed:,} not confirmed" if summary.unconfirmed else ""
        typer.echo(
            f"published {summary.published:,} of {summary.selected:,} events in "
            f"{summary.seconds:.2f} s: {summary.rate:,.0f} events/s"
            f"{early if summary.stopped_early else ''}{lost}"
        )
    write_json(json_path, summary.as_dict())
    if "SIGINT" in interrupted:
        raise typer.Exit(EXIT_INTERRUPTED)
