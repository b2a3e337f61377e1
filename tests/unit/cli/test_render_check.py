"""Rich rendering of a report."""

from __future__ import annotations

from rich.console import Console

from keylane.check import Report, check
from keylane.cli.render.check import render_report
from tests.unit.check.factories import attempt, history


def text_of(report: Report) -> str:
    console = Console(record=True, width=200, color_system=None)
    console.print(render_report(report))
    return console.export_text()


def test_clean_report_says_so_and_counts_zero():
    h = history(attempt("u1", 1, 0, 1), published_seqs={"u1": 1})
    text = text_of(check(h))
    assert "CLEAN: no anomaly found" in text
    assert "1 attempts of 1 messages on 1 keys by 1 consumers; 1 published; outcomes: ok 1" in text
    assert "lost updates" in text
    assert "not checked" in text  # no counters given
    assert "ANOMALIES" not in text


def test_every_kind_of_anomaly_is_shown_with_an_example():
    h = history(
        attempt("u1", 1, 0, 10, consumer="c1"),
        attempt("u1", 2, 5, 6, consumer="c2"),  # overlaps and overtakes u1/1
        attempt("u1", 1, 11, 12, consumer="c2", number=2),  # duplicate of u1/1
        attempt("u2", 1, 0, 1, "error"),
        attempt("u2", 2, 1, 2),
        attempt("u2", 1, 2, 3, number=2),  # excused: u2/1 was redelivered
        published_seqs={"u1": 3},  # u1/3 lost
    )
    text = text_of(check(h, counters={"u1": 1, "u2": 2}))
    assert "ANOMALIES FOUND" in text
    assert "seq 1 #1 on c1 [0.000000, 10.000000] ok (u1/1)" in text
    assert "seq 2 #1 on c2 [5.000000, 6.000000] ok (u1/2)" in text
    assert "seq 2 at 6.000000 (u1/2)" in text  # order violation
    assert "excused reorderings" in text
    assert "seq 2 at 2.000000 (u2/2)" in text
    assert "never attempted" in text  # u1/3
    assert "c1, c2" in text  # duplicate's consumers
    assert "no publications recorded" not in text


def test_without_publications_the_loss_check_is_flagged():
    text = text_of(check(history(attempt("u1", 1, 0, 1))))
    assert "no publications recorded: lost messages not checked" in text


def test_history_strings_are_shown_verbatim_never_as_markup():
    # Given an anomaly on a key and consumers that look like rich markup
    h = history(
        attempt("[/bold]", 1, 0, 10, consumer="[red]c1"),
        attempt("[/bold]", 2, 5, 6, consumer="c2[/]"),
    )
    # Then rendering neither raises MarkupError nor styles them: the text is verbatim
    text = text_of(check(h))
    assert "[/bold]" in text
    assert "[red]c1" in text
    assert "c2[/]" in text


def test_a_lone_surrogate_is_shown_as_its_escape():
    # Given an in-memory history (not read from a file) with a key UTF-8 cannot encode
    h = history(
        attempt("k\ud800", 1, 0, 10, outcome="o\udfff", consumer="c1"),
        attempt("k\ud800", 1, 5, 6, consumer="c2"),
    )
    # Then the report is printable on a UTF-8 terminal, with the escape in place of the surrogate
    text = text_of(check(h))
    text.encode("utf-8")
    assert "k\\ud800" in text
    assert "o\\udfff" in text
