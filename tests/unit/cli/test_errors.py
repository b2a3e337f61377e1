"""One error path for every command: one line and exit 2; Ctrl-C is one line and exit 130.

Regression tests of issue 7, item 7, through the real command.
"""

from __future__ import annotations

import os
import signal
import subprocess

import pytest

from tests.unit.cli.support import KEYLANE_SCRIPT, error_line, run, run_script, script_error_line


def test_bench_broker_with_an_unknown_scheme():
    line = error_line(run("bench", "broker", "--broker", "kafka://x", "--messages", "10"))
    assert line == "error: unknown broker URL 'kafka://x': use 'memory://' or 'pulsar://host:6650'"


def test_bench_broker_with_an_unreachable_pulsar():
    # Port 1 on loopback: nothing listens there
    result = run("bench", "broker", "--broker", "pulsar://127.0.0.1:1", "--messages", "10")
    assert error_line(result).startswith("error: cannot reach Pulsar at pulsar://127.0.0.1:1")


def test_bench_pulsar_with_an_unreachable_url():
    result = run("bench", "pulsar", "--url", "pulsar://127.0.0.1:1", "--messages", "10")
    assert error_line(result).startswith("error: cannot reach Pulsar at pulsar://127.0.0.1:1")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["nosuch"], "error: No such command 'nosuch'. (see 'keylane --help')"),
        (["check"], "error: Missing argument 'files'. (see 'keylane check --help')"),
        (
            ["bench", "broker", "--batching", "fast"],
            "error: Invalid value: batching must be one of key-based, default, off "
            "(see 'keylane bench broker --help')",
        ),
        (
            ["demo", "--seconds", "x"],
            "error: Invalid value for '--seconds': Input should be a valid number, "
            "unable to parse string as a number (see 'keylane demo --help')",
        ),
        (
            ["compare", "--consumers", "0"],
            "error: consumers must be >= 1, got 0",
        ),
    ],
)
def test_a_bad_option_is_one_line_and_exit_2(args, expected):
    assert error_line(run(*args)) == expected


def test_help_still_exits_0():
    result = run("check", "--help")
    assert result.exit_code == 0
    assert "--skip-malformed" in result.stdout


def test_the_console_script_prints_one_line_for_a_keylane_error():
    done = run_script("bench", "broker", "--broker", "kafka://x")
    assert script_error_line(done).startswith("error: unknown broker URL 'kafka://x'")


def test_ctrl_c_exits_130_with_one_line():
    # Given a long demo, started through the console script
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [str(KEYLANE_SCRIPT), "demo", "--seconds", "60"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        # When it is interrupted once it is running
        assert process.stdout is not None
        assert process.stdout.readline().startswith("keylane demo")
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    # Then it exits 130 with one line and no traceback
    assert process.returncode == 130, stderr
    assert stderr.splitlines() == ["interrupted"]
