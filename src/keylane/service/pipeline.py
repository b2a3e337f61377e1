"""The :class:`Pipeline`: broker, state store, provider (the embedded gateway by default), worker.

What ``keylane run`` and ``keylane bench engine`` start: events in on ``worker.config.topic``,
decided one at a time per subscriber and committed with their effects, messages out through the
relay to the gateway. Defaults are the embedded ones: the memory broker (strict delayed delivery
with a 50 ms tick, so timers' wake-ups are on time), a SQLite file under ``data_dir`` and the
embedded gateway on 127.0.0.1 (a free port), with its log under ``data_dir``.

Imports the runtime, the contracts' factories and the gateway (web); no CLI.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from keylane.brokers import connect
from keylane.brokers.base import Broker, Producer
from keylane.brokers.memory import MemoryBroker, MemoryBrokerConfig
from keylane.check import HistoryRecorder
from keylane.clock import Clock
from keylane.errors import InvalidArgumentError
from keylane.journeys import JourneySet
from keylane.lanes import ExhaustedPolicy, Handler, LaneConfig
from keylane.providers import ChannelRouter, Provider, WebhookProvider
from keylane.resource import Startable
from keylane.runtime import RelayConfig, Worker, WorkerConfig
from keylane.service.gc_policy import engine_gc
from keylane.state import StateStore, open_store
from keylane.web.gateway import GatewayServer

__all__ = ["Pipeline", "PipelineConfig"]

logger = logging.getLogger("keylane.service")


@dataclass(frozen=True, slots=True)
class PipelineConfig:
    """Where everything runs.

    Args:
        data_dir: the run's directory (the SQLite file, the gateway's log, the history).
        broker_url: ``memory://`` or ``pulsar://host:6650``.
        broker_options: more ``connect()`` options (``admin_url`` for Pulsar).
        store_url: ``sqlite:///path``, ``postgresql://...`` or ``memory://``; default a SQLite
            file ``state.db`` in ``data_dir``.
        sms_webhook, email_webhook: external gateways; without them the embedded gateway runs.
        consumers: Key_Shared consumers in this process.
        max_in_flight: decisions running at once per consumer.
        speed: the clock's scale; the relay's lease and retry delays are real seconds times it.
        history: record every decision attempt in ``data_dir/history.jsonl`` for the checker.
        group_commit: batch concurrent commits into one transaction.
    """

    data_dir: Path
    broker_url: str = "memory://"
    broker_options: dict[str, object] = field(default_factory=dict)
    store_url: str | None = None
    sms_webhook: str | None = None
    email_webhook: str | None = None
    consumers: int = 4
    max_in_flight: int = 256
    speed: float = 1.0
    history: bool = True
    group_commit: bool = True


class Pipeline(Startable):
    """Starts and stops everything of one :class:`PipelineConfig` (``async with``).

    ``wrap_broker``, ``wrap_handler`` and ``wrap_provider`` (optional) wrap the broker, the
    worker's handler (see :class:`~keylane.runtime.Worker`) and the provider before they are
    used: how :mod:`keylane.observability` traces and times them.
    """

    def __init__(
        self,
        config: PipelineConfig,
        journeys: JourneySet,
        clock: Clock,
        *,
        wrap_broker: Callable[[Broker], Broker] | None = None,
        wrap_handler: Callable[[Handler, WorkerConfig], Handler] | None = None,
        wrap_provider: Callable[[Provider], Provider] | None = None,
    ) -> None:
        if not isinstance(config, PipelineConfig):
            raise InvalidArgumentError(f"config must be a PipelineConfig, not {config!r}")
        self.config = config
        self.journeys = journeys
        self.clock = clock
        self._wrap_broker = wrap_broker
        self._wrap_handler = wrap_handler
        self._wrap_provider = wrap_provider
        self.gateway: GatewayServer | None = None
        self.broker: Broker | None = None
        self.store: StateStore | None = None
        self.provider: Provider | None = None
        self.recorder: HistoryRecorder | None = None
        self.worker: Worker | None = None
        self.producer: Producer | None = None
        self._stack = contextlib.AsyncExitStack()

    @property
    def store_url(self) -> str:
        """The state store's URL (the default SQLite file included)."""
        return self.config.store_url or f"sqlite://{self.config.data_dir.resolve()}/state.db"

    @property
    def gateway_url(self) -> str | None:
        """The embedded gateway's base URL, when it runs."""
        return None if self.gateway is None else self.gateway.url

    async def start(self) -> None:
        """Start the gateway, the broker, the store, the worker and an events producer."""
        config = self.config
        config.data_dir.mkdir(parents=True, exist_ok=True)
        stack = self._stack
        stack.enter_context(engine_gc())
        try:
            if config.sms_webhook is None or config.email_webhook is None:
                self.gateway = GatewayServer(log_path=config.data_dir / "gateway.jsonl")
                await self.gateway.start()
                stack.push_async_callback(self.gateway.stop)
            gateway = None if self.gateway is None else f"{self.gateway.url}/v1/messages"
            sms = config.sms_webhook or gateway
            email = config.email_webhook or gateway
            assert sms is not None
            assert email is not None
            router = ChannelRouter({"sms": WebhookProvider(sms), "email": WebhookProvider(email)})
            provider: Provider = router
            if self._wrap_provider is not None:
                provider = self._wrap_provider(router)
            self.provider = await stack.enter_async_context(provider)
            broker = self._broker()
            if self._wrap_broker is not None:
                broker = self._wrap_broker(broker)
            self.broker = await stack.enter_async_context(broker)
            self.store = await stack.enter_async_context(open_store(self.store_url))
            if config.history:
                self.recorder = HistoryRecorder(config.data_dir / "history.jsonl")
                stack.callback(self.recorder.close)
            self.worker = Worker(
                self.broker,
                self.store,
                self.provider,
                self.journeys,
                self.clock,
                self._worker_config(),
                history=self.recorder,
                wrap_handler=self._wrap_handler,
            )
            await self.worker.start()
            stack.push_async_callback(self.worker.stop)
            self.producer = await self.broker.create_producer(self.worker.config.topic)
            stack.push_async_callback(self.producer.close)
        except BaseException:
            await stack.aclose()
            raise

    def _broker(self) -> Broker:
        config = self.config
        if config.broker_url == "memory://" and not config.broker_options:
            # Ours to configure: wake-ups never early, on a 50 ms tick.
            return MemoryBroker(
                MemoryBrokerConfig(delayed_delivery_strict=True, delayed_delivery_tick=0.05)
            )
        return connect(config.broker_url, **config.broker_options)

    def _worker_config(self) -> WorkerConfig:
        config = self.config
        speed = config.speed
        return WorkerConfig(
            consumers=config.consumers,
            lanes=LaneConfig(
                max_in_flight=config.max_in_flight,
                handler_timeout=30.0,
                max_attempts=3,
                on_exhausted=ExhaustedPolicy.DEAD_LETTER,
                max_buffered_total=max(4 * config.max_in_flight, 1024),
                shutdown_grace=10.0,
            ),
            relay=RelayConfig(
                lease=30.0 * speed,
                retry_backoff=1.0 * speed,
                retry_backoff_max=60.0 * speed,
            ),
            group_commit=config.group_commit,
            sweep_grace=2.0 * speed,
        )

    async def stop(self) -> None:
        """Stop everything, in the reverse order of :meth:`start`."""
        await self._stack.aclose()
