"""The ``keylane worker`` process: the runtime's :class:`~keylane.runtime.Worker` as a daemon.

:class:`WorkerProcess` builds everything from :class:`~keylane.runtime.settings.WorkerSettings`
(the Pulsar broker, the state store, the webhook providers, the journeys, the clock, the
history file), runs the worker until a signal and drains it:

- **SIGTERM or SIGINT**: stop receiving, let the decisions in flight finish within ``grace``,
  leave the rest unacked (the broker redelivers them to the keys' new owners), stop the relay
  and the timers, close everything, exit 0. A drain that does not end within
  ``2 * grace + 15`` seconds exits 1 (logged as ``drain_timeout``).
- **A second signal**: exit at once with 130 (the history file is already flushed: every
  attempt is written to the OS before its message is acked).

Logs are events of note, one JSON line each (:mod:`keylane.service.logs`): ``started`` (with
the settings, passwords masked), ``consumer_joined``/``consumer_left``/``consumer_lost``,
``store_unavailable``/``store_available``, ``relay_failures``, ``dead_lettered``, ``stats``
(every ``stats_interval``), ``draining``, ``stopped``. ``/healthz`` and ``/readyz`` are served by
:class:`keylane.web.health.HealthServer` when ``health_port`` is set.

Imports the runtime, the contracts' factories, the providers and ``web.health``; no CLI.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import NoReturn

from keylane.brokers import connect
from keylane.check import HistoryRecorder
from keylane.clock import Clock, ScaledClock, SystemClock
from keylane.journeys import JourneySet, load_default_journeys, load_journeys
from keylane.lanes import ExhaustedPolicy, Handler, LaneConfig
from keylane.providers import ChannelRouter, WebhookProvider
from keylane.runtime import (
    RelayConfig,
    Worker,
    WorkerConfig,
)
from keylane.runtime.settings import WorkerSettings
from keylane.service.gc_policy import engine_gc
from keylane.service.logs import log_event
from keylane.service.worker_monitor import WorkerMonitor, summary
from keylane.state import StateStore, open_store
from keylane.web.health import HealthServer

__all__ = ["EXIT_DRAIN_TIMEOUT", "EXIT_KILLED", "WorkerProcess"]

logger = logging.getLogger("keylane.worker")

#: The drain did not end in time (``2 * grace + DRAIN_MARGIN`` seconds).
EXIT_DRAIN_TIMEOUT = 1
#: A second signal: exit at once.
EXIT_KILLED = 130
#: Seconds a drain may take beyond twice the grace (closing the consumers, the store, ...).
DRAIN_MARGIN = 15.0


def _clock(settings: WorkerSettings) -> Clock:
    if settings.speed is None and settings.clock_start is None:
        return SystemClock()
    return ScaledClock(settings.clock_start or datetime.now(UTC), settings.speed or 1.0)


def worker_config(settings: WorkerSettings) -> WorkerConfig:
    """The runtime's :class:`WorkerConfig` for ``settings`` (engine durations scaled by speed)."""
    speed = settings.speed or 1.0
    return WorkerConfig(
        topic=settings.topic,
        subscription=settings.subscription,
        name=settings.name,
        consumers=settings.consumers,
        lanes=LaneConfig(
            max_in_flight=settings.max_in_flight,
            handler_timeout=settings.handler_timeout,
            max_attempts=3,
            on_exhausted=ExhaustedPolicy.DEAD_LETTER,
            max_buffered_total=max(4 * settings.max_in_flight, 1024),
            shutdown_grace=settings.grace,
        ),
        relay=RelayConfig(lease=30.0 * speed, retry_backoff=speed, retry_backoff_max=60.0 * speed),
        sweep_grace=5.0 * speed,
    )


def _fault_hooks() -> Callable[[Handler, WorkerConfig], Handler]:
    """The chaos harness's test-only hooks (``--fault-hooks``), imported only when asked for."""
    from keylane.service.chaos.hooks import fault_hooks

    return fault_hooks


