"""Message templates: Jinja2 in a sandbox, compiled when the journeys file loads.

- :func:`compile_template` parses and compiles once, and rejects at load time what can be known
  then: syntax errors, variables other than :data:`VARIABLES`, and ``trigger`` used other than as
  ``trigger.<property>`` (the engine keeps only the trigger properties that templates and
  conditions name, so a run's state stays small).
- :meth:`Template.render` renders with ``StrictUndefined``: a missing property is a
  :class:`RenderError` (the engine counts a ``template_error`` skip), unless the template gives a
  fallback with ``| default(...)``.

Variables: ``brand`` (``id``, ``name``), ``profile`` (the subscriber's attributes), ``trigger``
(the run's trigger properties), ``journey`` (the journey's name).

Imports jinja2 only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jinja2
from jinja2 import meta, nodes
from jinja2.sandbox import SandboxedEnvironment

__all__ = ["VARIABLES", "RenderError", "Template", "TemplateCompileError", "compile_template"]

#: The names a template may use.
VARIABLES = frozenset({"brand", "profile", "trigger", "journey"})

_ENV = SandboxedEnvironment(
    undefined=jinja2.StrictUndefined,
    autoescape=False,
    keep_trailing_newline=False,
    trim_blocks=True,
    lstrip_blocks=True,
)


class TemplateCompileError(ValueError):
    """A template cannot be compiled; the loader adds the file, journey, step and field."""


class RenderError(ValueError):
    """A template failed at render time (a missing property, a sandbox violation, ...)."""


@dataclass(frozen=True, slots=True)
class Template:
    """A compiled template.

    Attributes:
        source: the template text as written.
        trigger_keys: the ``trigger`` properties it reads.
    """

    source: str
    trigger_keys: frozenset[str]
    _compiled: jinja2.Template = field(repr=False, compare=False)

    def render(self, context: Mapping[str, Any]) -> str:
        """The rendered text, stripped of surrounding whitespace.

        Raises:
            RenderError: the template failed (its message says why).
        """
        try:
            return self._compiled.render(context).strip()
        except Exception as exc:  # the sandbox can raise anything a template provokes
            raise RenderError(f"{type(exc).__name__}: {exc}") from None


def trigger_keys(ast: nodes.Node) -> frozenset[str]:
    """The ``trigger.<name>`` / ``trigger["name"]`` properties an AST reads.

    Raises:
        TemplateCompileError: ``trigger`` is used other than through a constant attribute.
    """
    keys: set[str] = set()
    allowed: set[int] = set()
    for node in ast.find_all((nodes.Getattr, nodes.Getitem)):
        base = getattr(node, "node", None)
        if not (isinstance(base, nodes.Name) and base.name == "trigger"):
            continue
        if isinstance(node, nodes.Getattr):
            keys.add(node.attr)
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
            if not isinstance(node.arg.value, str):
                continue
            keys.add(node.arg.value)
        else:
            continue
        allowed.add(id(base))
    for name in ast.find_all(nodes.Name):
        if name.name == "trigger" and id(name) not in allowed:
            raise TemplateCompileError(
                "'trigger' may only be used as trigger.<property> or trigger['<property>']"
            )
    return frozenset(keys)


def compile_template(source: str) -> Template:
    """Compile ``source``.

    Raises:
        TemplateCompileError: a syntax error, an unknown variable or a bad use of ``trigger``.
    """
    if not source.strip():
        raise TemplateCompileError("is empty")
    try:
        ast = _ENV.parse(source)
        compiled = _ENV.from_string(ast)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateCompileError(f"syntax error on line {exc.lineno}: {exc.message}") from None
    unknown = meta.find_undeclared_variables(ast) - VARIABLES
    if unknown:
        raise TemplateCompileError(
            f"unknown variable(s) {', '.join(sorted(unknown))}; "
            f"a template may use {', '.join(sorted(VARIABLES))}"
        )
    return Template(source, trigger_keys(ast), compiled)
