"""The memory soak's machinery (``keylane bench soak``): its verdict, one short run, the command.

These check that the soak measures what it says; they assert nothing about speed or about the
RSS of this test process (the soak itself prints those).
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from keylane.bench.soak import PARKED_KEY, SoakParams, SoakResult, SoakSample, soak_once
from keylane.cli.main import app
from keylane.errors import InvalidArgumentError


def result(rss: list[float], warmup: float = 2.0) -> SoakResult:
    samples = tuple(
        SoakSample(elapsed=float(i + 1), rss_mb=value, handled=1000 * (i + 1), rate=1000.0)
        for i, value in enumerate(rss)
    )
    return SoakResult(parked=True, params=SoakParams(seconds=10, warmup=warmup), samples=samples)


def test_verdict_leaves_out_the_warm_up_and_judges_the_rest_against_the_median() -> None:
    # A big warm-up climb, then flat within 5%: flat at 10%, not at 2%
    flat = result([10, 30, 50, 50, 52, 49.5, 51])
    assert [s.elapsed for s in flat.steady] == [3.0, 4.0, 5.0, 6.0, 7.0]
    assert flat.rss_median == 50
    assert flat.rss_deviation == pytest.approx(0.04)
    assert flat.flat(0.10)
    assert not flat.flat(0.02)
    assert flat.rss_growth == pytest.approx(1.0)
    assert flat.throughput == 1000.0


def test_steady_growth_is_not_flat() -> None:
    growing = result([40, 50, 60, 70, 80, 90, 100])
    assert not growing.flat(0.10)
    assert growing.rss_growth == pytest.approx(40)


def test_fewer_than_two_steady_samples_is_no_verdict_of_flat() -> None:
    assert not result([40, 41, 42], warmup=2.5).flat(1.0)


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"seconds": 0}, "seconds"),
        ({"interval": -1}, "interval"),
        ({"warmup": 30}, "warmup"),
        ({"rate": 0}, "rate"),
        ({"keys": 1.5}, "keys"),
        ({"consumers": True}, "consumers"),
    ],
)
def test_bad_parameters_name_the_field(options: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidArgumentError, match=field):
        SoakParams(**options)  # type: ignore[arg-type]


@pytest.mark.looptime
async def test_one_short_run_parks_the_key_and_keeps_only_its_message_unacked() -> None:
    params = SoakParams(seconds=3, rate=2000, keys=50, consumers=2, interval=0.5, warmup=1)
    seen: list[SoakSample] = []
    run = await soak_once(params, parked=True, on_sample=seen.append)
    assert run.parked_keys == (PARKED_KEY,)
    assert run.unacked_at_end == 1
    assert list(run.samples) == seen
    assert len(run.samples) >= 5
    assert all(s.rss_mb > 0 for s in run.samples)
    handled = [s.handled for s in run.samples]
    assert handled == sorted(handled)
    assert handled[-1] > 0


def test_the_command_runs_both_modes_in_fresh_processes_and_prints_json() -> None:
    outcome = CliRunner().invoke(
        app,
        [
            "bench",
            "soak",
            "--seconds",
            "1",
            "--rate",
            "500",
            "--keys",
            "20",
            "--interval",
            "0.2",
            "--warmup",
            "0.2",
            "--tolerance",
            "10",
            "--json",
            "-",
        ],
    )
    assert outcome.exit_code == 0, outcome.output
    runs = json.loads(outcome.output)
    assert [r["parked"] for r in runs] == [False, True]
    assert runs[0]["parked_keys"] == []
    assert runs[1]["parked_keys"] == [PARKED_KEY]
    assert all(len(r["samples"]) >= 2 for r in runs)
