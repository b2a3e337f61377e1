"""Pulsar's own load generator, ``bin/pulsar-perf``, as the yardstick for keylane over Pulsar.

:func:`pulsar_perf_key_shared` measures two phases on a fresh topic of the given broker, with
the Java client that ships with the Pulsar distribution:

1. **produce**: ``pulsar-perf produce`` publishes as fast as it can for ``duration`` seconds
   (random keys, batching disabled) while a durable subscription retains the messages;
2. **consume**: ``pulsar-perf consume`` drains exactly that backlog with ``consumers`` Key_Shared
   consumers (one JVM), acknowledging each message.

Batching is disabled because Key_Shared routes a batch by its first key and pulsar-perf offers
only the Java client's default (mixed-key) batcher; keylane's KEY_BASED batching over many keys
produces one-message entries in practice (50,000 entries for 50,000 messages over 1000 keys,
measured), so unbatched is the like-for-like comparison.

Rates: the consume rate is the tool's own "Aggregated throughput stats" line (it exits when the
last message is acked). The produce rate is records sent divided by ``duration``, because the
tool's aggregated produce line also counts a shutdown wait of several seconds (its figure is kept
as ``reported_msgs_per_second``). The subscription is created through the admin REST API before
producing; the topic is deleted afterwards.

Runs subprocesses and talks HTTP (stdlib only); imports no broker backend.
"""

from __future__ import annotations

import asyncio
import re
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from keylane.errors import InvalidArgumentError, KeylaneError
from keylane.runtime import settings

__all__ = [
    "PerfRate",
    "PulsarPerfError",
    "PulsarPerfResult",
    "find_java_home",
    "find_pulsar_home",
    "parse_aggregated",
    "pulsar_perf_key_shared",
]

#: Heap and direct memory of each pulsar-perf JVM (the tool's default, 128 MB, is tight).
PERF_MEM = "-Xmx512m -XX:MaxDirectMemorySize=256m"
#: pulsar-perf needs a positive publish rate; this is "as fast as possible" here.
UNLIMITED_RATE = 10_000_000

_AGGREGATED = re.compile(
    r"Aggregated throughput stats --- (\d+) records (sent|received) --- ([\d.]+) msg/s"
)


class PulsarPerfError(KeylaneError):
    """pulsar-perf could not be found, failed, or printed no result."""


@dataclass(frozen=True, slots=True)
class PerfRate:
    """One measured phase.

    Attributes:
        tool: ``"pulsar-perf"`` or ``"keylane"``.
        phase: ``"produce"`` or ``"consume"``.
        messages: messages the phase handled.
        msgs_per_second: the phase's throughput.
        reported_msgs_per_second: pulsar-perf's own aggregated figure, when it differs.
    """

    tool: str
    phase: str
    messages: int
    msgs_per_second: float
    reported_msgs_per_second: float | None = None

    def as_dict(self) -> dict[str, object]:
        """A JSON-friendly view."""
        view: dict[str, object] = {
            "tool": self.tool,
            "phase": self.phase,
            "messages": self.messages,
            "msgs_per_second": round(self.msgs_per_second, 1),
        }
        if self.reported_msgs_per_second is not None:
            view["reported_msgs_per_second"] = round(self.reported_msgs_per_second, 1)
        return view


@dataclass(frozen=True, slots=True)
class PulsarPerfResult:
    """pulsar-perf's produce and Key_Shared consume figures, with the exact commands."""

    produce: PerfRate
    consume: PerfRate
    commands: tuple[str, ...]


def find_pulsar_home(explicit: str | Path | None = None) -> Path:
    """The unpacked Pulsar distribution: ``explicit``, ``$KEYLANE_PULSAR_HOME``, or the one
    ``scripts/services.py`` unpacked under ``./.services/pulsar/``.

    Raises:
        PulsarPerfError: no distribution with ``bin/pulsar-perf`` was found.
    """
    candidates: list[Path] = []
    if explicit is not None:
        candidates.append(Path(explicit))
    elif (from_env := settings.pulsar_home()) is not None:
        candidates.append(Path(from_env))
    else:
        candidates.extend(sorted(Path.cwd().glob(".services/pulsar/apache-pulsar-*"), reverse=True))
    for home in candidates:
        if (home / "bin" / "pulsar-perf").is_file():
            return home.resolve()
    raise PulsarPerfError(
        "no Pulsar distribution with bin/pulsar-perf found; run `scripts/services.py up` "
        "from the repository root or set KEYLANE_PULSAR_HOME"
    )


