"""``keylane run``: the main job; a simulated Black Friday through the whole system.

Thin: options to a :class:`~keylane.service.RunConfig`, then :func:`~keylane.service.run_day`,
then the report. Exit 0 when the gateway saw no duplicate, the audit no compliance violation and
the checker nothing; 1 otherwise; 2 bad input (reported by :mod:`keylane.cli.errors`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from keylane.cli.errors import EXIT_VERDICT
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
    json_to_stdout,
    write_json,
)
from keylane.cli.render.run import RunDisplay, render_run
from keylane.runtime import settings
from keylane.service import PipelineConfig, RunConfig, run_day
from keylane.web.api import ApiConfig
from keylane.web.dashboard import dashboard_url
from keylane.workload import BlackFridaySpec

__all__ = ["run_command"]


def _data_dir(base: Path) -> Path:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return base / f"run-{stamp}"


def run_command(
    events: Annotated[
        Path | None,
        typer.Option(help="Replay this JSON Lines file of events instead of the built-in day."),
    ] = None,
    journeys: Annotated[
        Path | None, typer.Option(help="A journeys file (TOML); the packaged default if omitted.")
    ] = None,
    speed: Annotated[
        float, typer.Option(min=0.001, help="Simulated seconds per real second (1440: a day/min).")
    ] = 1440.0,
    subscribers: Annotated[
        int, typer.Option(min=1, help="Subscribers of the built-in day.")
    ] = 5_000,
    seed: Annotated[int, typer.Option(help="Seed of the built-in day.")] = 2026,
    store: Annotated[
        str | None,
        typer.Option(help="sqlite:///path, postgresql://... or memory://; default a SQLite file."),
    ] = None,
    broker: BrokerOption = "memory://",
    pulsar_admin_url: AdminUrlOption = None,
    pulsar_token: PulsarTokenOption = None,
    pulsar_token_file: PulsarTokenFileOption = None,
    pulsar_tls_trust_certs: PulsarTrustCertsOption = None,
    pulsar_tls_allow_insecure: PulsarAllowInsecureOption = None,
    pulsar_tls_validate_hostname: PulsarValidateHostnameOption = None,
    sms_webhook: Annotated[
        str | None, typer.Option(help="Send SMS to this webhook instead of the embedded gateway.")
    ] = None,
    email_webhook: Annotated[
        str | None, typer.Option(help="Send email to this webhook instead of the embedded gateway.")
    ] = None,
    consumers: Annotated[int, typer.Option(min=1, help="Key_Shared consumers.")] = 4,
    data_dir: Annotated[
        Path, typer.Option(help="Where each run keeps its files (a run-<time> folder inside).")
    ] = Path(".keylane"),
    json_path: JsonOption = None,
    serve: Annotated[
        bool,
        typer.Option(help="Serve the HTTP API and /metrics while the day runs (URL printed)."),
    ] = True,
    port: Annotated[
        int, typer.Option(min=0, max=65535, help="The API's port on 127.0.0.1 (0: a free one).")
    ] = 0,
) -> None:
    """Run a simulated shopping day through keylane and check what it sent."""
    check_json_target(json_path)
    api = ApiConfig(port=port, token=settings.api_token()) if serve else None
    workdir = _data_dir(data_dir)
    config = RunConfig(
        pipeline=PipelineConfig(
            data_dir=workdir,
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
            store_url=store,
            sms_webhook=sms_webhook,
            email_webhook=email_webhook,
            consumers=consumers,
            speed=speed,
        ),
        events_path=events,
        workload=BlackFridaySpec(subscribers=subscribers, seed=seed),
        journeys_path=journeys,
        speed=speed,
        api=api,
    )
    quiet = json_to_stdout(json_path)
    console = Console(stderr=quiet)
    if not quiet:
        console.print(
            "[bold]keylane run[/bold]: a simulated Black Friday" if events is None
            else f"[bold]keylane run[/bold]: replaying {events}",
            highlight=False,
        )  # fmt: skip

    def serving(url: str, token: str) -> None:
        console.print(
            f"API and metrics on {url}  (token: {token})", highlight=False, soft_wrap=True
        )
        console.print(f"Dashboard: {dashboard_url(url, token)}", highlight=False, soft_wrap=True)

    with RunDisplay.create() as display:
        report = asyncio.run(run_day(config, None if quiet else display, serving))
    if not quiet:
        console.print(render_run(report))
    write_json(json_path, report.to_json())
    if not report.ok:
        raise typer.Exit(EXIT_VERDICT)
