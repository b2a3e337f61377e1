"""Start and stop the real services keylane's tests need: Pulsar standalone, Redis, PostgreSQL.

Usage (from the repository root; stdlib only, so any Python 3.11 works)::

    .venv/bin/python scripts/services.py up | down | status | env
    .venv/bin/python scripts/services.py pulsar start|stop|restart|status [--keep-data]
    .venv/bin/python scripts/services.py redis start|stop|status
    .venv/bin/python scripts/services.py postgres start|stop|restart|status

The servers listen on 127.0.0.1 only and keep their state under ``.services/`` (gitignored;
``KEYLANE_SERVICES_DIR`` moves it; ``KEYLANE_PULSAR_PORT``, ``KEYLANE_PULSAR_WEB_PORT``,
``KEYLANE_REDIS_PORT`` and ``KEYLANE_POSTGRES_PORT`` change the ports, and ``env`` prints the
matching URLs):

* Redis: ``redis-server`` (Debian package, installed with apt-get when missing) on port 6390,
  no persistence, daemonized, pidfile ``.services/redis.pid``.
* Pulsar: the ``org.apache.pulsar:pulsar-server-distribution:<version>:tar.gz:bin`` tarball from
  Maven Central (``tools/pulsar-dist/pom.xml``), unpacked into ``.services/pulsar/``, run as
  ``bin/pulsar standalone`` with OpenJDK 17, small heap, a fresh data directory on every start and
  the overrides in ``PULSAR_OVERRIDES``. Ready once ``public/default`` exists and
  ``/admin/v2/brokers/health`` answers ``ok``. ``--keep-data`` (or ``KEYLANE_PULSAR_KEEP_DATA=1``)
  keeps the data directory instead, so topics, subscriptions and unacked messages survive: ``pulsar
  restart --keep-data`` is the chaos harness's broker restart (``docs/chaos.md``).
  Token authentication is on with anonymous access kept: a client without credentials is the
  role ``anonymous``, one with a token must present a valid HS256 JWT signed with
  ``.services/pulsar/token-secret.key`` (32 random bytes, made once and kept). ``env`` exports
  such a token for the role ``keylane-test`` as ``KEYLANE_PULSAR_TEST_TOKEN``. The config is
  written on every start, and ``up`` restarts a standalone that runs an outdated one.
* PostgreSQL: Debian's ``postgresql`` (installed with apt-get when missing), a cluster of its own
  made by ``initdb`` in ``.services/postgres/data`` (or under the ``postgres`` user's home when
  that user cannot reach the checkout), run as the ``postgres`` user (the server refuses root)
  on port 5440 with ``trust`` authentication (tests only: see ``docs/state.md`` for production)
  and the database ``keylane`` owned by the role ``keylane``. Ready once ``SELECT 1`` answers.
  ``stop`` keeps the data directory, so a restart keeps the data; a missing or unusable one is
  replaced by a fresh ``initdb``.
* Chromium: ``up`` installs Debian's ``chromium`` and ``chromium-driver`` with apt-get when
  ``/usr/bin/chromium`` is missing (the dashboard's browser test drives it); nothing is started.

``up`` is idempotent: a healthy server started by this script is reused, a stale pidfile or a dead
or unhealthy process is replaced. Processes are stopped by PID only (SIGTERM, then SIGKILL).
This script imports nothing from keylane and no third-party package.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import functools
import hashlib
import hmac
import json
import os
import pwd
import secrets
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
#: The HS256 key that signs and checks the standalone's tokens (32 raw bytes, kept across starts).
PULSAR_SECRET_KEY = PULSAR_DIR / "token-secret.key"
#: The role of ``KEYLANE_PULSAR_TEST_TOKEN`` (``env``) and of the broker's own clients.
PULSAR_TEST_ROLE = "keylane-test"
PULSAR_BROKER_ROLE = "keylane-broker"
POSTGRES_PORT = int(os.environ.get("KEYLANE_POSTGRES_PORT", "5440"))
POSTGRES_USER = "keylane"
POSTGRES_DB = "keylane"

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
    "acknowledgmentAtBatchIndexLevelEnabled": "true",  # the client's batch_index_ack decides
    # Kept at the defaults on purpose (the contract tests rely on them); listed for the record.
    "activeConsumerFailoverDelayTimeMillis": "1000",
    "subscriptionKeySharedUseConsistentHashing": "true",
    # A client that stops answering pings (a SIGSTOPped process: the chaos harness's zombie) is
    # disconnected after one to two intervals and its keys move; the default is 30 s.
    "keepAliveIntervalSeconds": "5",
    # Token authentication, anonymous access kept: a client without credentials (pulsar-perf,
    # the contract suite, the chaos harness, workers without a token) gets the role "anonymous";
    # a client presenting a token over the binary protocol must present a valid one (a bad one
    # is refused, it does not fall back to anonymous). No authorization: any role may do all.
    # tokenSecretKey and the broker's own token are added by pulsar_security_overrides().
    "authenticationEnabled": "true",
    "authenticationProviders": (
        "org.apache.pulsar.broker.authentication.AuthenticationProviderToken"
    ),
    "anonymousUserRole": "anonymous",
    "authorizationEnabled": "false",
    "superUserRoles": PULSAR_BROKER_ROLE,
    "brokerClientAuthenticationPlugin": "org.apache.pulsar.client.impl.auth.AuthenticationToken",
}
PULSAR_MEM = "-Xms256m -Xmx768m -XX:MaxDirectMemorySize=512m"
PULSAR_GC = "-XX:+UseG1GC"


def env_line() -> str:
    """The ``export`` line of ``env``: the services' URLs and a valid Pulsar token for tests.

    ``KEYLANE_PULSAR_TEST_TOKEN`` is signed with the standalone's key (created here if missing,
    so the token printed before the first ``up`` is still valid after it).
    """
    return (
        f"export KEYLANE_PULSAR_URL=pulsar://{HOST}:{PULSAR_PORT}"
        f" KEYLANE_PULSAR_ADMIN_URL=http://{HOST}:{PULSAR_WEB_PORT}"
        f" KEYLANE_PULSAR_TEST_TOKEN={pulsar_token(PULSAR_TEST_ROLE)}"
        f" KEYLANE_REDIS_URL=redis://{HOST}:{REDIS_PORT}/0"
        f" KEYLANE_POSTGRES_URL=postgresql://{POSTGRES_USER}@{HOST}:{POSTGRES_PORT}/{POSTGRES_DB}"
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


def pulsar_secret_key() -> bytes:
    """The standalone's token key: 32 random bytes in ``PULSAR_SECRET_KEY``, made once.

    The raw-bytes file ``bin/pulsar tokens create-secret-key`` writes; an existing key is kept
    (tokens handed out stay valid across restarts), one of another length is replaced.
    """
    with contextlib.suppress(OSError):
        key = PULSAR_SECRET_KEY.read_bytes()
        if len(key) == 32:
            return key
    PULSAR_SECRET_KEY.parent.mkdir(parents=True, exist_ok=True)
    partial = PULSAR_SECRET_KEY.with_name(f"{PULSAR_SECRET_KEY.name}.{os.getpid()}")
    partial.write_bytes(secrets.token_bytes(32))
    partial.chmod(0o600)
    try:
        if PULSAR_SECRET_KEY.exists():  # of another length: replace it
            partial.replace(PULSAR_SECRET_KEY)
        else:  # a concurrent `env` or `up` may make one too: the first one made wins
            with contextlib.suppress(FileExistsError):
                os.link(partial, PULSAR_SECRET_KEY)
    finally:
        partial.unlink(missing_ok=True)
    log(f"pulsar: using a new token secret key {PULSAR_SECRET_KEY}")
    return PULSAR_SECRET_KEY.read_bytes()


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def pulsar_token(role: str) -> str:
    """An HS256 JWT with ``sub`` = ``role`` and no expiry, signed with the standalone's key
    (what ``bin/pulsar tokens create --secret-key ... --subject role`` makes)."""
    header = _b64url(json.dumps({"alg": "HS256"}, separators=(",", ":")).encode())
    payload = _b64url(json.dumps({"sub": role}, separators=(",", ":")).encode())
    signed = f"{header}.{payload}".encode("ascii")
    signature = hmac.new(pulsar_secret_key(), signed, hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64url(signature)}"


def pulsar_security_overrides() -> dict[str, str]:
    """The overrides that name files or hold a token: the key file and the broker's own token."""
    return {
        "tokenSecretKey": PULSAR_SECRET_KEY.as_uri(),  # file:///abs/path
        "brokerClientAuthenticationParameters": f"token:{pulsar_token(PULSAR_BROKER_ROLE)}",
    }


