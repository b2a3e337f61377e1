"""keylane.hashing against the Murmur3 reference and vectors of the spec (section 6.1)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keylane.hashing import (
    murmur3_32,
    murmur31,
    partition_for_key,
    slot_consistent,
    slot_range,
)


def reference_murmur3_32(data: bytes, seed: int = 0) -> int:
    """The spec's pure-Python MurmurHash3 x86_32 (section 6.1), kept independent of mmh3."""
    c1, c2, h, n = 0xCC9E2D51, 0x1B873593, seed, len(data)
    for i in range(n // 4):
        k = int.from_bytes(data[4 * i : 4 * i + 4], "little")
        k = (k * c1) & 0xFFFFFFFF
        k = ((k << 15) | (k >> 17)) & 0xFFFFFFFF
        k = (k * c2) & 0xFFFFFFFF
        h ^= k
        h = ((h << 13) | (h >> 19)) & 0xFFFFFFFF
        h = (h * 5 + 0xE6546B64) & 0xFFFFFFFF
    k = 0
    for i, b in enumerate(data[4 * (n // 4) :]):
        k ^= b << (8 * i)
    if n % 4:
        k = (k * c1) & 0xFFFFFFFF
        k = ((k << 15) | (k >> 17)) & 0xFFFFFFFF
        k = (k * c2) & 0xFFFFFFFF
        h ^= k
    h ^= n
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & 0xFFFFFFFF
    return h ^ (h >> 16)


# (key, raw murmur3_32, consistent slot, range slot) from the spec, section 6.1.
VECTORS = [
    ("Order-3459134", 3112179635, 20788, 6067),
    ("NONE_KEY", 2652225187, 56505, 48803),
    ("key-0", 3812096191, 23544, 63679),
    ("key-1", 2561742240, 11858, 5536),
    ("a", 1009084850, 42456, 27058),
    ("", 0, 1, 1),
]


@pytest.mark.parametrize(("key", "raw", "consistent", "ranged"), VECTORS)
def test_spec_vectors(key: str, raw: int, consistent: int, ranged: int) -> None:
    # Given a key of the spec's table, then every hash matches the published value
    assert murmur3_32(key) == raw
    assert reference_murmur3_32(key.encode()) == raw
    assert murmur31(key) == raw & 0x7FFFFFFF
    assert slot_consistent(key) == consistent
    assert slot_range(key) == ranged


def test_masked_values_of_the_spec() -> None:
    assert murmur31("Order-3459134") == 964695987
    assert murmur31("NONE_KEY") == 504741539
    assert murmur31("key-0") == 1664612543
    assert murmur31("key-1") == 414258592


def test_doc_check_of_range_slot() -> None:
    # Pulsar docs: murmur32("Order-3459134") = 3112179635, mod 65536 = 6067
    assert 3112179635 % 65536 == 6067 == slot_range("Order-3459134")


def test_str_and_bytes_hash_alike() -> None:
    assert murmur3_32("käse") == murmur3_32("käse".encode())
    assert slot_consistent(b"key-1") == slot_consistent("key-1")


def test_partition_routing_case_49() -> None:
    # Spec case 49: "key-1" on 3 partitions with Murmur3_32Hash -> 414258592 % 3 = 1
    assert partition_for_key("key-1", 3) == 414258592 % 3 == 1


def test_partition_count_must_be_positive() -> None:
    with pytest.raises(ValueError, match="partitions must be positive"):
        partition_for_key("k", 0)


@given(st.binary(max_size=64))
def test_matches_reference_implementation(data: bytes) -> None:
    assert murmur3_32(data) == reference_murmur3_32(data)


@given(st.text(max_size=32))
def test_slots_stay_in_range(key: str) -> None:
    assert 1 <= slot_consistent(key) <= 65535
    assert 1 <= slot_range(key) <= 65535
