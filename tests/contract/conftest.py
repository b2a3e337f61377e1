"""Fixtures of the broker contract suite: one test body, every backend.

Every test takes the ``backend`` fixture, parametrised over ``memory`` (keylane's embedded
broker, on *virtual* time) and ``pulsar`` (a real Pulsar 4.0.x standalone, marked ``pulsar``, on
real time). Tests talk only to the public contract of :mod:`keylane.brokers.base`.

Virtual time: for the memory backend the fixture itself switches the function-scoped event loop
(already patched by the ``looptime`` plugin) to looptime's fake clock for the fixture's setup,
the test and the teardown, so the broker is created, used and closed on one consistent clock and
a 10 s ack timeout costs no real time. Memory items get ``pytest.mark.looptime(False)`` at
collection so that looptime's own per-test switch (``--looptime``) never enters twice.
``--no-looptime`` runs the memory backend on real time.

Broker knobs: the memory broker is built with ``support.STANDALONE_KNOBS``, the settings of the
real standalone started by ``scripts/services.py`` (Pulsar defaults plus its overrides). Change both
together.

Case 23 (``maxUnackedMessagesPerConsumer=10``) runs on Pulsar through a topic policy set with
the admin REST API. Cases that cannot run on the shared real standalone (skipped on ``pulsar``):

* 13, 24: ``priority_level`` other than 0 (the Python client has no priority option).
* 32, 33: ``subscriptionKeySharedUseConsistentHashing=false`` (broker config).
* 43: small Key_Shared look-ahead limits (broker config; the defaults need 5000+ messages).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import looptime
import pytest

from keylane.brokers import connect
from tests.contract.support import Backend, memory_broker

_HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep looptime's per-test switch off for memory items: the fixture owns virtual time."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is None or _HERE not in Path(str(item.path)).resolve().parents:
            continue
        if callspec.params.get("backend_kind") == "memory":
            item.add_marker(pytest.mark.looptime(False))


@contextlib.contextmanager
def _virtual_time(config: pytest.Config) -> Iterator[bool]:
    """Run the current event loop on looptime's fake clock; yields whether it is virtual."""
    if config.getoption("looptime", default=None) is False:  # --no-looptime
        yield False
        return
    loop = asyncio.get_running_loop()
    if not isinstance(loop, looptime.LoopTimeEventLoop):
        pytest.fail(
            "the memory contract tests need the looptime plugin's patched event loop "
            f"(got {type(loop).__name__}); is looptime installed and not disabled?"
        )
    with loop.looptime_enabled():
        yield True


@pytest.fixture(params=["memory", pytest.param("pulsar", marks=pytest.mark.pulsar)])
def backend_kind(request: pytest.FixtureRequest) -> str:
    """Which backend the test runs on."""
    return str(request.param)


@pytest.fixture
def backend_urls(backend_kind: str, request: pytest.FixtureRequest) -> tuple[str, str] | None:
    """Service and admin URL of the real Pulsar (pulsar only; skips/fails if unreachable)."""
    if backend_kind != "pulsar":
        return None
    return request.getfixturevalue("pulsar_url"), request.getfixturevalue("pulsar_admin_url")


@pytest.fixture
async def backend(
    backend_kind: str,
    backend_urls: tuple[str, str] | None,
    request: pytest.FixtureRequest,
) -> AsyncIterator[Backend]:
    """A started broker of the current backend, wrapped in :class:`Backend` helpers."""
    with contextlib.ExitStack() as clock:
        virtual = False
        if backend_kind == "memory":
            virtual = clock.enter_context(_virtual_time(request.config))
        async with contextlib.AsyncExitStack() as stack:
            if backend_kind == "memory":
                broker = memory_broker()
            else:
                assert backend_urls is not None
                service_url, admin_url = backend_urls
                broker = connect(service_url, admin_url=admin_url)
            await stack.enter_async_context(broker)
            helper = Backend(name=backend_kind, broker=broker, stack=stack, virtual=virtual)
            if backend_urls is not None:
                helper.admin_url = backend_urls[1]
            if backend_kind == "memory":
                helper.quiet = 2.0  # virtual seconds cost nothing
            yield helper