def pulsar_config_text() -> str:
    """``standalone.conf`` as it must be now: the shipped file plus keylane's overrides."""
    shipped = (PULSAR_HOME / "conf" / "standalone.conf").read_text()
    overrides = {**PULSAR_OVERRIDES, **pulsar_security_overrides()}
    extra = "".join(f"{key}={value}\n" for key, value in overrides.items())
    return f"{shipped}\n# ---- keylane overrides (scripts/services.py)\n{extra}"


def pulsar_config_current() -> bool:
    """The running standalone's config file is what this script writes now."""
    try:
        return PULSAR_CONF.read_text() == pulsar_config_text()
    except OSError:
        return False


def pulsar_write_config() -> None:
    """Write ``standalone.conf`` afresh (on every start: a stale one never survives)."""
    PULSAR_CONF.write_text(pulsar_config_text())


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


def keep_data_default() -> bool:
    """``KEYLANE_PULSAR_KEEP_DATA`` is set to 1 (or true/yes)."""
    return os.environ.get("KEYLANE_PULSAR_KEEP_DATA", "").strip().lower() in ("1", "true", "yes")


def pulsar_start(keep_data: bool = False) -> None:
    """Start the standalone (reuse a healthy one); ``keep_data`` keeps the data directory."""
    pid = pulsar_running_pid()
    if pid is not None:
        # Healthy: reuse. Still starting (another `up`): give it a while. Otherwise replace it.
        still_ours = functools.partial(process_matches, pid, "PulsarStandaloneStarter")
        if not pulsar_config_current():
            # Started with another config (e.g. before token authentication): restart it.
            log(f"pulsar (pid {pid}) runs an outdated {PULSAR_CONF.name}; restarting it")
            stop_pid(pid, "pulsar")
        elif pulsar_healthy() or pulsar_wait_ready(still_ours, 60):
            log(f"pulsar already running (pid {pid}) on {HOST}:{PULSAR_PORT}")
            return
        else:
            stop_pid(pid, "unhealthy pulsar")
    PULSAR_PIDFILE.unlink(missing_ok=True)
    for port in (PULSAR_PORT, PULSAR_WEB_PORT):
        if port_open(port):
            raise ServiceError(f"port {port} is taken by a process this script did not start")
    started = time.monotonic()
    pulsar_install()
    pulsar_write_config()
    initialised = (PULSAR_DATA / "bookkeeper" / "current" / "VERSION").is_file()
    if keep_data and PULSAR_DATA.is_dir() and not initialised:
        # A start that failed half-way leaves metadata without a formatted bookie, which
        # every later start refuses ("Ledger root path: /ledgers already exists").
        log(f"pulsar: {PULSAR_DATA} holds no completed start; starting with fresh data")
    if keep_data and initialised:
        log(f"pulsar: keeping the data directory {PULSAR_DATA}")
    else:
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


