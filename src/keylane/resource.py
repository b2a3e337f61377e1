"""A base for objects that are closed with ``await close()`` and usable as ``async with``.

Core module: imports nothing from keylane and no backend.
"""

from __future__ import annotations

import abc
from types import TracebackType
from typing import Self

__all__ = ["AsyncClosable", "Startable"]


class AsyncClosable(abc.ABC):
    """``async with obj:`` closes ``obj`` on exit; subclasses implement :meth:`close`."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release what the object holds. Idempotent."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


class Startable(abc.ABC):
    """``async with obj:`` runs :meth:`start` on entry and :meth:`stop` on exit."""

    @abc.abstractmethod
    async def start(self) -> object:
        """Start the object's work (what it returns, if anything, is the subclass's)."""

    @abc.abstractmethod
    async def stop(self) -> None:
        """Stop it. Idempotent."""

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
