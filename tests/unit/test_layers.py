"""The layer rule, checked on every import of every module under src/keylane (a table per rule).

Dependencies point down only (docs/architecture.md, "Layers"):

0. ground: errors, hashing, resource, _validate, clock
1. contracts and their backends: brokers, locks, state, providers
2. engine: lanes, check
3. domain: journeys (pure: no asyncio, no I/O)
4. applications: runtime, workload, audit, compare, bench, sim, observability (metrics, tracing)
5. web: the ASGI apps (the embedded gateway, the service's API and dashboard)
6. service: the processes that put the runtime and the web apps together
7. cli: the ``keylane`` command, the only place that imports typer or rich

A package may import its own layer only along the edges of :data:`SAME_LAYER`. Imports inside
functions count too. ``keylane/__init__.py`` (the public face) may import up to the engine.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "keylane"

LAYERS: dict[str, float] = {
    **dict.fromkeys(("errors", "hashing", "resource", "_validate", "clock"), 0),
    **dict.fromkeys(("brokers", "locks", "state", "providers"), 1),
    **dict.fromkeys(("lanes", "check"), 2),
    "journeys": 3,
    **dict.fromkeys(
        ("runtime", "workload", "audit", "compare", "bench", "sim", "observability"), 4
    ),
    "web": 5,
    "service": 6,
    **dict.fromkeys(("cli", "__main__"), 7),
    "<face>": 2.5,  # keylane/__init__.py: above the engine, below the domain
}

#: Imports allowed within one layer: importer -> importable packages of the same layer.
SAME_LAYER: dict[str, frozenset[str]] = {
    **dict.fromkeys(("_validate", "clock", "hashing", "resource"), frozenset({"errors"})),
    "workload": frozenset({"runtime"}),
    "audit": frozenset(),
    "bench": frozenset({"compare", "runtime", "workload", "audit"}),
    "sim": frozenset({"runtime", "workload", "audit"}),
    "observability": frozenset({"runtime"}),
    "service": frozenset(),
    "__main__": frozenset({"cli"}),
}

#: Backend modules (and third-party backend libraries) that backend-free packages never import.
BACKEND_MODULES = (
    "keylane.brokers.memory",
    "keylane.brokers.pulsar",
    "keylane.locks.redis",
    "keylane.locks.memory",
    "keylane.state.sqlite",
    "keylane.state.postgres",
    "keylane.providers.webhook",
)
BACKEND_LIBRARIES = frozenset({"pulsar", "_pulsar", "redis", "asyncpg", "sqlite3", "httpx"})
#: Packages that import no backend: only the contracts.
BACKEND_FREE = frozenset({"journeys", "lanes", "check"})
#: Packages that import no asyncio either (pure domain).
PURE = frozenset({"journeys"})

#: Third-party libraries allowed only under one package.
CONFINED: dict[str, frozenset[str]] = {
    "typer": frozenset({"cli"}),
    "rich": frozenset({"cli"}),
    "click": frozenset({"cli"}),
    "starlette": frozenset({"web"}),
    "uvicorn": frozenset({"web"}),
    "fastapi": frozenset({"web"}),
    "sse_starlette": frozenset({"web"}),
}

#: The one module that reads the environment.
ENVIRONMENT_READER = "keylane.runtime.settings"

#: Subpackages only some modules may import: module prefix -> importers (module prefixes).
#: The chaos harness (service/chaos, layer 6) is its CLI's alone; the worker loads only its
#: test-only ``--fault-hooks`` module, which itself imports only the lanes' handler contract.
PRIVATE: dict[str, frozenset[str]] = {
    "keylane.service.chaos": frozenset({"keylane.service.chaos", "keylane.cli.chaos"}),
    "keylane.service.chaos.hooks": frozenset({"keylane.service.chaos", "keylane.service.worker"}),
}
#: What the chaos hooks module may import (it runs inside every worker given --fault-hooks).
HOOKS_MODULE = "keylane.service.chaos.hooks"
HOOKS_IMPORTS = frozenset(
    {"__future__", "asyncio", "json", "math", "collections", "dataclasses", "keylane"}
)
HOOKS_KEYLANE = ("keylane.lanes", "keylane.brokers.base")


@dataclass(frozen=True)
class Import:
    module: str  # the importing module, e.g. keylane.lanes.scheduler
    package: str  # its top-level package under keylane, e.g. lanes
    target: str  # what it imports, e.g. keylane.brokers.base or asyncio
    line: int

    def __str__(self) -> str:
        return f"{self.module}:{self.line} imports {self.target}"


def _module_of(path: Path, root: Path = SRC) -> tuple[str, str]:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    package = parts[1] if len(parts) > 1 else "<face>"
    return ".".join(parts), package


def _imports(source: str, path: Path) -> Iterator[tuple[str, int]]:
    for node in ast.walk(ast.parse(source, str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module, node.lineno
            for alias in node.names:  # ``from keylane.runtime import settings``
                yield f"{node.module}.{alias.name}", node.lineno


def collect(root: Path = SRC) -> list[Import]:
    found = []
    for path in sorted(root.rglob("*.py")):
        module, package = _module_of(path, root)
        for target, line in _imports(path.read_text(encoding="utf-8"), path):
            found.append(Import(module, package, target, line))
    return found


def environment_reads(root: Path = SRC) -> list[str]:
    """``module:line`` of every ``os.environ`` / ``os.getenv`` use outside the settings module."""
    reads = []
    for path in sorted(root.rglob("*.py")):
        module, _ = _module_of(path, root)
        if module == ENVIRONMENT_READER:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            name = None
            if (
                isinstance(node, ast.Attribute)
                and node.attr in ("environ", "getenv", "environb")
                and isinstance(node.value, ast.Name)
                and node.value.id == "os"
            ):
                name = f"os.{node.attr}"
            elif (
                isinstance(node, ast.ImportFrom)
                and node.module == "os"
                and any(a.name in ("environ", "getenv", "environb") for a in node.names)
            ):
                name = "from os import environ"
            if name:
                reads.append(f"{module}:{getattr(node, 'lineno', 0)} ({name})")
    return reads


def layer_violations(imports: list[Import]) -> list[str]:
    bad = []
    for imp in imports:
        if not imp.target.startswith("keylane."):
            continue
        target = imp.target.split(".")[1]
        if target not in LAYERS or target == imp.package:
            continue
        mine, theirs = LAYERS[imp.package], LAYERS[target]
        if theirs > mine:
            bad.append(f"{imp}: layer {theirs} ({target}) above layer {mine} ({imp.package})")
        elif theirs == mine and target not in SAME_LAYER.get(imp.package, frozenset()):
            bad.append(f"{imp}: same layer, not an allowed edge ({imp.package} -> {target})")
    return bad


def backend_violations(imports: list[Import]) -> list[str]:
    bad = []
    for imp in imports:
        if imp.package not in BACKEND_FREE:
            continue
        root = imp.target.split(".")[0]
        if root in BACKEND_LIBRARIES or imp.target.startswith(BACKEND_MODULES):
            bad.append(f"{imp}: {imp.package}/ imports no backend")
        if imp.package in PURE and root == "asyncio":
            bad.append(f"{imp}: {imp.package}/ is pure (no asyncio)")
    return bad


def confinement_violations(imports: list[Import]) -> list[str]:
    bad = []
    for imp in imports:
        allowed = CONFINED.get(imp.target.split(".")[0])
        if allowed is not None and imp.package not in allowed:
            bad.append(f"{imp}: only {', '.join(sorted(allowed))}/ may import it")
    return bad


def private_violations(imports: list[Import]) -> list[str]:
    bad = []
    for imp in imports:
        owners = [p for p in PRIVATE if imp.target == p or imp.target.startswith(p + ".")]
        if not owners:
            continue
        allowed = PRIVATE[max(owners, key=len)]
        if not any(imp.module == a or imp.module.startswith(a + ".") for a in allowed):
            bad.append(f"{imp}: only {', '.join(sorted(allowed))} may import it")
    for imp in imports:
        if imp.module != HOOKS_MODULE:
            continue
        root = imp.target.split(".")[0]
        if root not in HOOKS_IMPORTS or (
            root == "keylane" and not imp.target.startswith(HOOKS_KEYLANE)
        ):
            bad.append(f"{imp}: the worker's fault hooks import only the lanes' contract")
    return bad


def test_the_chaos_harness_is_private_to_its_cli_and_the_worker_hooks() -> None:
    assert private_violations(collect()) == []
    # and the rule on the hooks' own imports can fail
    planted = [Import(HOOKS_MODULE, "service", "keylane.service.chaos.runner", 1)]
    planted.append(Import(HOOKS_MODULE, "service", "httpx", 2))
    assert len(private_violations(planted)) == 2


def test_every_package_has_a_layer() -> None:
    packages = {_module_of(p)[1] for p in SRC.rglob("*.py")}
    assert sorted(packages - LAYERS.keys()) == []


def test_dependencies_point_down_only() -> None:
    assert layer_violations(collect()) == []


def test_journeys_lanes_and_check_import_no_backend() -> None:
    assert backend_violations(collect()) == []


def test_cli_and_web_libraries_stay_in_their_packages() -> None:
    assert confinement_violations(collect()) == []


def test_only_the_settings_module_reads_the_environment() -> None:
    assert environment_reads() == []


# The rules must be able to fail: each gets one violation it has to find.


@pytest.mark.parametrize(
    ("package", "source", "rule"),
    [
        ("lanes", "from keylane.runtime import Worker\n", layer_violations),
        ("brokers", "import keylane.state\n", layer_violations),
        ("journeys", "from keylane.brokers.memory import MemoryBroker\n", backend_violations),
        ("lanes", "import pulsar\n", backend_violations),
        ("check", "def f():\n    import asyncpg\n", backend_violations),
        ("journeys", "import asyncio\n", backend_violations),
        ("runtime", "from rich.console import Console\n", confinement_violations),
        ("check", "import typer\n", confinement_violations),
        ("runtime", "import starlette\n", confinement_violations),
        ("service", "from keylane.service.chaos.runner import run_chaos\n", private_violations),
        ("cli", "import keylane.service.chaos.hooks\n", private_violations),
    ],
)
def test_each_rule_catches_a_planted_violation(
    tmp_path: Path, package: str, source: str, rule: object
) -> None:
    planted = tmp_path / "keylane" / package / "planted.py"
    planted.parent.mkdir(parents=True)
    planted.write_text(source)
    imports = [
        Import(f"keylane.{package}.planted", package, target, line)
        for target, line in _imports(source, planted)
    ]
    assert callable(rule)
    assert rule(imports) != []


def test_the_environment_rule_catches_a_planted_read(tmp_path: Path) -> None:
    planted = tmp_path / "keylane" / "lanes" / "planted.py"
    planted.parent.mkdir(parents=True)
    planted.write_text("import os\nHOME = os.environ.get('HOME')\n")
    assert environment_reads(tmp_path / "keylane") == ["keylane.lanes.planted:2 (os.environ)"]
