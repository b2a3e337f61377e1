"""Checks on a journey's step graph: references, reachability and loops without a wait.

Imports the domain's model only.
"""

from __future__ import annotations

from collections.abc import Mapping

from keylane.journeys.model import EXIT, Branch, Send, Step, Trigger, Wait, WaitFor

__all__ = ["GraphError", "check_graph", "targets"]

_INSTANT = (Trigger, Branch, Send)


class GraphError(ValueError):
    """A graph problem at ``step`` (and ``field``); the loader adds the file and journey."""

    def __init__(self, message: str, step: str, field: str | None = None) -> None:
        super().__init__(message)
        self.step = step
        self.field = field


def targets(step: Step) -> list[tuple[str, str]]:
    """``(field, target)`` of every step ``step`` can go to."""
    if isinstance(step, Trigger | Wait | Send):
        return [("next", step.next)]
    if isinstance(step, WaitFor):
        return [("on_arrived", step.on_arrived), ("on_timeout", step.on_timeout)]
    if isinstance(step, Branch):
        return [("then", step.then), ("else", step.otherwise)]
    return []


def check_graph(trigger: Trigger, steps: Mapping[str, Step]) -> None:
    """Raise :class:`GraphError` for a bad reference, an unreachable step or an instant loop."""
    for step in steps.values():
        for field, target in targets(step):
            if target != EXIT and target not in steps:
                raise GraphError(f"refers to unknown step {target!r}", step.id, field)
            if target == trigger.id:
                raise GraphError("cannot go back to the trigger", step.id, field)
    _check_reachable(trigger, steps)
    _check_instant_loops(steps)


def _check_reachable(trigger: Trigger, steps: Mapping[str, Step]) -> None:
    seen = {trigger.id}
    todo = [trigger.id]
    while todo:
        for _, target in targets(steps[todo.pop()]):
            if target in steps and target not in seen:
                seen.add(target)
                todo.append(target)
    for step_id in steps:
        if step_id not in seen:
            raise GraphError("is never reached from the trigger", step_id)


def _check_instant_loops(steps: Mapping[str, Step]) -> None:
    """Steps that run at once (trigger, branch, send) must not loop without a wait between."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(step_id: str, path: list[str]) -> None:
        state[step_id] = 1
        for _, target in targets(steps[step_id]):
            if target not in steps or not isinstance(steps[target], _INSTANT):
                continue
            if state.get(target) == 1:
                loop = " -> ".join([*path[path.index(target) :], target])
                raise GraphError(f"loops without a wait: {loop}", target)
            if target not in state:
                visit(target, [*path, target])
        state[step_id] = 2

    for step_id, step in steps.items():
        if isinstance(step, _INSTANT) and step_id not in state:
            visit(step_id, [step_id])