def pulsar_restart(keep_data: bool = False) -> None:
    """Stop the standalone (if running) and start it again, with its data if ``keep_data``."""
    pulsar_stop()
    pulsar_start(keep_data)


def pulsar_status() -> bool:
    pid = pulsar_running_pid()
    ok = pid is not None and pulsar_healthy()
    state = "running" if ok else ("unhealthy" if pid is not None else "stopped")
    print(f"pulsar: {state}" + (f" (pid {pid}, {HOST}:{PULSAR_PORT})" if pid else ""))
    return ok


# --------------------------------------------------------------------------- postgres


def postgres_base() -> Path:
    """Where the cluster lives: ``.services/postgres`` if the ``postgres`` user can reach it.

    PostgreSQL refuses to run as root, so the server runs as the ``postgres`` user, which needs
    ``o+x`` on every parent of the data directory. When a checkout sits under a private
    directory, the cluster goes under that user's home instead, in a directory named after the
    state directory (so two checkouts never share one).
    """
    if os.geteuid() != 0:
        return STATE / "postgres"
    parents = [STATE, *STATE.parents]
    if all(p.exists() and p.stat().st_mode & 0o001 for p in parents):
        return STATE / "postgres"
    digest = hashlib.sha1(str(STATE).encode()).hexdigest()[:12]
    return Path(pwd.getpwnam("postgres").pw_dir) / "keylane" / digest


