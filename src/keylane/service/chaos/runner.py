"""``run_chaos``: one chaos run from start to verdict (``keylane chaos``, ``make chaos``).

1. Locate the servers (``scripts/services.py env``) and make sure both run.
2. Generate the load: the synthetic Black Friday from 11:00 Eastern (so marketing sends go out
   and the audit has something to judge), enough events for the schedule at ``rate``.
3. Start the gateway, ``workers`` workers (``--fault-hooks``) and the load generator, on a
   fresh topic and a fresh PostgreSQL schema.
4. Inject the schedule's faults one after the other (:mod:`~keylane.service.chaos.faults`).
5. Stop the load, wait until every published event is decided and the outbox has nothing due,
   drain the workers (each must exit 0) and the gateway.
6. Gather the evidence and :func:`~keylane.service.chaos.verify.verify` it; compute each
   fault's recovery time; draw the plot.

Whatever happens, every process the harness started is stopped (``finally``, and an
``atexit`` hook), Pulsar and PostgreSQL are left running and healthy (started again if a fault
or an error left one down), and the run's topics and schema are deleted.

Imports the harness's modules, the workload and the journeys; no CLI.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from keylane._validate import check_int, check_number
from keylane.journeys import Event, JourneySet, load_default_journeys
from keylane.service.chaos.backends import Services
from keylane.service.chaos.cluster import Cluster, ClusterConfig
from keylane.service.chaos.evidence import completions_of, gather, recoveries
from keylane.service.chaos.faults import INJECTORS
from keylane.service.chaos.plot import draw
from keylane.service.chaos.procs import Children
from keylane.service.chaos.report import ChaosReport, FaultRecord
from keylane.service.chaos.schedule import SETTLE, TAIL, FaultSpec, plan
from keylane.service.chaos.verify import verify
from keylane.service.scale_procs import delete_topics, gateway_stats
from keylane.service.schemas import drop_schema
from keylane.state import SendStatus, open_store
from keylane.workload import BlackFridaySpec, generate, write_events_file

__all__ = ["ChaosConfig", "run_chaos"]

#: The load starts at this time of the synthetic day: 11:00 Eastern, 08:00 Pacific.
DAY_START = datetime(2026, 11, 27, 16, tzinfo=UTC)
#: Events of the day per subscriber from DAY_START on (measured on the synthetic day).
EVENTS_PER_SUBSCRIBER = 6.5
#: Seconds the load may need beyond the schedule's last ``at`` (restarts take a while).
LOAD_MARGIN = 200.0


@dataclass(frozen=True, slots=True)
class ChaosConfig:
    """What ``keylane chaos`` runs.

    Args:
        data_dir: where the run's files go (created).
        services_script: ``scripts/services.py`` (the servers, their restarts).
        profile: ``full`` or ``quick``; ``faults`` a subset of its kinds (None: all).
        workers: worker processes at the start (2 to 8).
        rate: events per second of the load (10 to 2,000).
        speed: the workers' engine clock, simulated seconds per real one (1 to 600), so that
            journeys' waits (an hour before a browse-abandonment SMS) end within the run.
        drain_timeout: seconds to wait, after the load, for every event to be decided.
        plot_path: the PNG (None: ``data_dir/chaos.png``).
        seed: the synthetic day's seed.

    Raises:
        InvalidArgumentError: a bad value, naming its option.
    """

    data_dir: Path
    services_script: Path = Path("scripts/services.py")
    profile: str = "full"
    faults: tuple[str, ...] | None = None
    workers: int = 3
    rate: float = 200.0
    speed: float = 30.0
    drain_timeout: float = 180.0
    plot_path: Path | None = None
    seed: int = 2026

    def __post_init__(self) -> None:
        check_int("--workers", self.workers, 2, 8)
        check_number("--rate", self.rate, minimum=10, maximum=2000)
        check_number("--speed", self.speed, minimum=1, maximum=600)
        check_number("drain_timeout", self.drain_timeout, above=0, maximum=3600)
        plan(self.profile, self.faults)  # raises on a bad profile or fault name


def _events(config: ChaosConfig, schedule: tuple[FaultSpec, ...]) -> list[Event]:
    seconds = max(spec.at + spec.duration for spec in schedule) + LOAD_MARGIN
    subscribers = max(2000, math.ceil(config.rate * seconds / EVENTS_PER_SUBSCRIBER))
    day = generate(BlackFridaySpec(subscribers=subscribers, bot_views=0, seed=config.seed))
    return [e for e in day if e.occurred_at >= DAY_START]


async def _until(deadline: float) -> None:
    delay = deadline - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)


async def _wait_decided(cluster: Cluster, timeout: float) -> None:
    expected: set[str] = set()
    for path in [*cluster.publication_paths, cluster.harness_path]:
        with contextlib.suppress(FileNotFoundError):
            for line in path.read_text().splitlines():
                if '"message_id"' in line:
                    expected.add(line.split('"message_id": "', 1)[1].split('"', 1)[0])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        cluster.tail.poll()
        if expected <= cluster.tail.decided:
            return
        await asyncio.sleep(0.5)


async def _wait_outbox(cluster: Cluster, timeout: float) -> None:
    """Until no outbox row is due, retrying or being dispatched (or ``timeout``)."""
    deadline = time.monotonic() + timeout
    async with open_store(cluster.store_url) as store:
        while time.monotonic() < deadline:
            stats = await store.outbox_stats(cluster.engine_now().timestamp())
            retrying = stats.by_status.get(SendStatus.RETRY, 0)
            if stats.oldest_pending_age == 0 and stats.dispatching == 0 and retrying == 0:
                return
            await asyncio.sleep(1.0)


def _error_lines(cluster: Cluster) -> list[str]:
    """One note per worker whose log has error lines: how many, and the first one's message."""
    notes = []
    for name in sorted(cluster.names_ever):
        errors = []
        with contextlib.suppress(OSError):
            for line in (cluster.dir / f"{name}.log").read_text(errors="replace").splitlines():
                if '"level":"error"' in line:
                    errors.append(line)
        if errors:
            try:
                record = json.loads(errors[0])
                first = f"{record.get('message') or record.get('event')}: "
                first += str(record.get("error", "")).strip().splitlines()[-1:][0][:160]
            except (ValueError, IndexError):
                first = errors[0][:200]
            notes.append(f"{name}: {len(errors)} error log lines, the first: {first}")
    return notes


