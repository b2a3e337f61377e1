"""Start and stop the real services keylane's tests need: Apache Pulsar standalone and Redis.

Usage (from the repository root; stdlib only, so any Python 3.11 works)::

    .venv/bin/python scripts/services.py up | down | status | env
    .venv/bin/python scripts/services.py pulsar start|stop|status
    .venv/bin/python scripts/services.py redis start|stop|status

Both servers listen on 127.0.0.1 only and keep their state under ``.services/`` (gitignored;
``KEYLANE_SERVICES_DIR`` moves it; ``KEYLANE_PULSAR_PORT``, ``KEYLANE_PULSAR_WEB_PORT`` and
``KEYLANE_REDIS_PORT`` change the ports, and ``env`` prints the matching URLs):

* Redis: ``redis-server`` (Debian package, installed with apt-get when missing) on port 6390,
  no persistence, daemonized, pidfile ``.services/redis.pid``.
* Pulsar: the ``org.apache.pulsar:pulsar-server-distribution:<version>:tar.gz:bin`` tarball from
  Maven Central (``tools/pulsar-dist/pom.xml``), unpacked into ``.services/pulsar/``, run as
  ``bin/pulsar standalone`` with OpenJDK 17, small heap, a fresh data directory on every start and
  the overrides in ``PULSAR_OVERRIDES``. Ready once ``public/default`` exists and
  ``/admin/v2/brokers/health`` answers ``ok``.

``up`` is idempotent: a healthy server started by this script is reused, a stale pidfile or a dead
or unhealthy process is replaced. Processes are stopped by PID only (SIGTERM, then SIGKILL).
This script imports nothing from keylane and no third-party package.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import functools
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Overridable so a second instance can run beside the shared one (e.g. to time a cold start).
STATE = Path(os.environ.get("KEYLANE_SERVICES_DIR", ROOT / ".services")).resolve()

HOST = "127.0.0.1"
REDIS_PORT = int(os.environ.get("KEYLANE_REDIS_PORT", "6390"))
REDIS_PIDFILE = STATE / "redis.pid"

PULSAR_VERSION = os.environ.get("KEYLANE_PULSAR_VERSION", "4.0.8")
PULSAR_PORT = int(os.environ.get("KEYLANE_PULSAR_PORT", "6650"))
PULSAR_WEB_PORT = int(os.environ.get("KEYLANE_PULSAR_WEB_PORT", "8080"))
PULSAR_DIR = STATE / "pulsar"
PULSAR_HOME = PULSAR_DIR / f"apache-pulsar-{PULSAR_VERSION}"
PULSAR_PIDFILE = STATE / "pulsar.pid"
PULSAR_LOG = PULSAR_DIR / "pulsar.log"
PULSAR_CONF = PULSAR_DIR / "standalone.conf"
PULSAR_DATA = PULSAR_DIR / "data"
READY_TIMEOUT = 180.0
STOP_TIMEOUT = 30.0

#: Appended to the distribution's conf/standalone.conf (later keys win in Java Properties).
PULSAR_OVERRIDES = {
    "bindAddress": HOST,
    "advertisedAddress": HOST,
    "brokerServicePort": str(PULSAR_PORT),
    "webServicePort": str(PULSAR_WEB_PORT),
    # The standalone bookie takes a random port; keep it on the loopback interface too.
    "listeningInterface": "lo",
    # A 2-core box shared with the tests: small caches, no extra services.
    "managedLedgerCacheSizeMB": "64",
    "dbStorage_writeCacheMaxSizeMb": "32",
    "dbStorage_readAheadCacheMaxSizeMb": "32",
    "dbStorage_rocksDB_blockCacheSize": "33554432",
    "webSocketServiceEnabled": "false",
    # Test friendliness: 100 ms delayed-delivery ticks, never early, topics kept while idle.
    "delayedDeliveryTickTimeMillis": "100",
    "isDelayedDeliveryDeliverAtTimeStrict": "true",
    "brokerDeleteInactiveTopicsEnabled": "false",
    "brokerShutdownTimeoutMs": "5000",
    # Kept at the defaults on purpose (the contract tests rely on them); listed for the record.
    "activeConsumerFailoverDelayTimeMillis": "1000",
    "subscriptionKeySharedUseConsistentHashing": "true",
}
PULSAR_MEM = "-Xms256m -Xmx768m -XX:MaxDirectMemorySize=512m"
PULSAR_GC = "-XX:+UseG1GC"

ENV_LINE = (
    f"export KEYLANE_PULSAR_URL=pulsar://{HOST}:{PULSAR_PORT}"
    f" KEYLANE_PULSAR_ADMIN_URL=http://{HOST}:{PULSAR_WEB_PORT}"
    f" KEYLANE_REDIS_URL=redis://{HOST}:{REDIS_PORT}/0"
)


class ServiceError(Exception):
    """A service could not be prepared, started or stopped; the message says why."""


def log(message: str) -> None:
    print(f"[services] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- processes


def read_pid(pidfile: Path) -> int | None:
    try:
        return int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return None


def process_matches(pid: int, marker: str) -> bool:
    """True if ``pid`` is alive, not a zombie, and its command line contains ``marker``."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    state = stat.rpartition(")")[2].split()[0]
    return state != "Z" and marker in cmdline


