"""A base for objects that are closed with ``await close()`` and usable as ``async with``.

Core module: imports nothing from keylane and no backend.
"""

from __future__ import annotations

import abc
from types import TracebackType
from typing import Self

__all__ = ["AsyncClosable"]


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
