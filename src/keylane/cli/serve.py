"""``keylane serve``: the HTTP ingest API, the admin views, metrics and tracing with the worker(s)
in one process, on the embedded defaults (memory broker, a SQLite file, the embedded gateway).

Thin: options to a :class:`~keylane.service.serve.ServeConfig`, the token from
``KEYLANE_API_TOKEN`` (or a generated one, printed), traces to ``OTEL_EXPORTER_OTLP_ENDPOINT``
when set, then :func:`~keylane.service.serve.serve` until Ctrl-C or SIGTERM. Prints the URL and
the token on standard output; logs (masked) go to standard error. Exit 0 after a signal, 2 on
bad options or a backend that cannot start.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from keylane.cli.options import (
    AdminUrlOption,
    BrokerOption,
    PulsarAllowInsecureOption,
    PulsarTokenFileOption,
    PulsarTokenOption,
    PulsarTrustCertsOption,
    PulsarValidateHostnameOption,
    broker_options,
)
from keylane.runtime import settings
from keylane.service.logs import configure_logging
from keylane.service.pipeline import PipelineConfig
from keylane.service.serve import ServeConfig, ServeInfo, serve
from keylane.web.api import ApiConfig
from keylane.web.dashboard import dashboard_url

__all__ = ["print_serving", "serve_command"]


def print_serving(info: ServeInfo) -> None:
    """The lines an operator needs: where the API is and its token."""
    origin = "generated; set KEYLANE_API_TOKEN to choose one" if info.token_generated else "set"
    typer.echo(f"keylane API on {info.url}  (POST {info.url}/v1/events, GET {info.url}/metrics)")
    typer.echo(f"API token: {info.token}  ({origin})")
    typer.echo(f"dashboard: {dashboard_url(info.url, info.token)}")
    if info.gateway_url is not None:
        typer.echo(f"embedded gateway on {info.gateway_url}")
    typer.echo(f"state store: {info.store_url}; tracing: {'OTLP' if info.tracing else 'off'}")


def serve_command(
    host: Annotated[
        str, typer.Option(help="Interface to listen on (127.0.0.1: this machine only).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port (0: a free one).")] = 8000,
    broker: BrokerOption = "memory://",
    pulsar_admin_url: AdminUrlOption = None,
    pulsar_token: PulsarTokenOption = None,
    pulsar_token_file: PulsarTokenFileOption = None,
    pulsar_tls_trust_certs: PulsarTrustCertsOption = None,
    pulsar_tls_allow_insecure: PulsarAllowInsecureOption = None,
    pulsar_tls_validate_hostname: PulsarValidateHostnameOption = None,
    store: Annotated[
        str | None,
        typer.Option(help="sqlite:///path, postgresql://... or memory://; default a SQLite file."),
    ] = None,
    journeys: Annotated[
        Path | None, typer.Option(help="A journeys file (TOML); the packaged default if omitted.")
    ] = None,
    sms_webhook: Annotated[
        str | None, typer.Option(help="Send SMS to this webhook instead of the embedded gateway.")
    ] = None,
    email_webhook: Annotated[
        str | None, typer.Option(help="Send email to this webhook instead of the embedded gateway.")
    ] = None,
    consumers: Annotated[int, typer.Option(min=1, help="Key_Shared consumers.")] = 2,
    max_batch: Annotated[
        int, typer.Option(min=1, max=100_000, help="Most events per POST /v1/events.")
    ] = 500,
    data_dir: Annotated[
        Path, typer.Option(help="Where the SQLite file and the gateway's log live.")
    ] = Path(".keylane/serve"),
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
) -> None:
    """Serve the ingest API, the admin views and /metrics, with the worker, until Ctrl-C."""
    configure_logging(json_lines=False, level=log_level)
    config = ServeConfig(
        pipeline=PipelineConfig(
            data_dir=data_dir,
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
            history=False,
        ),
        api=ApiConfig(host=host, port=port, token=settings.api_token(), max_batch=max_batch),
        journeys_path=journeys,
        otlp_endpoint=settings.otlp_endpoint(),
        service_name=settings.otel_service_name(),
    )
    asyncio.run(serve(config, print_serving))
    typer.echo("stopped")