def postgres_find_bin_dir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<major>/bin`` (Debian's layout), if any."""
    found = [p for p in Path("/usr/lib/postgresql").glob("*/bin") if (p / "pg_ctl").is_file()]
    return max(found, key=lambda p: int(p.parent.name)) if found else None


def postgres_bin_dir() -> Path:
    """The server's binaries; installs Debian's ``postgresql`` with apt-get when missing."""
    found = postgres_find_bin_dir()
    if found is not None:
        return found
    log("postgresql is missing; installing the Debian package")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", "postgresql"]):
        if subprocess.run(cmd, env=env, check=False).returncode != 0:
            raise ServiceError(f"`{' '.join(cmd)}` failed; install postgresql by hand")
    # The package creates (and may start) a default cluster on 5432; ours is separate.
    found = postgres_find_bin_dir()
    if found is None:
        raise ServiceError("no /usr/lib/postgresql/*/bin/pg_ctl after apt-get install")
    return found


def as_postgres(cmd: list[str]) -> list[str]:
    """``cmd`` run as the ``postgres`` user when we are root (the server refuses root)."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def postgres_data() -> Path:
    return postgres_base() / "data"


def postgres_running_pid() -> int | None:
    """The postmaster's PID from ``postmaster.pid``, if that process is alive and ours."""
    pid = read_pid_first_line(postgres_data() / "postmaster.pid")
    marker = str(postgres_data())
    return pid if pid is not None and process_matches(pid, marker) else None


def read_pid_first_line(path: Path) -> int | None:
    try:
        return int(path.read_text().splitlines()[0].strip())
    except (OSError, ValueError, IndexError):
        return None


def postgres_sql(sql: str, database: str = POSTGRES_DB) -> str | None:
    """Run ``sql`` with psql over TCP as the keylane role; its output, or None on failure."""
    bin_dir = postgres_find_bin_dir()
    if bin_dir is None:
        return None
    psql = bin_dir / "psql"
    cmd = [
        str(psql), "-h", HOST, "-p", str(POSTGRES_PORT), "-U", POSTGRES_USER, "-d", database,
        "-v", "ON_ERROR_STOP=1", "-tAXq", "-c", sql,
    ]  # fmt: skip
    env = {**os.environ, "PGCONNECT_TIMEOUT": "3"}
    try:
        result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def postgres_healthy() -> bool:
    return postgres_sql("SELECT 1") == "1"


def postgres_initdb(bin_dir: Path) -> None:
    """A fresh cluster in ``postgres_data()``: trust auth on 127.0.0.1 (tests only), C locale."""
    base = postgres_base()
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
    base.chmod(0o700)
    cmd = [
        str(bin_dir / "initdb"), "-D", str(postgres_data()), "-A", "trust",
        "-U", POSTGRES_USER, "--encoding=UTF8", "--locale=C",
    ]  # fmt: skip
    result = subprocess.run(as_postgres(cmd), capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ServiceError(f"initdb failed:\n{result.stdout}{result.stderr}")
    log(f"postgres: initialised a fresh cluster in {postgres_data()}")


def postgres_cluster_valid(bin_dir: Path) -> bool:
    """The data directory holds a cluster of this server's major version."""
    try:
        version = (postgres_data() / "PG_VERSION").read_text().strip()
    except OSError:
        return False
    return version == bin_dir.parent.name


def postgres_start() -> None:
    bin_dir = postgres_bin_dir()
    pid = postgres_running_pid()
    if pid is not None:
        deadline = time.monotonic() + 30  # maybe still starting (another `up`)
        while time.monotonic() < deadline and process_matches(pid, str(postgres_data())):
            if postgres_healthy():
                log(f"postgres already running (pid {pid}) on {HOST}:{POSTGRES_PORT}")
                postgres_create_database()
                return
            time.sleep(0.5)
        postgres_stop()
    if port_open(POSTGRES_PORT):
        raise ServiceError(f"port {POSTGRES_PORT} is taken by a process this script did not start")
    started = time.monotonic()
    # A postmaster.pid whose process is gone (or a zombie) is stale: the server would refuse it.
    (postgres_data() / "postmaster.pid").unlink(missing_ok=True)
    if not postgres_cluster_valid(bin_dir):
        postgres_initdb(bin_dir)  # missing or unusable: start from a fresh directory
    base = postgres_base()
    options = (
        f"-c listen_addresses={HOST} -p {POSTGRES_PORT} -c unix_socket_directories={base}"
        " -c max_connections=200 -c shared_buffers=64MB"
    )
    cmd = [
        str(bin_dir / "pg_ctl"), "-D", str(postgres_data()), "-l", str(base / "postgres.log"),
        "-w", "-t", "60", "-o", options, "start",
    ]  # fmt: skip
    result = subprocess.run(
        as_postgres(cmd), capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL
    )
    if result.returncode != 0 or not postgres_wait_ready(30):
        raise ServiceError(
            f"postgres did not start ({result.stdout.strip()} {result.stderr.strip()}). "
            f"Last lines of {base / 'postgres.log'}:\n{tail(base / 'postgres.log')}"
        )
    postgres_create_database()
    log(
        f"postgres ready on {HOST}:{POSTGRES_PORT} (pid {postgres_running_pid()}, "
        f"data {postgres_data()}) after {time.monotonic() - started:.1f}s"
    )


def postgres_wait_ready(timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if postgres_sql("SELECT 1", "postgres") == "1":
            return True
        time.sleep(0.2)
    return False


def postgres_create_database() -> None:
    exists = postgres_sql(f"SELECT 1 FROM pg_database WHERE datname = '{POSTGRES_DB}'", "postgres")
    if exists == "1":
        return
    if postgres_sql(f'CREATE DATABASE "{POSTGRES_DB}"', "postgres") is None:
        raise ServiceError(f"could not create the database {POSTGRES_DB!r}")
    log(f"postgres: created database {POSTGRES_DB!r}")


def postgres_stop() -> None:
    """Stop the server (fast shutdown); its data directory is kept for the next start."""
    pid = postgres_running_pid()
    if pid is None:
        log("postgres is not running")
        return
    cmd = [str(postgres_bin_dir() / "pg_ctl"), "-D", str(postgres_data()), "-m", "fast", "-w"]
    result = subprocess.run(
        as_postgres([*cmd, "-t", "30", "stop"]), capture_output=True, text=True, check=False
    )
    if result.returncode == 0:
        log(f"postgres (pid {pid}) stopped")
    else:
        stop_pid(pid, "postgres")


def postgres_restart() -> None:
    """Stop the server (if running) and start it again; the data directory is kept."""
    postgres_stop()
    postgres_start()


def postgres_status() -> bool:
    pid = postgres_running_pid()
    ok = pid is not None and postgres_healthy()
    state = "running" if ok else ("unhealthy" if pid is not None else "stopped")
    detail = f" (pid {pid}, {HOST}:{POSTGRES_PORT}, data {postgres_data()})" if pid else ""
    print(f"postgres: {state}{detail}")
    return ok


# --------------------------------------------------------------------------- chromium

CHROMIUM = Path("/usr/bin/chromium")


def chromium_install() -> None:
    """Debian's chromium and chromium-driver when missing (a failure is logged, not fatal)."""
    if CHROMIUM.is_file():
        log(f"chromium present ({CHROMIUM})")
        return
    log("chromium is missing; installing the Debian packages chromium and chromium-driver")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", "chromium", "chromium-driver"]):
        if subprocess.run(cmd, env=env, check=False, stdin=subprocess.DEVNULL).returncode != 0:
            log(f"warning: `{' '.join(cmd)}` failed; the browser tests will fail in CI")
            return


# --------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("up", "start Redis, Pulsar and PostgreSQL (reuse healthy ones); install Chromium"),
        ("down", "stop them all"),
        ("status", "print their state; exit 1 unless all are healthy"),
        ("env", "print the export line for KEYLANE_*_URL and KEYLANE_PULSAR_TEST_TOKEN"),
    ):
        sub.add_parser(name, help=text)
    for name in ("pulsar", "redis", "postgres"):
        service = sub.add_parser(name, help=f"manage {name} only")
        restart = ["restart"] if name != "redis" else []
        service.add_argument("action", choices=["start", "stop", *restart, "status"])
        if name == "pulsar":
            service.add_argument(
                "--keep-data",
                action="store_true",
                default=keep_data_default(),
                help="start on the existing data directory (default: KEYLANE_PULSAR_KEEP_DATA)",
            )
    args = parser.parse_args(argv)

    keep = bool(getattr(args, "keep_data", False))
    actions: dict[tuple[str, str], Callable[[], None]] = {
        ("pulsar", "start"): functools.partial(pulsar_start, keep),
        ("pulsar", "stop"): pulsar_stop,
        ("pulsar", "restart"): functools.partial(pulsar_restart, keep),
        ("redis", "start"): redis_start,
        ("redis", "stop"): redis_stop,
        ("postgres", "start"): postgres_start,
        ("postgres", "stop"): postgres_stop,
        ("postgres", "restart"): postgres_restart,
    }
    statuses = {"pulsar": pulsar_status, "redis": redis_status, "postgres": postgres_status}
    try:
        if args.command == "env":
            print(env_line())
        elif args.command == "status":
            return 0 if all([redis_status(), pulsar_status(), postgres_status()]) else 1
        elif args.command in statuses and args.action == "status":
            return 0 if statuses[args.command]() else 1
        else:
            with state_lock():
                if args.command == "up":
                    chromium_install()
                    redis_start()
                    postgres_start()
                    pulsar_start(keep_data_default())
                elif args.command == "down":
                    pulsar_stop()
                    postgres_stop()
                    redis_stop()
                else:
                    actions[(args.command, args.action)]()
    except (ServiceError, subprocess.CalledProcessError) as exc:
        log(f"error: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
