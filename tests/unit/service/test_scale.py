"""The scale-out benchmark's own logic: CPU readings, the history tail, the verdict lines."""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path

import pytest
from rich.console import Console

from keylane.cli.render.scale import WIDTH, scale_lines, scale_table
from keylane.service.procstat import (
    children_of,
    find_postmaster,
    machine_cpu,
    process_cpu,
    read_pid_file,
    tree_cpu,
)
from keylane.service.scale import (
    Cpu,
    ScalePoint,
    ScaleReport,
    ceiling,
    cpu_per_event,
    flattening,
    saturation,
)
from keylane.service.scale_procs import DecisionTail
from keylane.service.schemas import with_schema


def test_process_cpu_grows_while_this_process_computes() -> None:
    before = process_cpu(os.getpid())
    assert before is not None
    deadline = time.process_time() + 0.3
    while time.process_time() < deadline:
        pass
    after = process_cpu(os.getpid())
    assert after is not None
    assert after - before >= 0.2  # /proc counts in clock ticks
    assert (tree_cpu(os.getpid()) or 0.0) >= after


def test_a_gone_process_reads_as_none(tmp_path: Path) -> None:
    gone = 2**22 + 12345  # above Linux's default pid_max
    assert process_cpu(gone) is None
    assert tree_cpu(gone) is None
    assert children_of(gone) == []
    (tmp_path / "x.pid").write_text(f"{gone}\n")
    assert read_pid_file(tmp_path / "x.pid") is None
    (tmp_path / "me.pid").write_text(f"{os.getpid()}\n")
    assert read_pid_file(tmp_path / "me.pid") == os.getpid()
    assert read_pid_file(tmp_path / "missing.pid") is None


def test_machine_cpu_counts_busy_below_total() -> None:
    first = machine_cpu()
    assert 0 < first.busy < first.total
    assert machine_cpu().total >= first.total


@pytest.mark.postgres
def test_find_postmaster_finds_the_test_server(postgres_url: str) -> None:
    port = int(postgres_url.rsplit(":", 1)[1].split("/")[0])
    pid = find_postmaster(port)
    assert pid is not None
    assert (tree_cpu(pid) or 0.0) > 0


def test_the_tail_reads_complete_lines_only(tmp_path: Path) -> None:
    path = tmp_path / "w.jsonl"
    tail = DecisionTail([path, tmp_path / "not-yet.jsonl"])
    assert tail.poll() == 0
    ok = {"message_id": "m1", "outcome": "ok", "committed": 5.0, "end": 5.1}
    with open(path, "w") as file:
        file.write(json.dumps(ok) + "\n")
        file.write(json.dumps({"message_id": "m2", "outcome": "unavailable", "end": 6.0}) + "\n")
        file.write('{"message_id": "m3", "outco')  # being written
    assert tail.poll() == 1
    with open(path, "a") as file:
        file.write('me": "dedupe", "end": 7.0}\n')
        file.write(json.dumps({**ok, "committed": 9.0}) + "\n")  # m1 again: first commit kept
    assert tail.poll() == 2
    assert tail.decided == {"m1", "m3"}
    assert tail.committed == {"m1": 5.0}


def test_with_schema_replaces_or_adds_the_schema() -> None:
    assert with_schema("postgresql://k@h:1/db", "s1") == "postgresql://k@h:1/db?schema=s1"
    assert (
        with_schema("postgresql://k@h/db?sslmode=require&schema=old", "s2")
        == "postgresql://k@h/db?sslmode=require&schema=s2"
    )


CPU = Cpu(
    seconds=2.0, broker=0.3, store=0.2, workers=0.9, worker_max=0.9, gateway=0.05, publisher=0.1,
    machine=1.6, other=0.05,
)  # fmt: skip


def point(n: int, rate: float, **cpu: float) -> ScalePoint:
    return ScalePoint(
        workers=n,
        events=1000,
        seconds=1000 / rate,
        events_per_second=rate,
        saturation_p50_ms=1.0,
        saturation_p99_ms=2.0,
        latency_rate=100.0,
        latency_events=800,
        latency_p50_ms=1.0,
        latency_p99_ms=2.0,
        cpu=dataclasses.replace(CPU, **cpu),
        checker_clean=True,
        duplicate_deliveries=0,
        deliveries=10,
        exit_codes=(0,) * n,
    )


def test_flattening_names_the_last_point_that_still_paid_off() -> None:
    curve = (point(1, 1000), point(2, 1800), point(4, 1900))
    assert flattening(curve) == "flattens at 2 worker(s): 4 give x1.06 of 2's events/s"
    assert flattening(curve[:2]) == "does not flatten up to 2 workers"
    assert flattening((point(1, 1000), point(2, 900))).startswith("flattens at 1 worker(s)")
    assert flattening(curve[:1]) == "one point: no curve"


def test_saturation_is_computed_from_the_cpu_figures() -> None:
    # The machine busy: the biggest user is named
    busy = point(2, 1000, machine=1.95, workers=1.2, broker=0.5, store=0.1, other=0.0)
    assert saturation(busy, cores=2).startswith("the machine's 2 cores (1.95 busy: workers 1.20")
    assert saturation(busy, cores=2).endswith("workers use the most")
    broker_bound = point(2, 1000, machine=1.9, workers=0.4, broker=1.3, store=0.1, other=0.1)
    assert saturation(broker_bound, cores=2).endswith("broker use the most")
    contended = point(2, 1000, machine=1.9, workers=0.5, broker=0.2, store=0.1, other=1.1)
    assert saturation(contended, cores=2).endswith(
        "other programs use the most (the run was contended)"
    )
    # Cores to spare, but one worker's event loop at a full core
    loop = point(1, 1000, machine=1.2, workers=0.97, worker_max=0.97)
    assert saturation(loop, cores=4) == "the workers' event loops (the busiest at 0.97 of a core)"
    # Neither: waiting on something
    idle = point(1, 1000, machine=0.5, workers=0.3, worker_max=0.3)
    assert saturation(idle, cores=2).startswith("no CPU (0.50 of 2 cores busy")


def test_cpu_per_event_and_the_ceiling_it_implies() -> None:
    # 1000 events over a 2 s window: workers 0.9 cores = 1.8 ms per event, and so on
    p = point(1, 500, workers=0.9, broker=0.3, store=0.2, gateway=0.05, publisher=0.05)
    costs = cpu_per_event(p)
    assert costs == pytest.approx(
        {"workers": 1.8, "broker": 0.6, "store": 0.4, "gateway+publisher": 0.2}
    )
    assert ceiling(p, cores=2) == pytest.approx(2 / 0.003)


def test_the_table_and_the_verdict_lines_render_every_point() -> None:
    points = (point(1, 1000), point(2, 1500, machine=1.95))
    report = ScaleReport(
        points=points,
        cores=2,
        flattens=flattening(points),
        saturates=tuple(saturation(p, 2) for p in points),
    )
    console = Console(record=True, width=WIDTH)
    console.print(scale_table(report))
    table = console.export_text()
    assert "1,500" in table
    assert "1.50" in table  # 2 workers vs 1
    assert "clean" in table
    lines = scale_lines(report)
    assert lines[0] == "curve: does not flatten up to 2 workers"
    assert lines[2].startswith("2 worker(s): saturates the machine's 2 cores")
    assert lines[3].startswith("1 worker(s): CPU ms per event: workers 1.800")
