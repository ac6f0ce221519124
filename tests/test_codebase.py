"""The tree explains itself: a small public API, the layout's file names spelled in the contract only."""
from __future__ import annotations

import ast
import inspect
from pathlib import Path

import synthact

PACKAGE = Path(synthact.__file__).parent
# every file name of the layout; only contract.py may spell them in code
LAYOUT_NAMES = ("manifest.jsonl", "flow.json", "flow.jsonl", "root.json", "classes.txt", "synthetic_rawframes",
                "_label_map.txt", "_rawframes.txt", "missing.txt", "failures.txt", "preview.png", "img_{", "flow_{",
                ".pending-", ".tmp-", ".old-", ".synthact.lock")
EXACT = ("rawframes", "annotations")


def _code_strings(tree: ast.AST):
    """String constants of the code, docstrings left out (they may name files for the reader)."""
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            yield node


def test_no_layout_file_name_is_spelled_outside_the_contract():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name in ("contract.py", "rootlock.py"):
            continue
        for node in _code_strings(ast.parse(path.read_text())):
            if any(n in node.value for n in LAYOUT_NAMES) or node.value in EXACT:
                found.append(f"{path.relative_to(PACKAGE)}:{node.lineno}: {node.value!r}")
    assert not found, "layout names outside the contract:\n" + "\n".join(found)


def test_the_public_api_resolves_and_says_what_each_stage_takes():
    assert synthact.__all__
    for name in synthact.__all__:
        obj = getattr(synthact, name)
        assert inspect.getdoc(obj), f"synthact.{name} has no docstring"
    assert "render_batch" in synthact.__doc__ and "run_flow" in synthact.__doc__ and "fit" in synthact.__doc__