def stop_pid(pid: int, name: str, timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM ``pid``, wait up to ``timeout`` seconds, then SIGKILL it."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        if not Path(f"/proc/{pid}").exists() or not process_matches(pid, ""):
            log(f"{name} (pid {pid}) stopped")
            return
        time.sleep(0.2)
    log(f"{name} (pid {pid}) did not stop within {timeout:.0f}s; sending SIGKILL")
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def port_open(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=1):
            return True
    except OSError:
        return False


def tail(path: Path, lines: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"(cannot read {path}: {exc})"


@contextlib.contextmanager
def state_lock() -> Iterator[None]:
    """Serialize concurrent invocations of this script (e.g. two `make test` runs)."""
    STATE.mkdir(parents=True, exist_ok=True)
    with (STATE / "services.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# --------------------------------------------------------------------------- redis


def redis_ping() -> bool:
    try:
        with socket.create_connection((HOST, REDIS_PORT), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def redis_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    log("redis-server is missing; installing the Debian package")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", "redis-server"]):
        if subprocess.run(cmd, env=env, check=False).returncode != 0:
            raise ServiceError(f"`{' '.join(cmd)}` failed; install redis-server by hand")
    # The package starts a system redis on 6379; ours uses its own port, so leave it alone.
    found = shutil.which("redis-server")
    if not found:
        raise ServiceError("redis-server is still not on PATH after apt-get install")
    return found


def redis_running_pid() -> int | None:
    pid = read_pid(REDIS_PIDFILE)
    return pid if pid is not None and process_matches(pid, "redis-server") else None


def redis_start() -> None:
    pid = redis_running_pid()
    if pid is not None and redis_ping():
        log(f"redis already running (pid {pid}) on {HOST}:{REDIS_PORT}")
        return
    if pid is not None:
        stop_pid(pid, "unresponsive redis")
    REDIS_PIDFILE.unlink(missing_ok=True)
    if port_open(REDIS_PORT):
        raise ServiceError(f"port {REDIS_PORT} is taken by a process this script did not start")
    data = STATE / "redis"
    data.mkdir(parents=True, exist_ok=True)
    cmd = [
        redis_binary(),
        "--bind", HOST, "--port", str(REDIS_PORT),
        "--save", "", "--appendonly", "no",
        "--daemonize", "yes", "--pidfile", str(REDIS_PIDFILE),
        "--logfile", str(STATE / "redis.log"), "--dir", str(data),
    ]  # fmt: skip
    subprocess.run(cmd, check=True, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if redis_ping() and redis_running_pid() is not None:
            log(f"redis ready on {HOST}:{REDIS_PORT} (pid {redis_running_pid()})")
            return
        time.sleep(0.1)
    raise ServiceError(f"redis did not answer PING within 15s\n{tail(STATE / 'redis.log')}")


def redis_stop() -> None:
    pid = redis_running_pid()
    if pid is None:
        log("redis is not running")
    else:
        stop_pid(pid, "redis", timeout=10)
    REDIS_PIDFILE.unlink(missing_ok=True)


def redis_status() -> bool:
    pid = redis_running_pid()
    ok = pid is not None and redis_ping()
    detail = f" (pid {pid}, {HOST}:{REDIS_PORT})" if ok else ""
    print(f"redis: {'running' if ok else 'stopped'}{detail}")
    return ok


# --------------------------------------------------------------------------- pulsar


def java17_home() -> Path:
    """The OpenJDK 17 home (``KEYLANE_JAVA_HOME`` overrides); Pulsar 4.0's bytecode floor."""
    override = os.environ.get("KEYLANE_JAVA_HOME")
    candidates = [Path(override)] if override else sorted(Path("/usr/lib/jvm").glob("*17*"))
    for home in candidates:
        if (home / "bin" / "java").is_file():
            return home
    raise ServiceError("OpenJDK 17 not found under /usr/lib/jvm; set KEYLANE_JAVA_HOME")


def pulsar_tarball() -> Path:
    """The distribution tarball: the ~/.m2 copy if present, else fetched with Maven."""
    name = f"pulsar-server-distribution-{PULSAR_VERSION}-bin.tar.gz"
    cached = (
        Path.home() / ".m2/repository/org/apache/pulsar/pulsar-server-distribution"
        / PULSAR_VERSION / name
    )  # fmt: skip
    if cached.is_file():
        return cached
    if shutil.which("mvn") is None:
        raise ServiceError("Maven (mvn) is needed to fetch the Pulsar distribution")
    dist = PULSAR_DIR / "dist"
    log(f"fetching org.apache.pulsar:pulsar-server-distribution:{PULSAR_VERSION} with Maven")
    cmd = [
        "mvn", "-B", "-q", "-f", str(ROOT / "tools/pulsar-dist/pom.xml"), "generate-resources",
        f"-Dpulsar.version={PULSAR_VERSION}", f"-Ddist.dir={dist}",
    ]  # fmt: skip
    env = {**os.environ, "JAVA_HOME": str(java17_home())}
    result = subprocess.run(cmd, env=env, check=False, capture_output=True, text=True)
    if result.returncode != 0:  # Maven's output is shown only when it failed
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-30:])
        raise ServiceError(
            f"Maven could not fetch the Pulsar distribution: {' '.join(cmd)}\n{tail}"
        )
    return dist / name


def pulsar_install() -> None:
    """Unpack the distribution into ``.services/pulsar/`` unless it is already there."""
    if (PULSAR_HOME / "bin" / "pulsar").is_file() and (PULSAR_HOME / "lib").is_dir():
        return
    tarball = pulsar_tarball()
    log(f"unpacking {tarball.name}")
    partial = PULSAR_DIR / "unpacking"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    subprocess.run(["tar", "xzf", str(tarball), "-C", str(partial)], check=True)
    shutil.rmtree(PULSAR_HOME, ignore_errors=True)
    (partial / PULSAR_HOME.name).rename(PULSAR_HOME)
    shutil.rmtree(partial)
    shutil.rmtree(PULSAR_DIR / "dist", ignore_errors=True)  # the ~/.m2 copy is the cache


def pulsar_write_config() -> None:
    shipped = (PULSAR_HOME / "conf" / "standalone.conf").read_text()
    extra = "".join(f"{key}={value}\n" for key, value in PULSAR_OVERRIDES.items())
    PULSAR_CONF.write_text(f"{shipped}\n# ---- keylane overrides (scripts/services.py)\n{extra}")


def http_get(path: str) -> str | None:
    try:
        url = f"http://{HOST}:{PULSAR_WEB_PORT}{path}"
        with urllib.request.urlopen(url, timeout=10) as response:
            return str(response.read().decode())
    except (OSError, urllib.error.URLError):
        return None


def pulsar_healthy() -> bool:
    namespaces = http_get("/admin/v2/namespaces/public")
    if namespaces is None or '"public/default"' not in namespaces:
        return False
    return (http_get("/admin/v2/brokers/health") or "").strip() == "ok"


def pulsar_running_pid() -> int | None:
    pid = read_pid(PULSAR_PIDFILE)
    return pid if pid is not None and process_matches(pid, "PulsarStandaloneStarter") else None


def pulsar_wait_ready(alive: Callable[[], bool], timeout: float) -> bool:
    """Poll readiness every second while ``alive()`` holds; False on death or timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            return False
        if pulsar_healthy():
            return True
        time.sleep(1)
    return False


def pulsar_start() -> None:
    pid = pulsar_running_pid()
    if pid is not None:
        # Healthy: reuse. Still starting (another `up`): give it a while. Otherwise replace it.
        still_ours = functools.partial(process_matches, pid, "PulsarStandaloneStarter")
        if pulsar_healthy() or pulsar_wait_ready(still_ours, 60):
            log(f"pulsar already running (pid {pid}) on {HOST}:{PULSAR_PORT}")
            return
        stop_pid(pid, "unhealthy pulsar")
    PULSAR_PIDFILE.unlink(missing_ok=True)
    for port in (PULSAR_PORT, PULSAR_WEB_PORT):
        if port_open(port):
            raise ServiceError(f"port {port} is taken by a process this script did not start")
    started = time.monotonic()
    pulsar_install()
    pulsar_write_config()
    shutil.rmtree(PULSAR_DATA, ignore_errors=True)  # stale RocksDB metadata breaks restarts
    PULSAR_DATA.mkdir(parents=True)
    env = {
        **os.environ,
        "JAVA_HOME": str(java17_home()),
        "PULSAR_MEM": PULSAR_MEM,
        "PULSAR_GC": PULSAR_GC,
        "PULSAR_LOG_DIR": str(PULSAR_DIR / "logs"),
        "PULSAR_LOG_IMMEDIATE_FLUSH": "true",
        "PULSAR_STANDALONE_CONF": str(PULSAR_CONF),
    }
    cmd = [
        str(PULSAR_HOME / "bin" / "pulsar"), "standalone", "--config", str(PULSAR_CONF),
        "-nfw", "-nss", "-a", HOST,
        "--metadata-dir", str(PULSAR_DATA / "metadata"),
        "--bookkeeper-dir", str(PULSAR_DATA / "bookkeeper"),
    ]  # fmt: skip
    with PULSAR_LOG.open("wb") as out:
        proc = subprocess.Popen(  # bin/pulsar execs java, so this PID is the broker's
            cmd,
            cwd=PULSAR_DATA,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    PULSAR_PIDFILE.write_text(f"{proc.pid}\n")
    log(f"pulsar {PULSAR_VERSION} starting (pid {proc.pid}); log: {PULSAR_LOG}")
    # Until bin/pulsar execs java the command line is bash's, so watch the child itself.
    if not pulsar_wait_ready(lambda: proc.poll() is None, READY_TIMEOUT):
        alive = proc.poll() is None
        reason = f"not ready after {READY_TIMEOUT:.0f}s" if alive else f"exited ({proc.returncode})"
        stop_pid(proc.pid, "pulsar", timeout=10)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)
        PULSAR_PIDFILE.unlink(missing_ok=True)
        raise ServiceError(f"pulsar {reason}. Last lines of {PULSAR_LOG}:\n{tail(PULSAR_LOG)}")
    log(f"pulsar ready on {HOST}:{PULSAR_PORT} after {time.monotonic() - started:.1f}s")


def pulsar_stop() -> None:
    pid = pulsar_running_pid()
    if pid is None:
        log("pulsar is not running")
    else:
        stop_pid(pid, "pulsar")
    PULSAR_PIDFILE.unlink(missing_ok=True)


def pulsar_status() -> bool:
    pid = pulsar_running_pid()
    ok = pid is not None and pulsar_healthy()
    state = "running" if ok else ("unhealthy" if pid is not None else "stopped")
    print(f"pulsar: {state}" + (f" (pid {pid}, {HOST}:{PULSAR_PORT})" if pid else ""))
    return ok


# --------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("up", "start Redis and Pulsar (reuse healthy ones)"),
        ("down", "stop both"),
        ("status", "print their state; exit 1 unless both are healthy"),
        ("env", "print the export line for KEYLANE_*_URL"),
    ):
        sub.add_parser(name, help=text)
    for name in ("pulsar", "redis"):
        sub.add_parser(name, help=f"manage {name} only").add_argument(
            "action", choices=["start", "stop", "status"]
        )
    args = parser.parse_args(argv)

    actions = {
        ("pulsar", "start"): pulsar_start,
        ("pulsar", "stop"): pulsar_stop,
        ("redis", "start"): redis_start,
        ("redis", "stop"): redis_stop,
    }
    try:
        if args.command == "env":
            print(ENV_LINE)
        elif args.command == "status":
            return 0 if all([redis_status(), pulsar_status()]) else 1
        elif args.command in ("pulsar", "redis") and args.action == "status":
            ok = pulsar_status() if args.command == "pulsar" else redis_status()
            return 0 if ok else 1
        else:
            with state_lock():
                if args.command == "up":
                    redis_start()
                    pulsar_start()
                elif args.command == "down":
                    pulsar_stop()
                    redis_stop()
                else:
                    actions[(args.command, args.action)]()
    except (ServiceError, subprocess.CalledProcessError) as exc:
        log(f"error: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