async def run_chaos(
    config: ChaosConfig, progress: Callable[[str], None] | None = None
) -> ChaosReport:
    """Run the schedule against real processes; return the report (see the module docstring).

    Raises:
        InvalidArgumentError: bad options (a missing services script, ...).
        keylane.service.chaos.procs.ChaosError: the harness could not run (a process or a
            server did not start).
    """
    say = progress or (lambda text: None)
    schedule = plan(config.profile, config.faults)
    started = time.monotonic()
    services = await Services.locate(config.services_script)
    config.data_dir.mkdir(parents=True, exist_ok=True)
    say(f"servers: {services.broker_url}, {services.store_url}; starting them if needed")
    await services.ensure_up()
    events = await asyncio.to_thread(_events, config, schedule)
    events_path = config.data_dir / "events.jsonl"
    await asyncio.to_thread(write_events_file, events_path, events)
    journeys = await asyncio.to_thread(load_default_journeys)
    children = Children()
    cluster = Cluster(
        services,
        ClusterConfig(config.data_dir, config.rate, config.speed),
        children,
        events_path,
        events[0].occurred_at,
    )
    try:
        return await _run(config, schedule, cluster, events, journeys, say, started)
    finally:
        await cluster.stop_watching()
        await children.close()
        await cluster.close_log()
        try:
            await services.ensure_up()
        finally:
            await delete_topics(services.admin_url, [cluster.topic, cluster.dlq_topic])
            await drop_schema(services.store_url, cluster.schema)


async def _run(
    config: ChaosConfig,
    schedule: tuple[FaultSpec, ...],
    cluster: Cluster,
    events: list[Event],
    journeys: JourneySet,
    say: Callable[[str], None],
    started: float,
) -> ChaosReport:
    url = await cluster.start_gateway()
    names = [f"w{i}" for i in range(1, config.workers + 1)]
    await asyncio.gather(*(cluster.start_worker(name) for name in names))
    say(f"gateway {url}; workers {', '.join(names)} ready; load {config.rate:g} events/s")
    origin = time.monotonic()
    await cluster.start_load()
    cluster.watch()
    faults: list[FaultRecord] = []
    last_end = origin
    for spec in schedule:
        await _until(max(origin + spec.at, last_end + SETTLE))
        say(f"+{time.monotonic() - origin:6.1f} s  {spec.kind.value} ...")
        record = await INJECTORS[spec.kind](cluster, spec)
        faults.append(record)
        last_end = record.ended
        say(f"+{record.ended - origin:6.1f} s  {spec.kind.value}: {record.detail}")
    await _until(last_end + TAIL)
    summary = await cluster.stop_load()
    load_seconds = time.monotonic() - origin
    say(f"load stopped after {load_seconds:.0f} s; waiting for every event to be decided")
    await _wait_decided(cluster, config.drain_timeout)
    await _wait_outbox(cluster, 90.0)
    cluster.expect_alive()
    stats = await gateway_stats(cluster.gateway_url)
    await cluster.stop_all()
    say("verifying the histories, the dead letters, the outbox and the gateway's log")
    evidence, log = await gather(cluster, events, journeys, int(str(stats["duplicate_deliveries"])))
    verification = await asyncio.to_thread(verify, evidence)
    measured = recoveries(faults, evidence.history, log, cluster.hang_event, cluster.zombie_marks)
    plot_path = config.plot_path or config.data_dir / "chaos.png"
    published = sum(1 for p in evidence.history.published)
    broken = [i.name for i in verification.invariants if not i.ok]
    title = (
        f"keylane chaos ({config.profile}): {published:,} events at {config.rate:g}/s, "
        f"{config.workers} workers; "
        + (f"VIOLATED: {', '.join(broken)}" if broken else "every invariant held")
    )
    try:
        plot: str | None = str(
            await asyncio.to_thread(
                draw,
                plot_path,
                completions_of(evidence.history),
                measured,
                origin,
                rate=config.rate,
                title=title,
            )
        )
    except ImportError as exc:
        plot = None
        cluster.incidents.append(f"no plot: {exc}")
    notes = [f"load generator: {summary}"] if summary else []
    notes.extend(_error_lines(cluster))
    startup = [c.origin - c.spawned for c in cluster.clocks]
    notes.append(
        f"engine clocks at speed {config.speed:g}: start-up times "
        f"{min(startup):.1f}-{max(startup):.1f} s, so the workers' clocks differ by up to "
        f"{(max(startup) - min(startup)) * config.speed:.0f} simulated seconds"
    )
    return ChaosReport(
        profile=config.profile,
        origin=origin,
        seconds=time.monotonic() - started,
        load_seconds=load_seconds,
        published=published,
        rate=config.rate,
        workers=config.workers,
        faults=tuple(measured),
        invariants=verification.invariants,
        incidents=tuple(cluster.incidents),
        data_dir=str(config.data_dir),
        plot=plot,
        notes=tuple(notes),
    )
