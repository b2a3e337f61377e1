"""The examples in docs/examples run and show what the docs say they show."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


async def test_quickstart_processes_every_event_once_per_user_in_order() -> None:
    # Given the quickstart, when it runs 40 users x 6 events through two lanes consumers
    report = await load("quickstart").main(users=40, events=6)
    # Then every event completed exactly once, one at a time per user, in publish order
    assert report.totals.published == 240
    assert report.clean
    assert report.counts()["lost_messages"] == 0
    assert report.counts()["duplicates"] == 0
