"""The cursor: mark-delete position, individually acknowledged entries, batches, rewind."""

from __future__ import annotations

from types import MappingProxyType

from keylane.brokers.memory.storage import Cursor, Entry, TopicLog, partition_index


def single(entry_id: int) -> Entry:
    return Entry(entry_id, (), "k", None)


def batch(entry_id: int, size: int) -> Entry:
    entry = Entry(entry_id, (), "k", None)
    entry.size = size
    return entry


def test_in_order_acks_move_mark_delete() -> None:
    cursor = Cursor(-1)
    assert cursor.ack(single(0), -1) == 2
    assert cursor.mark_delete == 0
    assert set(cursor.deleted) == set()


def test_out_of_order_acks_fill_the_gap() -> None:
    cursor = Cursor(-1)
    for entry_id in (1, 2, 4):
        assert cursor.ack(single(entry_id), -1) == 2
    assert cursor.mark_delete == -1
    assert set(cursor.deleted) == {1, 2, 4}
    assert cursor.deleted.ranges() == [(1, 3), (4, 5)]
    cursor.ack(single(0), -1)
    assert cursor.mark_delete == 2
    assert set(cursor.deleted) == {4}
    assert cursor.is_acked(4)
    assert not cursor.is_acked(3)


def test_double_ack_is_a_no_op() -> None:
    cursor = Cursor(-1)
    assert cursor.ack(single(3), -1) == 2
    assert cursor.ack(single(3), -1) == 0
    cursor.ack(single(0), -1)
    assert cursor.ack(single(0), -1) == 0


def test_batch_entry_completes_when_every_index_is_acked() -> None:
    cursor = Cursor(-1)
    entry = batch(0, 3)
    assert cursor.ack(entry, 1) == 1
    assert cursor.ack(entry, 1) == 0
    assert cursor.unacked_indexes(entry) == [0, 2]
    assert cursor.unacked_count(entry) == 2
    assert cursor.ack(entry, 0) == 1
    assert cursor.ack(entry, 2) == 2
    assert cursor.mark_delete == 0
    assert cursor.batch_acks == {}
    assert cursor.unacked_count(entry) == 0


def test_cumulative_ack_covers_everything_before() -> None:
    cursor = Cursor(-1)
    cursor.ack(single(5), -1)
    cursor.ack_cumulative(single(3), -1, batch_level=False)
    assert cursor.mark_delete == 3
    # Entry 4 is still missing, 5 was acked individually.
    assert set(cursor.deleted) == {5}
    cursor.ack(single(4), -1)
    assert cursor.mark_delete == 5


def test_cumulative_ack_inside_a_batch_acks_the_prefix_at_batch_index_level() -> None:
    cursor = Cursor(-1)
    entry = batch(2, 4)
    cursor.ack_cumulative(entry, 1, batch_level=True)
    assert cursor.mark_delete == 1
    assert cursor.unacked_indexes(entry) == [2, 3]
    cursor.ack_cumulative(entry, 3, batch_level=True)
    assert cursor.mark_delete == 2


def test_cumulative_ack_inside_a_batch_stops_before_it_at_entry_level() -> None:
    cursor = Cursor(-1)
    entry = batch(2, 4)
    cursor.ack_cumulative(entry, 1, batch_level=False)
    assert cursor.mark_delete == 1
    assert cursor.unacked_indexes(entry) is None  # the whole batch is still to deliver
    cursor.ack_cumulative(entry, 3, batch_level=False)
    assert cursor.mark_delete == 2


def test_cumulative_ack_joins_the_acked_range_after_it() -> None:
    cursor = Cursor(-1)
    for entry_id in (4, 5, 6, 9):
        cursor.ack(single(entry_id), -1)
    cursor.ack_cumulative(single(3), -1, batch_level=False)
    assert cursor.mark_delete == 6
    assert cursor.deleted.ranges() == [(9, 10)]


def test_rewind_restarts_at_first_unacked() -> None:
    cursor = Cursor(-1)
    cursor.read_position = 10
    cursor.ack(single(0), -1)
    cursor.ack(single(1), -1)
    cursor.rewind()
    assert cursor.read_position == 2


def test_log_append_assigns_ids_and_sticky_keys() -> None:
    log = TopicLog("persistent://public/default/t-partition-3", 3, 42)
    props: MappingProxyType[str, str] = MappingProxyType({})
    e0 = log.append_single(b"a", "pk", None, props, 1.0, None)
    e1 = log.append_single(b"b", "pk", "ok", props, 1.0, None)
    e2 = log.append_single(b"c", None, None, props, 1.0, None)
    e3 = log.append_batch(
        [(b"d", "k1", None, props, 1.0, None), (b"e", "k2", None, props, 1.0, None)]
    )
    assert [e.entry_id for e in (e0, e1, e2, e3)] == [0, 1, 2, 3]
    assert (e0.sticky_key, e1.sticky_key, e2.sticky_key, e3.sticky_key) == (
        "pk",
        "ok",
        "NONE_KEY",
        "k1",
    )
    mid = e3.messages[1][4]
    assert (mid.partition, mid.ledger_id, mid.entry_id, mid.batch_index) == (3, 42, 3, 1)
    assert e0.messages[0][4].batch_index == -1
    assert log.get(3) is e3
    assert log.get(4) is None
    assert log.end == 4


def test_partition_index_parsing() -> None:
    assert partition_index("persistent://public/default/t-partition-7") == 7
    assert partition_index("persistent://public/default/t") == -1
    assert partition_index("persistent://public/default/t-partition-x") == -1
