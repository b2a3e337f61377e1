"""Terminal rendering of a checker :class:`~keylane.check.report.Report` with rich.

Keys, consumer names, message ids and outcomes come from the history as they are: they are shown
verbatim (never read as rich markup) and printable on any terminal (a lone surrogate is shown as
its escape, ``\ud800``).

This module imports rich and :mod:`keylane.check.report` only; no backend, no CLI framework.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from keylane.check.records import Attempt
from keylane.check.report import Report

__all__ = ["render_report"]

_KINDS: tuple[tuple[str, str, str], ...] = (
    ("exclusivity_violations", "exclusivity violations", "pairs of same-key attempts overlapping"),
    ("order_violations", "order violations", "messages completed before an earlier seq"),
    ("excused_order", "excused reorderings", "... where every overtaken message was redelivered"),
    ("lost_messages", "lost messages", "published, never completed ok"),
    ("duplicates", "duplicates", "messages completed ok more than once"),
    ("redelivered_duplicates", "redelivered duplicates", "... each later time on a redelivery"),
    ("lost_updates", "lost updates", "sum of max(0, completions - counter) per key"),
)


def _printable(text: str) -> str:
    """``text`` with anything UTF-8 cannot encode (lone surrogates) shown as an escape."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


_DECISION_KINDS: tuple[tuple[str, str], ...] = (
    ("committed", "decisions committed"),
    ("dedupes", "dedupe no-ops (event already decided)"),
    ("fenced", "fenced commits (someone committed first)"),
    ("committed_overlaps", "committed read-modify-writes of one key overlapping"),
    ("version_conflicts", "commits not writing read_version + 1, or one version twice"),
    ("decided_twice", "event ids committed more than once"),
    ("commit_order", "commits of a key out of publish order"),
    ("unbacked_dedupes", "dedupes that no commit of the event backs (skipped decisions)"),
)
_INFORMATIONAL = frozenset({"committed", "dedupes", "fenced"})


def render_report(report: Report) -> RenderableType:
    """Build the rich renderable: verdict, totals, a count per anomaly kind, then examples."""
    parts: list[RenderableType] = [_verdict(report), _totals(report), _counts(report)]
    if report.decisions is not None:
        parts.append(_decisions(report))
    parts.extend(_examples(report))
    return Group(*parts)


def _decisions(report: Report) -> RenderableType:
    decisions = report.decisions
    assert decisions is not None
    table = Table(title="decisions (committed)", title_justify="left", show_edge=False)
    table.add_column("kind")
    table.add_column("count", justify="right")
    counts = decisions.counts()
    for name, label in _DECISION_KINDS:
        value = counts[name]
        style = "green" if value == 0 or name in _INFORMATIONAL else "bold red"
        table.add_row(label, Text(str(value), style=style))
    rows = [
        (e.kind, e.key, e.detail, " | ".join(_attempt(a) for a in e.attempts))
        for e in decisions.examples
    ]
    if not rows:
        return table
    examples = _table("decision anomalies", ("kind", "key", "detail", "attempts"), rows)
    return Group(
        table,
        Text("(overlapping attempts are expected under faults in a decision history)", "dim"),
        examples,
    )


def _verdict(report: Report) -> Text:
    if report.clean:
        return Text("CLEAN: no anomaly found", style="bold green")
    return Text("ANOMALIES FOUND", style="bold red")


def _totals(report: Report) -> Text:
    t = report.totals
    outcomes = ", ".join(f"{name} {n}" for name, n in sorted(t.outcomes.items())) or "none"
    line = (
        f"{t.attempts} attempts of {t.messages} messages on {t.keys} keys by {t.consumers} "
        f"consumers; {t.published} published; outcomes: {outcomes}"
    )
    if not t.published:
        line += " (no publications recorded: lost messages not checked)"
    if t.skipped_lines:
        line += f"; {t.skipped_lines} malformed lines skipped"
    if report.strict_order:
        line += "; strict order (no reordering excused)"
    return Text(_printable(line), style="dim")


def _counts(report: Report) -> Table:
    table = Table(title="anomalies", title_justify="left", show_edge=False)
    table.add_column("kind")
    table.add_column("count", justify="right")
    table.add_column("meaning", style="dim")
    counts = report.counts()
    for name, label, meaning in _KINDS:
        value = counts[name]
        if value is None:
            shown = Text("not checked", style="dim")
        else:
            excused = name in ("excused_order", "redelivered_duplicates")
            style = "green" if value == 0 or excused else "bold red"
            shown = Text(str(value), style=style)
        table.add_row(label, shown, meaning)
    return table


def _attempt(a: Attempt) -> str:
    return (
        f"seq {a.seq} #{a.attempt} on {a.consumer} [{a.start:.6f}, {a.end:.6f}] "
        f"{a.outcome} ({a.message_id})"
    )


def _table(title: str, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> Table:
    table = Table(title=title, title_justify="left", show_edge=False)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(Text(_printable(cell)) for cell in row))
    return table


def _title(kind: str, shown: int, total: int | None) -> str:
    if total is not None and total > shown:
        return f"{kind}: earliest {shown} of {total}"
    return kind


def _examples(report: Report) -> list[RenderableType]:
    counts = report.counts()
    tables: list[RenderableType] = []
    rows: list[tuple[str, ...]]
    if report.exclusivity_violations:
        rows = [
            (v.key, _attempt(v.first), _attempt(v.second)) for v in report.exclusivity_violations
        ]
        title = _title("exclusivity violations", len(rows), counts["exclusivity_violations"])
        tables.append(_table(title, ("key", "first", "overlapping"), rows))
    for kind, items, total in (
        ("order violations", report.order_violations, counts["order_violations"]),
        ("excused reorderings", report.excused_order, counts["excused_order"]),
    ):
        if items:
            rows = [
                (
                    v.key,
                    f"seq {v.seq} at {v.completed:.6f} ({v.message_id})",
                    f"seq {v.overtaken_seq} at {v.overtaken_completed:.6f} "
                    f"({v.overtaken_message_id})",
                )
                for v in items
            ]
            title = _title(kind, len(rows), total)
            tables.append(_table(title, ("key", "completed", "before earlier"), rows))
    if report.lost_messages:
        rows = [
            (m.key, str(m.seq), m.message_id, str(m.attempts), m.last_outcome or "never attempted")
            for m in report.lost_messages
        ]
        columns = ("key", "seq", "message id", "attempts", "last outcome")
        tables.append(_table(_title("lost messages", len(rows), report.lost_count), columns, rows))
    for kind, dups, total in (
        ("duplicates", report.duplicates, report.duplicate_count),
        ("redelivered duplicates", report.redelivered_duplicates, counts["redelivered_duplicates"]),
    ):
        if dups:
            rows = [
                (d.key, str(d.seq), d.message_id, str(d.completions), ", ".join(d.consumers))
                for d in dups
            ]
            columns = ("key", "seq", "message id", "completions", "by")
            tables.append(_table(_title(kind, len(rows), total), columns, rows))
    if report.lost_update_examples:
        rows = [
            (u.key, str(u.completions), str(u.counter), str(u.lost))
            for u in report.lost_update_examples
        ]
        tables.append(_table("lost updates", ("key", "completions", "counter", "lost"), rows))
    return tables
