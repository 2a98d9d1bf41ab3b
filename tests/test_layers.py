"""The layering of gan_studio (see ARCHITECTURE.md): no package imports from a higher layer, and no
two packages import each other, counting imports inside functions too."""

from __future__ import annotations

import ast
from pathlib import Path

import gan_studio

ROOT = Path(gan_studio.__file__).parent

# Low to high. A module imports only from its own layer or lower ones.
LAYERS = {
    "utils": 0,
    "device": 0,
    "data": 1,
    "models": 1,
    "perceptual": 1,
    "training": 2,
    "metrics": 2,
    "sampling": 3,
    "packaging": 3,
    "side_by_side": 3,
    "hub": 3,
    "evaluation": 3,
    "study": 3,
    "app": 4,
    "cli": 4,
    "commands": 4,
    "__main__": 4,
    "__init__": 4,
}
LAYER_NAMES = [
    "utils, device",
    "data, models",
    "training, metrics",
    "sampling, packaging, study, evaluation",
    "app, cli",
]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) of every gan_studio import in ``path``, at any depth."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.append((node.lineno, target))
            if target == "gan_studio":  # from gan_studio import sampling
                found += [(node.lineno, f"gan_studio.{alias.name}") for alias in node.names]
    return [(line, name) for line, name in found if name.startswith("gan_studio.")]


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _edges() -> list[tuple[str, str, str]]:
    """(importing package, imported package, where) for imports across packages."""
    edges = []
    for path in sorted(ROOT.rglob("*.py")):
        source = (
            _package(_module_name(path)) if path.name != "__init__.py" or path.parent != ROOT else "__init__"
        )
        for line, target in _imports(path):
            imported = _package(target)
            if imported != source:
                edges.append((source, imported, f"{path.relative_to(ROOT.parent)}:{line} imports {target}"))
    return edges


def test_every_package_has_a_layer():
    packages = {_package(_module_name(p)) for p in ROOT.rglob("*.py")}
    missing = sorted(packages - LAYERS.keys())
    assert not missing, (
        f"give these gan_studio packages a layer in tests/test_layers.py and ARCHITECTURE.md: {missing}"
    )


def test_no_import_from_a_higher_layer():
    upward = [
        f"{where}: '{src}' (layer {LAYERS[src]}, {LAYER_NAMES[LAYERS[src]]}) must not import '{dst}' "
        f"(layer {LAYERS[dst]}, {LAYER_NAMES[LAYERS[dst]]})"
        for src, dst, where in _edges()
        if LAYERS.get(dst, 0) > LAYERS.get(src, 0)
    ]
    assert not upward, "upward imports (move the code down a layer, or pass it in):\n" + "\n".join(upward)


def test_no_import_cycle_between_packages():
    graph: dict[str, set[str]] = {}
    where: dict[tuple[str, str], str] = {}
    for src, dst, at in _edges():
        graph.setdefault(src, set()).add(dst)
        where.setdefault((src, dst), at)
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        for nxt in sorted(graph.get(node, ())):
            if nxt == path[0]:
                cycle = [*path, nxt]
                if min(path) == path[0]:  # report each cycle once
                    cycles.append(
                        " -> ".join(cycle)
                        + "  ("
                        + "; ".join(where[(a, b)] for a, b in zip(cycle, cycle[1:]))
                        + ")"
                    )
            elif nxt not in path and nxt > path[0]:
                visit(nxt, [*path, nxt])

    for start in sorted(graph):
        visit(start, [start])
    assert not cycles, "import cycles between packages:\n" + "\n".join(cycles)
