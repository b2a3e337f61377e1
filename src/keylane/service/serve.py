"""``keylane serve``: the HTTP API, metrics and tracing around a worker, in one process.

- :class:`Service` puts the API (:mod:`keylane.web.api`) and the observability
  (:class:`~keylane.observability.Observability`) around one
  :class:`~keylane.service.pipeline.Pipeline`: build the pipeline with :meth:`Service.wrappers`,
  start it, then ``await service.start(pipeline)``. ``keylane run`` does the same while its day
  runs.
- :func:`serve` is ``keylane serve``: a pipeline on the embedded defaults (memory broker, a
  SQLite file, the embedded gateway) on the real clock, the service around it, until SIGINT or
  SIGTERM (or ``stop``).

The token is the configured one or a new random one (:func:`~keylane.web.api.new_token`); once
known it is masked in every log record, as are phone numbers and bearer headers
(:mod:`keylane.observability.redact`).

Imports the pipeline, the observability and the web API; no CLI.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keylane.clock import Clock, SystemClock
from keylane.journeys import JourneySet, load_default_journeys, load_journeys
from keylane.observability import Observability, Tracing
from keylane.observability.redact import install as install_redaction
from keylane.service.pipeline import Pipeline, PipelineConfig
from keylane.web.api import (
    ApiConfig,
    ApiRoute,
    ApiServer,
    ApiState,
    IngestPublisher,
    new_token,
)

__all__ = ["ServeConfig", "ServeInfo", "Service", "serve"]

logger = logging.getLogger("keylane.service")


@dataclass(frozen=True, slots=True)
class ServeInfo:
    """Where the service listens, and its token (for the operator, never for the logs)."""

    url: str
    token: str
    token_generated: bool
    gateway_url: str | None
    store_url: str
    tracing: bool


class Service:
    """The API and the observability of one pipeline.

    Args:
        api: the API's knobs (its token: None generates one).
        journeys: the pipeline's journeys (for the metrics' channels).
        tracing: trace through the broker (None: no tracing).
        routes: more routes for the API's app (the dashboard page).
        access_log: log one (masked) line per request.
    """

    def __init__(
        self,
        api: ApiConfig,
        journeys: JourneySet | None = None,
        *,
        tracing: Tracing | None = None,
        routes: Sequence[ApiRoute] = (),
        access_log: bool = False,
    ) -> None:
        self.config = api
        self.token = api.token or new_token()
        self.token_generated = api.token is None
        self.observability = Observability(
            journeys, tracing=tracing, sample_interval=api.stream_interval
        )
        self._routes = tuple(routes)
        self._access_log = access_log
        self.server: ApiServer | None = None
        self.publisher: IngestPublisher | None = None

    def wrappers(self) -> dict[str, Any]:
        """The ``wrap_*`` keyword arguments for :class:`~keylane.service.pipeline.Pipeline`."""
        obs = self.observability
        return {
            "wrap_broker": obs.wrap_broker,
            "wrap_handler": obs.wrap_handler,
            "wrap_provider": obs.wrap_provider,
        }

    @property
    def url(self) -> str:
        """The API's base URL (after :meth:`start`)."""
        if self.server is None:
            raise RuntimeError("the service is not started")
        return self.server.url

    async def start(self, pipeline: Pipeline) -> str:
        """Attach to a started pipeline, start sampling and listen; returns the URL."""
        worker, store, broker = pipeline.worker, pipeline.store, pipeline.broker
        if worker is None or store is None or broker is None:
            raise RuntimeError("start the pipeline before the service")
        install_redaction([self.token])
        obs = self.observability
        obs.attach(worker, store, broker, pipeline.clock)
        await obs.start()
        self.publisher = IngestPublisher(
            broker, worker.config.topic, timeout=self.config.publish_timeout
        )
        state = ApiState(self.config, self.token, self.publisher, obs)
        self.server = ApiServer(state, routes=self._routes, access_log=self._access_log)
        try:
            url = await self.server.start()
        except BaseException:
            await obs.stop()
            raise
        logger.info("API listening on %s", url)
        return url

    async def stop(self) -> None:
        """Stop listening, sampling and publishing (before the pipeline stops)."""
        if self.server is not None:
            await self.server.stop()
        if self.publisher is not None:
            await self.publisher.close()
        await self.observability.stop()


@dataclass(frozen=True, slots=True)
class ServeConfig:
    """What ``keylane serve`` runs.

    Args:
        pipeline: broker, store, gateway, data directory (embedded defaults).
        api: the API's knobs.
        journeys_path: a journeys file; the packaged default when None.
        otlp_endpoint: export traces over OTLP/HTTP there; None: no tracing.
        service_name: the traces' ``service.name``.
        access_log: log one (masked) line per request.
    """

    pipeline: PipelineConfig
    api: ApiConfig = field(default_factory=ApiConfig)
    journeys_path: Path | None = None
    otlp_endpoint: str | None = None
    service_name: str = "keylane"
    access_log: bool = True


def _journeys(path: Path | None) -> JourneySet:
    return load_default_journeys() if path is None else load_journeys(path)


async def serve(
    config: ServeConfig,
    on_ready: Callable[[ServeInfo], None] | None = None,
    *,
    stop: asyncio.Event | None = None,
    clock: Clock | None = None,
) -> None:
    """Run the pipeline and the service until SIGINT/SIGTERM or ``stop`` is set.

    Raises:
        InvalidArgumentError: a bad journeys file, the port taken.
        KeylaneError: a backend failed to start.
    """
    journeys = await asyncio.to_thread(_journeys, config.journeys_path)
    tracing = (
        None
        if config.otlp_endpoint is None
        else Tracing.otlp(config.otlp_endpoint, service_name=config.service_name)
    )
    broker_kind = "memory" if config.pipeline.broker_url.startswith("memory") else "pulsar"
    if tracing is not None:
        tracing.broker_kind = broker_kind
    service = Service(config.api, journeys, tracing=tracing, access_log=config.access_log)
    pipeline = Pipeline(config.pipeline, journeys, clock or SystemClock(), **service.wrappers())
    done = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    handled: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, done.set)
            handled.append(sig)
    try:
        async with pipeline:
            url = await service.start(pipeline)
            try:
                if on_ready is not None:
                    on_ready(
                        ServeInfo(
                            url=url,
                            token=service.token,
                            token_generated=service.token_generated,
                            gateway_url=pipeline.gateway_url,
                            store_url=pipeline.store_url,
                            tracing=tracing is not None,
                        )
                    )
                await done.wait()
            finally:
                await service.stop()
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)
        if tracing is not None:
            tracing.shutdown()
