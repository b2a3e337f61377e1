"""engine_gc: the gen-0 threshold is raised for the block and restored after."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from keylane.service.gc_policy import ENGINE_GC_THRESHOLD, engine_gc


@pytest.fixture(autouse=True)
def _restore_thresholds() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)


def test_raises_the_thresholds_inside_and_restores_them_after() -> None:
    gc.set_threshold(700, 10, 10)
    with engine_gc():
        assert gc.get_threshold() == ENGINE_GC_THRESHOLD
    assert gc.get_threshold() == (700, 10, 10)


def test_never_lowers_a_threshold_the_process_raised() -> None:
    gc.set_threshold(50_000, 5, 100)
    with engine_gc():
        assert gc.get_threshold() == (50_000, ENGINE_GC_THRESHOLD[1], 100)
    assert gc.get_threshold() == (50_000, 5, 100)


def test_leaves_thresholds_changed_inside_the_block_alone() -> None:
    gc.set_threshold(700, 10, 10)
    with engine_gc():
        gc.set_threshold(1234, 10, 10)
    assert gc.get_threshold() == (1234, 10, 10)


def test_restores_after_an_error() -> None:
    gc.set_threshold(700, 10, 10)
    with pytest.raises(RuntimeError), engine_gc():
        raise RuntimeError("boom")
    assert gc.get_threshold() == (700, 10, 10)
