"""``keylane chaos`` on real processes: the bounded run, its clean-up, and its bad options.

The bounded run (``--profile quick``: a poison event, kill -9 of a worker and its restart, a
SIGSTOP zombie past the broker's keepalive, a Pulsar broker restart) restarts the Pulsar that
``scripts/services.py`` manages, so it carries the ``chaos`` marker; it runs in ``make test``
(a few minutes) and leaves the servers running and healthy for the tests after it.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SERVICES = ROOT / "scripts" / "services.py"
KEYLANE = Path(sys.executable).with_name("keylane")
PNG = b"\x89PNG\r\n\x1a\n"


def _processes_mentioning(text: str) -> list[str]:
    """Command lines of live processes that mention ``text`` (the run's directory)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (proc / "stat").read_text().rpartition(")")[2].split()[0]
        except OSError:
            continue
        if text in cmdline and state != "Z":
            found.append(cmdline)
    return found


def _healthy(service: str) -> bool:
    status = [sys.executable, str(SERVICES), service, "status"]
    return subprocess.run(status, capture_output=True, check=False).returncode == 0


@pytest.mark.chaos
@pytest.mark.pulsar
@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_bounded_run_injects_its_faults_and_keeps_every_invariant(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    report_path = tmp_path / "report.json"
    # When the bounded schedule runs against the servers scripts/services.py manages
    result = subprocess.run(
        [
            str(KEYLANE), "chaos", "--profile", "quick", "--out", str(run_dir),
            "--json", str(report_path), "--services", str(SERVICES),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=840,
    )  # fmt: skip
    report = json.loads(report_path.read_text())
    # Then it passes, and says so for every fault and invariant
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert report["ok"] is True
    faults = {f["kind"]: f for f in report["faults"]}
    assert {"kill9", "zombie", "broker_restart", "poison"} <= set(faults)
    assert all(f["effective"] for f in report["faults"]), report["faults"]
    assert "the broker dropped w2-0" in faults["zombie"]["detail"]
    assert all(f["recovery"] is not None for f in report["faults"])
    violations = {i["name"]: i["violations"] for i in report["invariants"]}
    assert violations == {
        "committed exclusivity violations": 0,
        "lost events": 0,
        "duplicate deliveries": 0,
        "compliance violations": 0,
        "SENT rows never delivered": 0,
    }
    assert report["published"] > 1000
    assert report["incidents"] == []
    # And the table and the plot are there
    assert "chaos PASSED" in result.stdout
    assert Path(report["plot"]).read_bytes()[:8] == PNG
    # And nothing it started is left running, and the servers are up for the next tests
    assert _processes_mentioning(str(run_dir)) == []
    assert _healthy("pulsar")
    assert _healthy("postgres")


@pytest.mark.chaos
@pytest.mark.pulsar
@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_sigterm_mid_run_stops_every_process_it_started(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    log = tmp_path / "stderr.txt"
    with open(log, "wb") as err:
        harness = subprocess.Popen(
            [
                str(KEYLANE), "chaos", "--profile", "quick", "--faults", "kill9",
                "--out", str(run_dir), "--services", str(SERVICES),
            ],
            stdout=subprocess.DEVNULL,
            stderr=err,
        )  # fmt: skip
    try:
        # Given a run whose workers are up and whose load is flowing
        deadline = time.monotonic() + 200
        while "ready; load" not in log.read_text() and time.monotonic() < deadline:
            assert harness.poll() is None, log.read_text()
            time.sleep(0.2)
        assert len(_processes_mentioning(str(run_dir))) >= 4  # gateway, 3 workers, the load
        # When the harness gets SIGTERM
        harness.send_signal(signal.SIGTERM)
        code = harness.wait(180)
    finally:
        if harness.poll() is None:
            harness.kill()
    # Then it exits as interrupted, after stopping all it started
    assert code == 130, log.read_text()
    assert _processes_mentioning(str(run_dir)) == []
    assert _healthy("pulsar")
    assert _healthy("postgres")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--workers", "1"], "error: --workers must be >= 2, got 1"),
        (["--rate", "0"], "error: --rate must be >= 10"),
        (["--faults", "meteor"], "error: --faults: unknown fault 'meteor'"),
        (["--profile", "quick", "--faults", "scale_in"], "not in the 'quick' profile"),
        (["--services", "/no/such/services.py"], "error: --services: /no/such/services.py"),
    ],
)
def test_bad_options_exit_2_with_one_line(tmp_path: Path, args: list[str], says: str) -> None:
    result = subprocess.run(
        [str(KEYLANE), "chaos", "--out", str(tmp_path / "run"), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 2
    assert says in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr
