"""CompareConfig validation and the `keylane compare` option errors (no broker needed)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from keylane.cli.main import app
from keylane.compare.runner import CompareConfig, run_compare
from keylane.compare.workload import WorkloadConfig
from keylane.errors import InvalidArgumentError


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"strategies": ("shared", "lanes")}, "unknown strategy 'lanes'; valid strategies"),
        ({"strategies": ()}, "must not be empty"),
        ({"duration": 0}, "duration"),
        ({"drain_timeout": -1}, "drain_timeout"),
        ({"window": 10}, "window must be >= max_burst"),
        ({"publishers": 0}, "publishers"),
        ({"stuck_at": -1}, "stuck_at"),
    ],
)
def test_bad_compare_config(kwargs, match):
    with pytest.raises(InvalidArgumentError, match=match):
        CompareConfig(**kwargs)


def test_describe_names_the_workload():
    described = CompareConfig(workload=WorkloadConfig(users=7), stuck=True).describe()
    assert described["users"] == 7
    assert described["stuck_key"] == "u-stuck"
    assert described["consumers"] == 4
    assert described["window"] == 4000


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--strategies", "shared,bogus"], "unknown strategy 'bogus'"),
        (["--consumers", "0"], "consumers must be >= 1"),
        (["--max-in-flight", "0"], "max_in_flight must be >= 1"),
        (["--handler-timeout", "-1"], "handler_timeout"),
        (["--window", "5"], "window"),
    ],
)
def test_cli_rejects_impossible_settings(args, message):
    result = CliRunner().invoke(app, ["compare", *args])
    assert result.exit_code == 2
    assert message in result.output


async def test_unreachable_redis_skips_shared_lock_with_the_reason():
    # Port 1 on loopback: nothing listens there. No broker is needed for a skipped strategy.
    config = CompareConfig(strategies=("shared-lock",), redis_url="redis://127.0.0.1:1/0")
    result = await run_compare(config)
    (row,) = result.results
    assert row.skipped is not None
    assert "cannot reach Redis at redis://127.0.0.1:1/0" in row.skipped
    assert result.to_json()["strategies"] == {"shared-lock": {"skipped": row.skipped}}


def test_cli_exits_1_when_every_strategy_was_skipped(tmp_path):
    out = tmp_path / "result.json"
    result = CliRunner().invoke(
        app,
        [
            "compare",
            "--strategies",
            "shared-lock",
            "--redis",
            "redis://127.0.0.1:1/0",
            "--json",
            str(out),
        ],
    )
    assert result.exit_code == 1
    assert "shared-lock skipped: Redis unavailable" in result.output
    assert '"skipped"' in out.read_text()