def find_java_home() -> str:
    """``$KEYLANE_JAVA_HOME``, else an OpenJDK 17 under /usr/lib/jvm, else ``$JAVA_HOME``."""
    keylane_java, java = settings.java_home()
    if keylane_java is not None:
        return keylane_java
    for home in sorted(Path("/usr/lib/jvm").glob("*17*")):
        if (home / "bin" / "java").is_file():
            return str(home)
    if java is not None:
        return java
    raise PulsarPerfError("no Java 17 found; set KEYLANE_JAVA_HOME")


def parse_aggregated(output: str, phase: str) -> tuple[int, float]:
    """``(messages, msg/s)`` from pulsar-perf's final "Aggregated throughput stats" line.

    Raises:
        PulsarPerfError: the line is missing (the run failed).
    """
    found = _AGGREGATED.findall(output)
    if not found:
        tail = "\n".join(output.strip().splitlines()[-15:])
        raise PulsarPerfError(f"pulsar-perf {phase} printed no aggregated result:\n{tail}")
    records, _, rate = found[-1]
    return int(records), float(rate)


async def _run(home: Path, args: list[str], timeout: float) -> tuple[str, str]:
    """Run ``bin/pulsar-perf args``; return (command line, combined output)."""
    env = settings.child_environment(JAVA_HOME=find_java_home(), PULSAR_MEM=PERF_MEM)
    command = [str(home / "bin" / "pulsar-perf"), *args]
    proc = await asyncio.create_subprocess_exec(
        *command,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise PulsarPerfError(f"pulsar-perf {args[0]} took longer than {timeout}s") from None
    text = out.decode(errors="replace")
    if proc.returncode != 0:
        tail = "\n".join(text.strip().splitlines()[-15:])
        raise PulsarPerfError(f"pulsar-perf {args[0]} exited with {proc.returncode}:\n{tail}")
    return " ".join(command), text


def _admin(admin_url: str, method: str, path: str) -> None:
    request = urllib.request.Request(
        f"{admin_url.rstrip('/')}/admin/v2/{path}",
        method=method,
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30):
            pass
    except (urllib.error.URLError, OSError) as exc:
        raise PulsarPerfError(f"admin {method} {path} failed: {exc}") from exc


async def pulsar_perf_key_shared(
    service_url: str,
    admin_url: str,
    *,
    duration: int = 10,
    consumers: int = 4,
    payload_size: int = 64,
    receiver_queue_size: int = 1000,
    pulsar_home: str | Path | None = None,
    timeout: float = 600.0,
) -> PulsarPerfResult:
    """Measure pulsar-perf's produce rate and Key_Shared consume rate on a fresh topic.

    Args:
        service_url: ``pulsar://host:port``.
        admin_url: the broker's web service URL.
        duration: seconds of producing; everything produced is then consumed.
        consumers: Key_Shared consumers of the consume phase.
        payload_size: bytes per message.
        receiver_queue_size: each consumer's prefetch.
        pulsar_home: the distribution (see :func:`find_pulsar_home`).
        timeout: seconds per phase.

    Raises:
        InvalidArgumentError: a parameter is out of range.
        PulsarPerfError: the tool is missing or a phase failed.
    """
    if min(duration, consumers, payload_size, receiver_queue_size) < 1:
        raise InvalidArgumentError("duration, consumers, payload_size and queue must be >= 1")
    home = find_pulsar_home(pulsar_home)
    local = f"keylane-perf-{uuid.uuid4().hex[:12]}"
    topic = f"persistent://public/default/{local}"
    path = f"persistent/public/default/{quote(local, safe='')}"
    await asyncio.to_thread(_admin, admin_url, "PUT", path)
    await asyncio.to_thread(_admin, admin_url, "PUT", f"{path}/subscription/perf")
    try:
        produce_cmd, produce_out = await _run(
            home,
            [
                "produce", "-u", service_url, "-au", admin_url, "-time", str(duration),
                "-r", str(UNLIMITED_RATE), "-s", str(payload_size), "-mk", "random", "-db",
                topic,
            ],
            timeout,
        )  # fmt: skip
        sent, produce_reported = parse_aggregated(produce_out, "produce")
        consume_cmd, consume_out = await _run(
            home,
            [
                "consume", "-u", service_url, "-ss", "perf", "-st", "Key_Shared",
                "-n", str(consumers), "-q", str(receiver_queue_size), "-m", str(sent),
                "-sp", "Earliest", topic,
            ],
            timeout,
        )  # fmt: skip
        received, consume_rate = parse_aggregated(consume_out, "consume")
    finally:
        await asyncio.to_thread(_admin, admin_url, "DELETE", f"{path}?force=true")
    return PulsarPerfResult(
        produce=PerfRate("pulsar-perf", "produce", sent, sent / duration, produce_reported),
        consume=PerfRate("pulsar-perf", "consume", received, consume_rate),
        commands=(produce_cmd, consume_cmd),
    )
