"""The layers of ``ops``, read from its source: no import cycle, no service kind named outside
``ops/services/``, the lower layers importing nothing from the upper ones, and small modules.

Every import counts, at module level or inside a function (a function-level import is still a
dependency, only a later one). The allow-lists below are explicit so that each check fails on
anything new; shrink them as the code gets there, never grow them silently.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import pytest

from ops import services

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "ops"

#: Import cycles among ops modules that are known and being broken (each a sorted tuple of modules).
#: Empty: lifecycle <-> inventory and bench/compare <-> compare_report are gone.
KNOWN_CYCLES: frozenset[tuple[str, ...]] = frozenset()
#: Modules outside ops/services/ that still name a service kind in a string (module -> the kinds).
#: Empty: they ask the kind for its hooks and features, or use the constants ops/services exports.
NAMES_KINDS: Mapping[str, frozenset[str]] = {}
#: Layers that must not import from the layers above them (module prefix -> forbidden prefixes).
LAYERS: Mapping[str, tuple[str, ...]] = {
    "ops.doctor": ("ops.bench", "ops.cli"),
    "ops.services": ("ops.bench", "ops.cli", "ops.doctor"),
    # The in-process runtime, the device choice and the browser are below every feature of ops.
    "ops.runtime": ("ops.bench", "ops.cli", "ops.doctor", "ops.services", "ops.profiles", "ops.lifecycle"),
}
MAX_LINES = 420
#: Modules allowed over MAX_LINES, with the size they may not grow beyond. Empty: none is.
LONG_MODULES: Mapping[str, int] = {}


# --- Reading the source -------------------------------------------------------------------------


def modules(package: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` under ``package`` (a package is its ``__init__``)."""
    found = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imported(name: str, path: Path) -> Iterator[str]:
    """Every module name ``path`` (the module ``name``) imports, anywhere in the file.

    ``from a import b`` yields ``a`` and ``a.b`` (which is a module when ``b`` is a submodule);
    relative imports are resolved against ``name``.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - (node.level - 1)]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            yield source
            yield from (f"{source}.{alias.name}" for alias in node.names)


def import_graph(package: Path) -> dict[str, set[str]]:
    """Module -> the package's modules it imports.

    An import names the longest known module it starts with (``ops.a.func`` is ``ops.a``). A
    package's ``__init__`` importing its own submodules is not an edge: that is how kinds, checks
    and commands register themselves, and a submodule always imports its package first anyway.
    """
    known = modules(package)
    graph: dict[str, set[str]] = {name: set() for name in known}
    for name, path in known.items():
        for target in imported(name, path):
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name and not target.startswith(name + "."):
                graph[name].add(target)
    return graph


def cycles(graph: Mapping[str, Iterable[str]]) -> set[tuple[str, ...]]:
    """The strongly connected components of more than one node (Tarjan), each as a sorted tuple."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: set[tuple[str, ...]] = set()

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.add(tuple(sorted(component)))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def strings(path: Path) -> Iterator[tuple[int, str]]:
    """(line, text) of every string constant in ``path``, f-string parts included; docstrings left out."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            yield node.lineno, node.value


def kinds_named(path: Path, kinds: Iterable[str]) -> dict[str, list[int]]:
    """The kinds whose names appear in a string of ``path``, and on which lines."""
    named: dict[str, list[int]] = {}
    for line, text in strings(path):
        for kind in kinds:
            if kind in text:
                named.setdefault(kind, []).append(line)
    return named


# --- The checks on ops ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph(PACKAGE)


def test_no_import_cycle_among_ops_modules(graph):
    found = cycles(graph)
    new = found - KNOWN_CYCLES
    assert not new, "import cycles: " + "; ".join(" <-> ".join(c) for c in sorted(new))
    gone = KNOWN_CYCLES - found
    assert not gone, f"no longer cycles, take them off KNOWN_CYCLES: {sorted(gone)}"


def test_no_module_outside_services_names_a_kind():
    kinds = [k for k in services.names() if k != "container"]
    assert kinds, "the built-in kinds are registered"
    found = {}
    for name, path in modules(PACKAGE).items():
        if name == "ops.services" or name.startswith("ops.services."):
            continue
        named = kinds_named(path, kinds)
        if frozenset(named) - NAMES_KINDS.get(name, frozenset()):
            found[name] = named
    assert not found, (
        "modules outside ops/services/ name a service kind (use the kind's hooks or features, or a "
        f"constant of ops.services): {found}"
    )
    stale = {m for m, allowed in NAMES_KINDS.items() if not kinds_named(modules(PACKAGE)[m], allowed)}
    assert not stale, f"these no longer name a kind, take them off NAMES_KINDS: {sorted(stale)}"


@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_a_lower_layer_imports_nothing_from_the_layers_above(graph, layer):
    forbidden = LAYERS[layer]
    wrong = {
        f"{module} -> {target}"
        for module, targets in graph.items()
        if module == layer or module.startswith(layer + ".")
        for target in targets
        if any(target == f or target.startswith(f + ".") for f in forbidden)
    }
    assert not wrong, f"{layer} imports from above it: {sorted(wrong)}"


def test_modules_stay_small():
    sizes = {
        name: len(path.read_text(encoding="utf-8").splitlines()) for name, path in modules(PACKAGE).items()
    }
    too_long = {m: n for m, n in sizes.items() if n >= MAX_LINES and n > LONG_MODULES.get(m, 0)}
    assert not too_long, f"modules of {MAX_LINES} lines or more (split them): {too_long}"
    fixed = {m for m, n in LONG_MODULES.items() if sizes.get(m, 0) < MAX_LINES}
    assert not fixed, f"under {MAX_LINES} lines now, take them off LONG_MODULES: {sorted(fixed)}"


# --- The checks can fail ----------------------------------------------------------------------


def test_the_cycle_finder_finds_cycles_and_only_cycles():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a", "e"}, "e": set(), "f": {"g"}, "g": {"f"}}
    assert cycles(graph) == {("a", "b", "c"), ("f", "g")}
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == set()


def test_the_graph_reads_every_kind_of_import(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from pkg import a  # registers a: not an edge\n")
    (pkg / "a.py").write_text("def f():\n    from pkg.sub import b  # a submodule, inside a function\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "b.py").write_text("from ..c import thing\n")
    (pkg / "c.py").write_text("import pkg.a\n")
    graph = import_graph(pkg)
    assert graph["pkg"] == set()
    assert graph["pkg.a"] == {"pkg.sub", "pkg.sub.b"}
    assert graph["pkg.sub.b"] == {"pkg.c"}
    assert graph["pkg.c"] == {"pkg.a"}
    assert cycles(graph) == {("pkg.a", "pkg.c", "pkg.sub.b")}


def test_kind_names_are_found_in_strings_but_not_in_docstrings_or_comments(tmp_path):
    source = tmp_path / "m.py"
    source.write_text(
        '"""Talks about open-webui."""\n'
        "# open-webui in a comment\n"
        "def f(name):\n"
        '    """Also open-webui."""\n'
        '    return f"see `ops logs PROFILE open-webui` for {name}"\n'
        'KIND = "webgpu-demo"\n'
    )
    assert kinds_named(source, ["open-webui", "webgpu-demo", "chainlit-rag"]) == {
        "open-webui": [5],
        "webgpu-demo": [6],
    }
