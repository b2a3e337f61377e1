"""``keylane worker``: one long-running worker process on real Pulsar and a shared store.

Thin: flags (each also a ``KEYLANE_*`` variable, read by
:class:`keylane.runtime.settings.WorkerSettings`; a flag wins) to settings, JSON logs on standard
error, then :class:`keylane.service.worker.WorkerProcess`. Exit codes: 0 drained after SIGTERM
or SIGINT; 1 the drain did not finish in time; 2 bad settings or a backend that cannot be
reached at start (one ``error:`` line); 130 a second signal.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from keylane.cli.options import (
    PulsarAllowInsecureOption,
    PulsarTokenFileOption,
    PulsarTokenOption,
    PulsarTrustCertsOption,
    PulsarValidateHostnameOption,
    broker_options,
)
from keylane.runtime.settings import WorkerSettings
from keylane.service.logs import configure_logging
from keylane.service.worker import WorkerProcess

__all__ = ["worker_command"]

_URL = "URL"


def _time(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            f"must be an ISO-8601 time with a zone (2026-11-27T05:00:00Z), got {text!r}"
        ) from None


def worker_command(
    broker: Annotated[
        str | None,
        typer.Option(metavar=_URL, help="pulsar://host:6650 [KEYLANE_BROKER_URL]; required."),
    ] = None,
    pulsar_admin_url: Annotated[
        str | None,
        typer.Option(metavar=_URL, help="Pulsar admin REST URL [KEYLANE_PULSAR_ADMIN_URL]."),
    ] = None,
    pulsar_token: PulsarTokenOption = None,
    pulsar_token_file: PulsarTokenFileOption = None,
    pulsar_tls_trust_certs: PulsarTrustCertsOption = None,
    pulsar_tls_allow_insecure: PulsarAllowInsecureOption = None,
    pulsar_tls_validate_hostname: PulsarValidateHostnameOption = None,
    store: Annotated[
        str | None,
        typer.Option(
            metavar=_URL,
            help="postgresql://user@host/db, or sqlite:///path for workers on one host "
            "[KEYLANE_STORE_URL]; required.",
        ),
    ] = None,
    journeys: Annotated[
        Path | None,
        typer.Option(help="Journeys file (TOML); the packaged default [KEYLANE_JOURNEYS]."),
    ] = None,
    sms_webhook: Annotated[
        str | None, typer.Option(metavar=_URL, help="Where SMS go [KEYLANE_SMS_WEBHOOK].")
    ] = None,
    email_webhook: Annotated[
        str | None, typer.Option(metavar=_URL, help="Where email goes [KEYLANE_EMAIL_WEBHOOK].")
    ] = None,
    gateway: Annotated[
        str | None,
        typer.Option(
            metavar=_URL,
            help="A gateway's base URL: <URL>/v1/messages for every channel without a webhook "
            "[KEYLANE_GATEWAY_URL].",
        ),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(
            help="Unique per process; consumers are <name>-<n>. Default <hostname>-<pid> "
            "[KEYLANE_WORKER_NAME]."
        ),
    ] = None,
    topic: Annotated[str | None, typer.Option(help="Events topic [KEYLANE_TOPIC].")] = None,
    subscription: Annotated[
        str | None, typer.Option(help="Key_Shared subscription [KEYLANE_SUBSCRIPTION].")
    ] = None,
    consumers: Annotated[
        int | None,
        typer.Option(help="Key_Shared consumers in this process; 1 [KEYLANE_CONSUMERS]."),
    ] = None,
    max_in_flight: Annotated[
        int | None,
        typer.Option(help="Decisions at once per consumer; 256 [KEYLANE_MAX_IN_FLIGHT]."),
    ] = None,
    speed: Annotated[
        float | None,
        typer.Option(help="Run on a scaled clock this fast (tests, chaos) [KEYLANE_SPEED]."),
    ] = None,
    clock_start: Annotated[
        datetime | None,
        typer.Option(
            parser=_time,
            metavar="TIME",
            help="The scaled clock's start, ISO-8601 with a zone [KEYLANE_CLOCK_START].",
        ),
    ] = None,
    history: Annotated[
        Path | None,
        typer.Option(
            help="Append every decision attempt to this JSON Lines file, for `keylane check` "
            "[KEYLANE_HISTORY]."
        ),
    ] = None,
    health_port: Annotated[
        int | None,
        typer.Option(
            help="Serve /healthz and /readyz on 127.0.0.1:PORT; 0 none [KEYLANE_HEALTH_PORT]."
        ),
    ] = None,
    grace: Annotated[
        float | None,
        typer.Option(help="Seconds a drain lets decisions in flight finish; 10 [KEYLANE_GRACE]."),
    ] = None,
    handler_timeout: Annotated[
        float | None,
        typer.Option(
            help="Seconds one decision attempt may take (3 attempts, then the dead-letter "
            "topic); 30 [KEYLANE_HANDLER_TIMEOUT]."
        ),
    ] = None,
    stats_interval: Annotated[
        float | None,
        typer.Option(help="Seconds between stats log lines; 10 [KEYLANE_STATS_INTERVAL]."),
    ] = None,
    json_logs: Annotated[
        bool | None,
        typer.Option(
            "--json-logs/--no-json-logs",
            help="One JSON object per log line on standard error; on [KEYLANE_JSON_LOGS].",
        ),
    ] = None,
    log_level: Annotated[
        str | None,
        typer.Option(help="debug, info, warning or error; info [KEYLANE_LOG_LEVEL]."),
    ] = None,
    fault_hooks: Annotated[
        bool | None,
        typer.Option(
            "--fault-hooks/--no-fault-hooks",
            help="TEST ONLY: the chaos harness's hooks (events marked 'chaos' hang or slow "
            "down); off [KEYLANE_FAULT_HOOKS].",
        ),
    ] = None,
) -> None:
    """Run a worker: decide the topic's events, commit them, send, fire timers; drain on SIGTERM.

    Every flag can come from its KEYLANE_* variable instead (in brackets); a flag wins.
    """
    settings = WorkerSettings.from_env(
        broker_url=broker,
        pulsar_admin_url=pulsar_admin_url,
        pulsar_token=pulsar_token,
        pulsar_token_file=pulsar_token_file,
        pulsar_tls_trust_certs=pulsar_tls_trust_certs,
        pulsar_tls_allow_insecure=pulsar_tls_allow_insecure,
        pulsar_tls_validate_hostname=pulsar_tls_validate_hostname,
        store_url=store,
        journeys_path=journeys,
        sms_webhook=sms_webhook,
        email_webhook=email_webhook,
        gateway_url=gateway,
        name=name,
        topic=topic,
        subscription=subscription,
        consumers=consumers,
        max_in_flight=max_in_flight,
        speed=speed,
        clock_start=clock_start,
        history_path=history,
        health_port=health_port,
        grace=grace,
        handler_timeout=handler_timeout,
        stats_interval=stats_interval,
        json_logs=json_logs,
        log_level=log_level,
        fault_hooks=fault_hooks,
    )
    configure_logging(
        json_lines=settings.json_logs, level=settings.log_level, static={"worker": settings.name}
    )
    process = WorkerProcess(
        settings, broker_options=broker_options(settings.broker_url, settings.pulsar_admin_url)
    )
    code = asyncio.run(process.run())
    raise typer.Exit(code)