def _open_history(path: Path) -> HistoryRecorder:
    """A recorder appending to ``path``, each record written to the OS at once.

    A last line cut short by a crash is ended first, so the new records start on their own
    line (``keylane check --skip-malformed`` then skips the cut one).
    """
    with contextlib.suppress(FileNotFoundError), open(path, "rb+") as file:
        if file.seek(0, os.SEEK_END) > 0:
            file.seek(-1, os.SEEK_END)
            if file.read(1) != b"\n":
                file.write(b"\n")
    return HistoryRecorder(path, append=True, flush_every=1, keep_in_memory=False)


class WorkerProcess:
    """One ``keylane worker``: start, serve until a signal, drain, close.

    Args:
        settings: what to run.
        broker_options: more ``connect()`` options (e.g. the Pulsar client's ``log_file``).
    """

    def __init__(
        self, settings: WorkerSettings, *, broker_options: Mapping[str, object] | None = None
    ) -> None:
        self.settings = settings
        self._broker_options = dict(broker_options or {})
        if settings.pulsar_admin_url is not None:
            self._broker_options.setdefault("admin_url", settings.pulsar_admin_url)
        for option, value in settings.pulsar_options().items():  # the token and TLS
            self._broker_options.setdefault(option, value)
        self.worker: Worker | None = None
        self.health: HealthServer | None = None
        self._store: StateStore | None = None
        self._recorder: HistoryRecorder | None = None
        self._phase = "starting"
        self._stop = asyncio.Event()
        self._signal: str | None = None
        self.monitor: WorkerMonitor | None = None
        self._saved_handlers: dict[signal.Signals, signal._HANDLER] = {}

    # -- readiness ---------------------------------------------------------------------------

    def readiness(self) -> str | None:
        """None when ready; else why not (starting, draining, the store, a consumer)."""
        if self._phase != "running" or self.worker is None:
            return self._phase
        error = None if self.monitor is None else self.monitor.store_error
        if error is not None:
            return f"state store unreachable: {error}"
        stats = self.worker.group.stats().by_consumer
        if not stats:
            return "no consumer subscribed"
        for name, lanes in stats.items():
            if lanes.consumer_closed or not lanes.receiving:
                return f"consumer {name} is not receiving"
        return None

    # -- signals -----------------------------------------------------------------------------

    def request_stop(self, why: str = "requested") -> None:
        """Begin the drain (what the first SIGTERM or SIGINT does)."""
        if self._signal is None:
            self._signal = why
        self._stop.set()

    def _on_signal(self, signum: int) -> None:
        name = signal.Signals(signum).name
        if self._stop.is_set():
            self._exit_now(name)
        self.request_stop(name)
        # From here a second signal ends the process even if the loop is busy draining.
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
            signal.signal(sig, self._on_second_signal)

    def _on_second_signal(self, signum: int, frame: FrameType | None) -> None:
        self._exit_now(signal.Signals(signum).name)

    def _exit_now(self, name: str) -> NoReturn:
        with contextlib.suppress(Exception):
            if self._recorder is not None:
                self._recorder.flush()
            log_event(logger, "killed", level=logging.WARNING, signal=name, exit_code=EXIT_KILLED)
            for handler in logging.getLogger().handlers:
                handler.flush()
        os._exit(EXIT_KILLED)

    def _install_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._saved_handlers[sig] = signal.getsignal(sig)
            loop.add_signal_handler(sig, self._on_signal, sig)

    def _restore_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for sig, handler in self._saved_handlers.items():
            loop.remove_signal_handler(sig)
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)

    # -- running -----------------------------------------------------------------------------

    async def run(self) -> int:
        """Start, serve until :meth:`request_stop` or a signal, drain; return the exit code.

        Raises:
            KeylaneError: the settings cannot be served (a journeys file, the broker, the
                store, the history file); whatever had started is closed again.
        """
        self._install_signals()
        stack = contextlib.AsyncExitStack()
        stack.enter_context(engine_gc())
        try:
            if self.settings.health_port:
                self.health = HealthServer(self.readiness, self.settings.health_port)
                await self.health.start()
                stack.push_async_callback(self.health.stop)
            starting = asyncio.create_task(self._start(stack))
            stopping = asyncio.create_task(self._stop.wait())
            await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if not starting.done():
                starting.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await starting
                log_event(logger, "stopped", signal=self._signal, during="start")
                return 0
            stopping.cancel()
            starting.result()
            return await self._serve()
        finally:
            self._phase = "stopped"
            try:
                async with asyncio.timeout(DRAIN_MARGIN):
                    await stack.aclose()
            except TimeoutError:
                log_event(logger, "close_timeout", level=logging.ERROR, seconds=DRAIN_MARGIN)
            finally:
                self._restore_signals()

    async def _start(self, stack: contextlib.AsyncExitStack) -> None:
        settings = self.settings
        path = settings.journeys_path
        journeys: JourneySet = await asyncio.to_thread(
            load_default_journeys if path is None else lambda: load_journeys(path)
        )
        clock = _clock(settings)
        gateway = None if settings.gateway_url is None else f"{settings.gateway_url}/v1/messages"
        sms, email = settings.sms_webhook or gateway, settings.email_webhook or gateway
        assert sms is not None  # WorkerSettings checks both
        assert email is not None
        router = ChannelRouter({"sms": WebhookProvider(sms), "email": WebhookProvider(email)})
        provider = await stack.enter_async_context(router)
        broker = await stack.enter_async_context(
            connect(settings.broker_url, **self._broker_options)
        )
        self._store = await stack.enter_async_context(
            open_store(settings.store_url, clock=lambda: clock.now().timestamp())
        )
        if settings.history_path is not None:
            self._recorder = _open_history(settings.history_path)
            stack.callback(self._recorder.close)
        worker = Worker(
            broker,
            self._store,
            provider,
            journeys,
            clock,
            worker_config(settings),
            history=self._recorder,
            wrap_handler=_fault_hooks() if settings.fault_hooks else None,
        )
        self.monitor = WorkerMonitor(self._store, settings.stats_interval)
        worker.handler.add_observer(self.monitor.observe)
        try:
            await worker.start()
        except BaseException:
            await worker.stop(grace=0)
            raise
        self.worker = worker
        stack.push_async_callback(self._stop_worker, 0.0)

    async def _stop_worker(self, grace: float) -> None:
        worker, self.worker = self.worker, None
        if worker is not None:
            await worker.stop(grace)

    async def _serve(self) -> int:
        worker = self.worker
        assert worker is not None
        settings = self.settings
        self._phase = "running"
        log_event(
            logger,
            "started",
            pid=os.getpid(),
            settings=settings.describe(),
            consumers=list(worker.group.consumer_names),
            health_url=None if self.health is None else self.health.url,
        )
        for name in worker.group.consumer_names:
            log_event(logger, "consumer_joined", consumer=name)
        assert self.monitor is not None
        monitor = asyncio.create_task(self.monitor.run(worker))
        try:
            await self._stop.wait()
        finally:
            monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await monitor
        return await self._drain(worker)

    async def _drain(self, worker: Worker) -> int:
        grace = self.settings.grace
        self._phase = "draining"
        names = list(worker.group.consumer_names)
        before = worker.stats().lanes.total
        log_event(
            logger,
            "draining",
            signal=self._signal,
            grace=grace,
            buffered=before.buffered,
            in_flight_keys=len(before.in_flight_keys),
        )
        code = 0
        started = time.monotonic()
        try:
            async with asyncio.timeout(2 * grace + DRAIN_MARGIN):
                await self._stop_worker(grace)
        except TimeoutError:
            log_event(
                logger, "drain_timeout", level=logging.ERROR, seconds=2 * grace + DRAIN_MARGIN
            )
            code = EXIT_DRAIN_TIMEOUT
        for name in names:
            log_event(logger, "consumer_left", consumer=name)
        stats = worker.stats()
        log_event(
            logger,
            "stopped",
            signal=self._signal,
            drain_seconds=round(time.monotonic() - started, 3),
            left_unacked=stats.lanes.total.abandoned,
            **summary(stats),
        )
        return code
