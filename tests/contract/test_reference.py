"""The reference models of ``reference.py`` against the spec's published vectors.

No broker here: if these fail, the expected owners computed by the contract tests are wrong.
"""

from __future__ import annotations

import pytest

from keylane.hashing import murmur31, partition_for_key, slot_consistent, slot_range
from tests.contract.reference import (
    ConsistentHashRing,
    HashRangeAutoSplit,
    failover_active_for_partition,
    failover_ring_pick,
    key_with_range_slot,
    sticky_owner,
)


@pytest.mark.parametrize(
    ("key", "masked", "consistent", "ranged"),
    [
        ("Order-3459134", 964695987, 20788, 6067),
        ("NONE_KEY", 504741539, 56505, 48803),
        ("key-0", 1664612543, 23544, 63679),
        ("key-1", 414258592, 11858, 5536),
        ("a", None, 42456, 27058),
        ("", 0, 1, 1),
    ],
)
def test_slot_vectors(key: str, masked: int | None, consistent: int, ranged: int) -> None:
    if masked is not None:
        assert murmur31(key) == masked
    assert slot_consistent(key) == consistent
    assert slot_range(key) == ranged


@pytest.mark.parametrize(
    ("topic", "active"),
    [("t1", "consumer-a"), ("t2", "consumer-b"), ("t3", "consumer-a"), ("t4", "consumer-a")],
)
def test_failover_ring_vectors(topic: str, active: str) -> None:
    # Case 9's reference vectors (section 1.2 ring over "persistent://public/default/tN").
    full = f"persistent://public/default/{topic}"
    assert failover_ring_pick(["consumer-a", "consumer-b"], full) == active
    assert failover_ring_pick(["consumer-b", "consumer-a"], full) == active  # order-free


def test_failover_partition_vectors() -> None:
    # Docs: 9 partitions, A B C -> A: P0,P3,P6; B: P1,P4,P7; C: P2,P5,P8.
    owners = [failover_active_for_partition(["C", "A", "B"], p) for p in range(9)]
    assert owners == ["A", "B", "C"] * 3
    # Priority: only the highest level (lowest number) is eligible.
    assert failover_active_for_partition([("A", 1), ("B", 0)], 0) == "B"
    assert failover_active_for_partition([("A", 1), ("B", 0)], 1) == "B"


def test_consistent_ring_vectors() -> None:
    # Case 34: c1, c2 -> key-0,2,4,6 -> c1, the rest -> c2; c3 takes key-0,2,6 only.
    ring = ConsistentHashRing.of(["c1", "c2"])
    owners = {f"key-{i}": ring.select(f"key-{i}") for i in range(10)}
    assert [k for k, c in owners.items() if c == "c1"] == ["key-0", "key-2", "key-4", "key-6"]
    ring.add("c3")
    after = {f"key-{i}": ring.select(f"key-{i}") for i in range(10)}
    moved = sorted(k for k in owners if owners[k] != after[k])
    assert moved == ["key-0", "key-2", "key-6"]
    assert all(after[k] == "c3" for k in moved)


def test_consistent_ring_remove_restores_previous_owner() -> None:
    ring = ConsistentHashRing.of(["c1", "c2"])
    before = {f"k{i}": ring.select(f"k{i}") for i in range(200)}
    ring.add("c3")
    ring.remove("c3")
    assert {f"k{i}": ring.select(f"k{i}") for i in range(200)} == before


def test_hash_range_auto_split_vectors() -> None:
    # Docs: after C1..C4 join: C3 [0,16384], C2 (16384,32768], C4 (32768,49152], C1 (49152,65536].
    sel = HashRangeAutoSplit()
    for c in ["C1", "C2", "C3", "C4"]:
        sel.add(c)
    assert sel.ranges() == {
        "C3": [(0, 16384)],
        "C2": [(16385, 32768)],
        "C4": [(32769, 49152)],
        "C1": [(49153, 65536)],
    }
    assert sel.select("Order-3459134") == "C3"
    assert sel.select_slot(16384) == "C3"
    assert sel.select_slot(16385) == "C2"
    sel.remove("C4")
    assert sel.ranges()["C1"] == [(32769, 65536)]
    sel.remove("C1")
    assert sel.ranges()["C2"] == [(16385, 65536)]


def test_sticky_owner_and_key_search() -> None:
    ranges = {"S1": [(0, 32767)], "S2": [(32768, 65535)]}
    assert sticky_owner(ranges, "Order-3459134") == "S1"
    assert sticky_owner({"S1": [(0, 1000)]}, "Order-3459134") is None
    key = key_with_range_slot(16384)
    assert slot_range(key) == 16384


def test_partition_routing_vector() -> None:
    # Case 49: "key-1" on 3 partitions with Murmur3_32 routing -> 414258592 % 3 = 1.
    assert partition_for_key("key-1", 3) == 1
