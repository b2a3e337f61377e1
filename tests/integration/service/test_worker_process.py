"""``keylane worker``, ``publish`` and ``gateway`` as real processes on real Pulsar and PostgreSQL.

Judges: ``keylane check`` over the merged histories (the publisher's and every worker's) exits
0; the gateway process counts 0 duplicate deliveries; every worker exits 0 after SIGTERM; every
log line is JSON and none holds the store's password, a phone number or an email address of
the workload. Each test has its own topic and PostgreSQL schema.
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from keylane.journeys import Event, parse_event
from keylane.service.schemas import drop_schema
from keylane.workload import BlackFridaySpec, generate, write_events_file
from tests.integration.service.procs import (
    KEYLANE,
    Proc,
    attempts_by_consumer,
    clean_env,
    decided,
    free_port,
    start,
    start_gateway,
    wait_decided,
    wait_ready,
)

PASSWORD = "s3cret-Pw"
#: Mid-morning US time, so marketing sends are inside quiet hours' windows on the worker clock.
SLICE_START = datetime(2026, 11, 27, 16, tzinfo=UTC)
PHONE = re.compile(r"\+1\d{10}")


@pytest.fixture(scope="module")
def workload(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Event]]:
    """2,500 events of the synthetic day from 11:00 Eastern, as a JSONL file."""
    day = generate(BlackFridaySpec(subscribers=2000, bot_views=0, seed=11))
    events = [e for e in day if e.occurred_at >= SLICE_START][:2500]
    path = tmp_path_factory.mktemp("workload") / "events.jsonl"
    write_events_file(path, events)
    return path, events


@pytest.fixture
def topic() -> str:
    return f"persistent://public/default/it-worker-{secrets.token_hex(4)}"


@pytest.fixture
def store_url(postgres_url: str) -> Iterator[str]:
    """The test server with a password in the URL (trust auth ignores it) and a fresh schema."""
    schema = f"it_worker_{secrets.token_hex(4)}"
    base = postgres_url.replace("keylane@", f"keylane:{PASSWORD}@", 1)
    yield f"{base}?schema={schema}"
    asyncio.run(drop_schema(postgres_url, schema))


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[tuple[Proc, str]]:
    proc, url = start_gateway(tmp_path)
    yield proc, url
    proc.signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    assert "stopped:" in proc.log.read_text()


def worker(
    tmp_path: Path,
    name: str,
    *,
    broker: str,
    admin: str,
    store: str,
    gateway: str,
    topic: str,
    start_at: datetime,
    extra: tuple[str, ...] = (),
) -> tuple[Proc, int]:
    port = free_port()
    args = [
        "worker",
        *("--broker", broker, "--pulsar-admin-url", admin, "--store", store),
        *("--gateway", gateway, "--topic", topic, "--name", name),
        *("--history", str(tmp_path / f"{name}.jsonl"), "--health-port", str(port)),
        *("--speed", "1", "--clock-start", start_at.isoformat()),
        *("--stats-interval", "1"),
        *extra,
    ]
    return start(name, args, tmp_path / f"{name}.log"), port


def publish(tmp_path: Path, broker: str, topic: str, events: Path, rate: float) -> Proc:
    args = [
        "publish",
        *("--broker", broker, "--topic", topic, "--events", str(events)),
        *("--rate", str(rate), "--history", str(tmp_path / "published.jsonl")),
    ]
    return start("publish", args, tmp_path / "publish.log")


def published_ids(tmp_path: Path) -> set[str]:
    lines = (tmp_path / "published.jsonl").read_text().splitlines()
    return {json.loads(line)["message_id"] for line in lines}


def assert_clean_logs(procs: list[Proc], events: list[Event]) -> None:
    """Every line JSON; no password, phone number or workload email anywhere."""
    emails = {str(e.properties.get("email")) for e in events if e.properties.get("email")}
    for proc in procs:
        text = proc.log.read_text()
        assert PASSWORD not in text, proc.name
        assert not PHONE.search(text), (proc.name, PHONE.search(text))
        assert not [email for email in emails if email in text], proc.name
        for line in text.splitlines():
            assert isinstance(json.loads(line), dict), line


@pytest.mark.pulsar
@pytest.mark.postgres
@pytest.mark.slow
def test_two_workers_share_a_subscription_and_one_drains_on_sigterm(
    tmp_path: Path,
    pulsar_url: str,
    pulsar_admin_url: str,
    store_url: str,
    topic: str,
    gateway: tuple[Proc, str],
    workload: tuple[Path, list[Event]],
) -> None:
    events_path, events = workload
    _, gateway_url = gateway
    start_worker = functools.partial(
        worker,
        tmp_path,
        broker=pulsar_url,
        admin=pulsar_admin_url,
        store=store_url,
        gateway=gateway_url,
        topic=topic,
        start_at=events[0].occurred_at,
    )
    # Given two workers on one subscription, both ready
    a, port_a = start_worker("pod-a")
    b, port_b = start_worker("pod-b")
    try:
        for port in (port_a, port_b):
            assert wait_ready(port).json() == {"ready": True}
            assert httpx.get(f"http://127.0.0.1:{port}/healthz").json() == {"status": "alive"}
        started = a.wait_event("started")
        assert started["consumers"] == ["pod-a-0"]
        assert "***" in str(started["settings"])
        # When the workload is published at 500 events/s and pod-a gets SIGTERM mid-load
        publisher = publish(tmp_path, pulsar_url, topic, events_path, rate=500)
        a.wait_event("stats")
        while not decided([tmp_path / "pod-a.jsonl"]):
            assert publisher.popen.poll() is None, "the load ended before pod-a decided anything"
            time.sleep(0.05)
        a.signal(signal.SIGTERM)
        # Then pod-a drains and exits 0 while the load goes on
        assert a.wait(60) == 0
        assert publisher.popen.poll() is None, "the load ended before pod-a stopped"
        names = [str(e["event"]) for e in a.events()]
        assert names.index("draining") < names.index("consumer_left") < names.index("stopped")
        assert publisher.wait(60) == 0
        assert "published 2,500 of 2,500 events" in publisher.log.read_text()
        # And pod-b decides everything that pod-a did not
        expected = published_ids(tmp_path)
        histories = [tmp_path / "pod-a.jsonl", tmp_path / "pod-b.jsonl"]
        wait_decided(histories, expected)
        by_consumer = attempts_by_consumer(histories)
        assert by_consumer.get("pod-a-0", 0) > 0
        assert by_consumer.get("pod-b-0", 0) > 0
        b.signal(signal.SIGTERM)
        assert b.wait(60) == 0
    finally:
        a.kill()
        b.kill()
    # The merged histories are clean for the checker
    check = subprocess.run(
        [str(KEYLANE), "check", tmp_path / "published.jsonl", *histories],
        capture_output=True,
        text=True,
        check=False,
        env=clean_env(),
    )
    assert check.returncode == 0, check.stdout
    # The gateway delivered, and nothing twice
    stats = httpx.get(f"{gateway_url}/v1/stats").json()
    assert stats["deliveries"] > 0
    assert stats["duplicate_deliveries"] == 0
    assert_clean_logs([a, b], events)


def help_requests(count: int) -> list[Event]:
    """Subscribers with a phone and SMS consent, each texting HELP (a transactional reply)."""
    events = []
    for i in range(count):
        base = {"brand_id": "acme", "subscriber_id": f"help-{i}", "schema_version": 1}
        events.append(
            parse_event(
                json.dumps(
                    {
                        **base,
                        "event_id": f"help-{i}-profile",
                        "type": "profile_updated",
                        "occurred_at": "2026-11-27T16:00:00Z",
                        "properties": {"phone": f"+1415555{i:04d}", "consent": {"sms": True}},
                    }
                )
            )
        )
        events.append(
            parse_event(
                json.dumps(
                    {
                        **base,
                        "event_id": f"help-{i}-help",
                        "type": "sms_received",
                        "occurred_at": "2026-11-27T16:00:01Z",
                        "properties": {"text": "HELP"},
                    }
                )
            )
        )
    return events


@pytest.mark.pulsar
@pytest.mark.postgres
@pytest.mark.slow
def test_a_second_signal_exits_at_once(
    tmp_path: Path,
    pulsar_url: str,
    pulsar_admin_url: str,
    store_url: str,
    topic: str,
    gateway: tuple[Proc, str],
) -> None:
    _, gateway_url = gateway
    # Given a gateway that delivers, then holds its answer for a minute
    faults = {"timeout_rate": 1.0, "timeout_mode": "after_delivery", "timeout_delay": 60}
    assert httpx.post(f"{gateway_url}/v1/faults", json=faults).status_code == 200
    events = help_requests(3)
    path = tmp_path / "help.jsonl"
    write_events_file(path, events)
    w, port = worker(
        tmp_path,
        "pod-c",
        broker=pulsar_url,
        admin=pulsar_admin_url,
        store=store_url,
        gateway=gateway_url,
        topic=topic,
        start_at=events[0].occurred_at,
        extra=("--grace", "30"),
    )
    try:
        wait_ready(port)
        publisher = publish(tmp_path, pulsar_url, topic, path, rate=100)
        assert publisher.wait(60) == 0
        # And a HELP reply held by the gateway while the worker's relay waits for it
        while httpx.get(f"{gateway_url}/v1/stats").json()["deliveries"] == 0:
            assert w.popen.poll() is None
            time.sleep(0.05)
        # When SIGTERM starts the drain and a second SIGTERM follows
        w.signal(signal.SIGTERM)
        w.wait_event("draining")
        w.signal(signal.SIGTERM)
        # Then the worker exits 130 at once instead of waiting for the relay
        assert w.wait(10) == 130
        assert [e["event"] for e in w.events()][-1] == "killed"
    finally:
        w.kill()
        httpx.delete(f"{gateway_url}/v1/faults")


@pytest.mark.parametrize(
    ("args", "env", "says"),
    [
        (["--broker", "memory://"], {}, "--broker: memory:// is refused"),
        ([], {"KEYLANE_BROKER_URL": "memory://"}, "KEYLANE_BROKER_URL: memory:// is refused"),
        ([], {"KEYLANE_CONSUMERS": "two"}, "KEYLANE_CONSUMERS must be an integer"),
        (["--store", "memory://"], {}, "--store: memory:// is refused"),
        (["--consumers", "0"], {}, "--consumers must be >= 1"),
        (["--clock-start", "Friday"], {}, "ISO-8601"),
        (["--health-port", "99999"], {}, "--health-port must be <= 65535"),
    ],
)
def test_bad_settings_exit_2_with_one_line(args: list[str], env: dict[str, str], says: str) -> None:
    base = {
        "KEYLANE_BROKER_URL": "pulsar://127.0.0.1:6650",
        "KEYLANE_STORE_URL": "sqlite:///tmp/never-opened.db",
        "KEYLANE_GATEWAY_URL": "http://127.0.0.1:8787",
    }
    done = subprocess.run(
        [str(KEYLANE), "worker", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env=clean_env(**{**base, **env}),
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ")
    assert says in lines[0]


def test_no_broker_and_no_store_say_how_to_give_them() -> None:
    done = subprocess.run(
        [str(KEYLANE), "worker", "--gateway", "http://127.0.0.1:8787"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env=clean_env(),
    )
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "error: no broker: pass --broker pulsar://host:6650 or set KEYLANE_BROKER_URL"
    )


@pytest.mark.pulsar
def test_an_unreachable_store_at_start_exits_2(
    tmp_path: Path, pulsar_url: str, pulsar_admin_url: str, topic: str
) -> None:
    done = subprocess.run(
        [
            str(KEYLANE),
            "worker",
            *("--broker", pulsar_url, "--pulsar-admin-url", pulsar_admin_url, "--topic", topic),
            *("--store", f"postgresql://keylane:{PASSWORD}@127.0.0.1:{free_port()}/keylane"),
            *("--gateway", "http://127.0.0.1:8787"),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=90,
        env=clean_env(),
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines()[-1].startswith("error: ")
    assert PASSWORD not in done.stderr
