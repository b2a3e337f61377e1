"""Count interpreter crashes at exit after short Pulsar sessions, per client logger.

pulsar-client 3.13 can abort the process while Python finalizes ("terminate called without an
active exception") when a client thread still holds a Python callback. This runs many short
sessions (connect, produce and consume a few messages, close, exit), each in a fresh
interpreter, and counts the non-zero exit codes per logger::

    .venv/bin/python scripts/pulsar_exit_check.py --runs 20 --loggers default,console,file

Needs a running Pulsar (``scripts/services.py up``); ``KEYLANE_PULSAR_URL`` and
``KEYLANE_PULSAR_ADMIN_URL`` override the local defaults. Exits 1 if any session failed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

LOGGERS = ("default", "console", "file")


async def _session(logger: str, service_url: str, admin_url: str, log_dir: str) -> None:
    from keylane.brokers.base import SubscriptionType
    from keylane.brokers.pulsar import PulsarBroker

    log_level = "warn" if logger == "console" else None
    log_file = Path(log_dir) / "pulsar-client.log" if logger == "file" else None
    topic = f"kl-exit-check-{secrets.token_hex(4)}"
    async with PulsarBroker(
        service_url, admin_url=admin_url, log_level=log_level, log_file=log_file
    ) as broker:
        consumer = await broker.subscribe(
            topic, "s", subscription_type=SubscriptionType.KEY_SHARED, consumer_name="c"
        )
        producer = await broker.create_producer(topic)
        for i in range(5):
            await producer.send(f"m{i}".encode(), key=f"k{i % 2}")
        for _ in range(5):
            await consumer.acknowledge(await consumer.receive(timeout=10))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="sessions per logger")
    parser.add_argument("--loggers", default=",".join(LOGGERS), help="comma-separated loggers")
    parser.add_argument("--session", choices=LOGGERS, help=argparse.SUPPRESS)
    parser.add_argument("--log-dir", default=tempfile.gettempdir(), help=argparse.SUPPRESS)
    args = parser.parse_args()
    service_url = os.environ.get("KEYLANE_PULSAR_URL", "pulsar://127.0.0.1:6650")
    admin_url = os.environ.get("KEYLANE_PULSAR_ADMIN_URL", "http://127.0.0.1:8080")
    if args.session:  # one session in this interpreter, then exit
        asyncio.run(_session(args.session, service_url, admin_url, args.log_dir))
        return 0
    loggers = [name for name in args.loggers.split(",") if name]
    unknown = sorted(set(loggers) - set(LOGGERS))
    if unknown or args.runs < 1:
        parser.error(f"unknown logger(s) {unknown}" if unknown else "--runs must be >= 1")
    codes: dict[str, Counter[int]] = {name: Counter() for name in loggers}
    with tempfile.TemporaryDirectory() as log_dir:
        for _ in range(args.runs):
            for name in loggers:  # interleaved, so load changes hit every logger alike
                command = [sys.executable, __file__, "--session", name, "--log-dir", log_dir]
                done = subprocess.run(command, capture_output=True, timeout=120, check=False)
                codes[name][done.returncode] += 1
    failed = 0
    for name, counts in codes.items():
        bad = {code: n for code, n in counts.items() if code != 0}
        failed += sum(bad.values())
        print(f"{name:8} {counts[0]}/{args.runs} exited 0; failures by exit code: {bad or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
