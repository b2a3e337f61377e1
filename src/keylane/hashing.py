"""Pulsar's hash functions: Murmur3_32, Key_Shared slots and partition routing.

These decide which consumer owns a key and which partition a key lands on, so every backend and
every test computes them here. Pure functions; imports no backend.
"""

from __future__ import annotations

import mmh3

__all__ = [
    "KEY_SHARED_CONSISTENT_RANGE",
    "KEY_SHARED_RANGE_SIZE",
    "murmur3_32",
    "murmur31",
    "partition_for_key",
    "slot_consistent",
    "slot_range",
]

#: Hash space of the hash-range selectors (auto-split ranges and STICKY): slots 0..65535.
KEY_SHARED_RANGE_SIZE = 65536
#: Slot range of the consistent-hashing selector: 1..65535.
KEY_SHARED_CONSISTENT_RANGE = (1, 65535)


def _bytes(key: bytes | str) -> bytes:
    return key.encode("utf-8") if isinstance(key, str) else key


def murmur3_32(key: bytes | str) -> int:
    """Standard MurmurHash3 x86_32, seed 0, as an unsigned 32-bit int (UTF-8 for strings)."""
    return mmh3.hash(_bytes(key), 0, signed=False)


def murmur31(key: bytes | str) -> int:
    """Pulsar's ``Murmur3_32Hash.makeHash``: :func:`murmur3_32` masked to 31 bits."""
    return mmh3.hash(_bytes(key), 0, signed=False) & 0x7FFFFFFF


def slot_consistent(key: bytes | str) -> int:
    """Key_Shared slot for the consistent-hashing selector: ``murmur31 % 65535 + 1``."""
    return murmur31(key) % 65535 + 1


def slot_range(key: bytes | str) -> int:
    """Key_Shared slot for the hash-range selectors: ``murmur31 % 65536``, with 0 mapped to 1."""
    return (murmur31(key) % KEY_SHARED_RANGE_SIZE) or 1


def partition_for_key(key: str, partitions: int) -> int:
    """Partition of a partition key: Murmur3_32 of its UTF-8 bytes (31-bit) modulo the count.

    This is the Java client's ``HashingScheme.Murmur3_32Hash``; keylane uses it on every backend,
    including the Python Pulsar client (whose own default, BoostHash, matches no other client).
    """
    if partitions <= 0:
        raise ValueError(f"partitions must be positive, got {partitions}")
    return murmur31(key) % partitions
