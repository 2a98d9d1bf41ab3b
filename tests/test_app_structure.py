"""The code stays in small pieces: no function in gan_studio/ (the app above all) over 100 lines.

Each tab builds its components in layout functions, wires events in another, and keeps its handlers as
module-level functions; a long build() full of closures fails here, with its file, line and length.
"""

from __future__ import annotations

import ast
from pathlib import Path

import gan_studio
import gan_studio.app

MAX_LINES = 100
APP = Path(gan_studio.app.__file__).parent
PACKAGE = Path(gan_studio.__file__).parent


def function_lengths(root: Path) -> list[tuple[int, str]]:
    """(lines, "path:line name") of every function and method under ``root``, nested ones included.

    A function's length is its own span, end_lineno - lineno + 1 (decorators not counted)."""
    lengths = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                where = f"{path.relative_to(root.parent.parent)}:{node.lineno} {node.name}"
                lengths.append((node.end_lineno - node.lineno + 1, where))
    return lengths


def test_no_function_in_the_app_is_over_100_lines():
    lengths = function_lengths(APP)
    assert lengths, f"no functions found under {APP}"
    too_long = sorted((item for item in lengths if item[0] > MAX_LINES), reverse=True)
    listing = "\n".join(f"  {where}: {lines} lines" for lines, where in too_long)
    assert not too_long, f"functions over {MAX_LINES} lines (split layout, wiring and handlers):\n{listing}"


def test_no_function_in_the_package_is_over_100_lines():
    too_long = sorted((item for item in function_lengths(PACKAGE) if item[0] > MAX_LINES), reverse=True)
    listing = "\n".join(f"  {where}: {lines} lines" for lines, where in too_long)
    assert not too_long, f"functions over {MAX_LINES} lines (give their parts names of their own):\n{listing}"


def test_the_measure_counts_nested_functions_and_names_them(tmp_path):
    package = tmp_path / "pkg" / "app"
    package.mkdir(parents=True)
    body = "\n".join(f"        x{i} = {i}" for i in range(MAX_LINES))
    (package / "tab.py").write_text(f"def build():\n    def handler():\n{body}\n    return handler\n")
    lengths = {where: lines for lines, where in function_lengths(package)}
    assert lengths == {"pkg/app/tab.py:1 build": MAX_LINES + 3, "pkg/app/tab.py:2 handler": MAX_LINES + 1}
