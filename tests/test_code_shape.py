"""The code stays readable in one sitting: no class over 250 lines, no function over 70 (the offline Hub
server, a protocol transcript, aside)."""

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "si_hf"
EXEMPT = {"testing/hub_server.py"}
MAX_CLASS, MAX_FUNCTION = 250, 70


def _too_long():
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if rel in EXEMPT:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            lines = getattr(node, "end_lineno", 0) - getattr(node, "lineno", 0) + 1
            if isinstance(node, ast.ClassDef) and lines > MAX_CLASS:
                yield f"{rel}: class {node.name} has {lines} lines (max {MAX_CLASS})"
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and lines > MAX_FUNCTION:
                yield f"{rel}: function {node.name} has {lines} lines (max {MAX_FUNCTION})"


def test_no_class_or_function_is_too_long():
    assert list(_too_long()) == []
