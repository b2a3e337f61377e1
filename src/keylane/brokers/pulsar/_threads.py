"""A lasting Python thread state for each client thread that calls back into Python.

The C++ client calls keylane's callbacks (a send's receipt, a receive) on its own threads.
pybind11 gives such a thread a Python thread state for the call and destroys it afterwards, so
every callback creates one and tears it down again, and with it the thread's 16 KiB frame-stack
chunk: an ``mmap`` and a ``munmap`` per message, whose TLB shootdowns stall the other cores.
Measured with pulsar-client 3.13 on a 2-core box (``perf``, ``strace``): 90,532 mmap/munmap
pairs of 16384 bytes for 100,000 sends, and pinning cut the process's CPU time for them from
5.2 s to 3.4 s.

:func:`pin_thread_state` takes one extra hold on the calling thread's state (the C API's
``PyGILState_Ensure``, never released), so pybind11 keeps reusing it. Call it from a callback,
where the thread already holds the GIL; it costs a set lookup after the first call per thread.
The hold keeps one thread state per client thread alive until the interpreter exits, which is
what a thread started by Python has anyway; keylane closes its clients (and their threads)
before then (:func:`keylane.brokers.pulsar._client.close_client`).

Imports the standard library only.
"""

from __future__ import annotations

import ctypes
import threading

__all__ = ["pin_thread_state"]

_pinned: set[int] = set()
_ensure = ctypes.pythonapi.PyGILState_Ensure
_ensure.restype = ctypes.c_int
_ensure.argtypes = []


def pin_thread_state() -> None:
    """Keep the calling thread's Python thread state alive from now on (idempotent)."""
    ident = threading.get_ident()
    if ident not in _pinned:
        _pinned.add(ident)
        _ensure()
