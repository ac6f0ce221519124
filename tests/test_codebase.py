"""The tree explains itself: a small public API, the layout's file names spelled in the contract only."""
from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest

import synthact
from synthact.contract import GridLayout, RunLayout

PACKAGE = Path(synthact.__file__).parent
# every file name of a root's layout and of a run folder (RunLayout); only contract/ (and rootlock.py,
# for its lock file) may spell them in code
LAYOUT_NAMES = ("manifest.jsonl", "flow.json", "flow.jsonl", "root.json", "classes.txt", "synthetic_rawframes",
                "_label_map.txt", "_rawframes.txt", "missing.txt", "failures.txt", "preview.png", "img_{", "flow_{",
                ".pending-", ".tmp-", ".old-", ".synthact.lock",
                "config.json", "checkpoint.pt", "model.pt", "metrics.json", "log.csv", "train_list.txt",
                "val_list.txt", "labels.npy", "scores_", "confusion.png", "mmaction2_config", "backbone_init",
                "config.resolved.yaml", "results.csv", "results.md", "accuracy_vs_synthetic", "per_class.md")
EXACT = ("rawframes", "annotations", "tb")
# a frame file's prefix however it is spelled: "img_", "flow_", "flow_x_", f"img_{k:05d}", "img_#####",
# r"img_(\d+)", "img_*.jpg" (but not "flow_method" or "flow_pairs", which are record keys)
FRAME_PREFIX = re.compile(r"\b(img|flow)_([xy]_?)?([{(#*\\]|\d|$)")
OUTSIDE = ("rootlock.py",)


def _code_strings(tree: ast.AST):
    """String constants of the code, docstrings and click's help texts left out (they may name files
    for the reader)."""
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
        if isinstance(node, ast.keyword) and node.arg in ("help", "epilog"):
            docstrings |= {id(n) for n in ast.walk(node.value)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            yield node


def _spelled_layout_names(source: str) -> list[tuple[int, str]]:
    """(line, string) of each layout name, run-folder file name or frame prefix the code spells (the
    literal parts of f-strings included)."""
    return [(node.lineno, node.value) for node in _code_strings(ast.parse(source))
            if any(n in node.value for n in LAYOUT_NAMES) or node.value in EXACT or FRAME_PREFIX.search(node.value)]


def test_no_layout_file_name_is_spelled_outside_the_contract():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        if rel.parts[0] == "contract" or str(rel) in OUTSIDE:
            continue
        found += [f"{rel}:{line}: {value!r}" for line, value in _spelled_layout_names(path.read_text())]
    assert not found, "layout names outside the contract:\n" + "\n".join(found)


@pytest.mark.parametrize("code", ['p = run / "checkpoint.pt"', 'p = run / "tb"', 'n = f"img_{k:05d}.jpg"',
                                  'ok = name.startswith("flow_")', 're.compile(r"flow_([xy])_(\\d+)\\.jpg")',
                                  'blender = "img_#####"', 'p = run / f"scores_{protocol}.npy"'])
def test_the_layout_guard_sees_each_spelling(code):
    assert _spelled_layout_names(code)


def test_the_layout_guard_passes_record_keys_and_docstrings():
    assert not _spelled_layout_names('"""Writes ``config.json`` and img_00001.jpg."""\n'
                                     'x = rec["flow_pairs"], info["flow_method"], "flow_magnitude.png", "exr_#####"\n'
                                     'click.option("--out", help="Run folder (config.json, model.pt).")')


def test_every_run_folder_name_is_guarded():
    names = [v for layout in (RunLayout, GridLayout) for k, v in vars(layout).items() if k.isupper()]
    names = [n for v in names for n in (v if isinstance(v, tuple) else (v,))]
    assert "config.json" in names and "scores_{}.npy" in names and "results.csv" in names
    # "mmaction2" is also the engine's name, "cells" and "confusion" keys of results: not guardable
    unguarded = [n for n in names if not (any(g in n for g in LAYOUT_NAMES) or n in EXACT)
                 and n not in (RunLayout.MMACTION2_WORK, GridLayout.CELLS, GridLayout.CONFUSION)]
    assert not unguarded, f"RunLayout names the test does not guard: {unguarded}"


def test_the_public_api_resolves_and_says_what_each_stage_takes():
    assert synthact.__all__
    for name in synthact.__all__:
        obj = getattr(synthact, name)
        assert inspect.getdoc(obj), f"synthact.{name} has no docstring"
    assert "render_batch" in synthact.__doc__ and "run_flow" in synthact.__doc__ and "fit" in synthact.__doc__


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(tree: ast.AST, name: str, is_package: bool, modules: set[str]) -> set[str]:
    """The synthact modules ``name`` imports anywhere in its code: at the top and inside functions."""
    package = name if is_package else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            found |= {f"{target}.{a.name}" if f"{target}.{a.name}" in modules else target for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return (found & modules) - {name}


def import_graph(package: Path) -> dict[str, set[str]]:
    """Which synthact module imports which, read from the source."""
    paths = {_module_name(p): p for p in sorted(package.rglob("*.py"))}
    return {n: _imports(ast.parse(p.read_text()), n, p.name == "__init__.py", set(paths)) for n, p in paths.items()}


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each group of modules that import each other, directly or round a loop (Tarjan's strongly
    connected components of more than one module)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = stack[stack.index(v):]
            del stack[stack.index(v):]
            if len(group) > 1:
                cycles.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def test_no_import_cycles_among_synthact_modules():
    # imports inside functions count too: here they defer a heavy library (torch, bpy, triton), never
    # break a cycle, and each cycle the tree once had (flow.extract <-> flow.torch_extract, the two
    # TV-L1 solvers, render.mocap -> render.jobs) was closed by one
    graph = import_graph(PACKAGE)
    assert "synthact.contract.layout" in graph["synthact.contract"]
    assert "synthact.flow.counters" in graph["synthact.flow.tvl1_triton"]   # `from . import counters`
    cycles = import_cycles(graph)
    assert not cycles, "modules that import each other:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_only_render_imports_bpy():
    """bpy runs one per process, in render workers: anywhere else an import would load Blender into
    a trainer or a flow worker (imports inside functions count)."""
    importers = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            if any(n == "bpy" or n.startswith("bpy.") for n in names):
                importers.add(path.relative_to(PACKAGE).as_posix())
    assert importers and all(p.startswith("render/") for p in importers), importers


def test_the_cycle_finder_sees_a_cycle_closed_inside_a_function():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert import_cycles(graph) == [["a", "b", "c"]]
    tree = ast.parse("def f():\n    from .b import g\n")
    assert _imports(tree, "synthact.flow.a", False, {"synthact.flow.a", "synthact.flow.b"}) == {"synthact.flow.b"}


def test_the_cli_reference_is_the_one_click_writes():
    from synthact.cli_docs import reference
    committed = Path(__file__).resolve().parents[1] / "docs" / "cli.md"
    assert committed.read_text() == reference(), "docs/cli.md is stale: run `make docs`"


def test_the_cli_reference_names_every_command_and_option():
    import click

    from synthact.cli import main
    from synthact.cli_docs import reference
    text = reference()

    def walk(command: click.Command, path: str):
        assert f"\n## {path}\n" in text, f"{path} missing from the CLI reference"
        section = text.split(f"\n## {path}\n", 1)[1].split("\n## ", 1)[0]
        for param in command.params:
            for opt in param.opts if isinstance(param, click.Option) else ():
                assert opt in section, f"{path} {opt} missing from the CLI reference"
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, f"{path} {name}")

    walk(main, "synthact")


def _readme_tree() -> set[str]:
    """The paths the README's Development tree names (``render/jobs.py``, ``contract``...)."""
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    dev = text.index("## Development")
    start = text.index("```text\n", dev) + len("```text\n")
    named, stack = set(), []
    for line in text[start:text.index("```\n", start)].splitlines()[1:]:   # below "src/synthact/"
        depth = (len(line) - len(line.lstrip())) // 2 - 1
        stack = stack[:depth] + [line.split()[0]]
        named.add("".join(stack).rstrip("/"))
    return named


def test_the_readme_tree_names_every_module():
    have = {str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py") if p.name != "__init__.py"}
    have |= {str(p.parent.relative_to(PACKAGE)) for p in PACKAGE.rglob("__init__.py") if p.parent != PACKAGE}
    have |= {"__init__.py", "assets"}
    named = _readme_tree()
    assert not have - named, f"modules the README's Development tree does not name: {sorted(have - named)}"
    assert not named - have, f"the README's Development tree names what is not there: {sorted(named - have)}"


def test_cli_defaults_and_choices_are_the_dataclasses_and_registries():
    """train-tsn's and render-clips' options default to TrainConfig's and RenderJob's fields and
    offer their registries' choices, so the CLI and the library cannot drift apart."""
    from dataclasses import MISSING, fields

    import click

    from synthact.cli import render_clips, train_tsn
    from synthact.render.backdrop import KINDS
    from synthact.render.jobs import ENGINES, RenderJob
    from synthact.train.config import CHOICES, TrainConfig
    registries = {**CHOICES, "engine": ENGINES, "background": KINDS}
    for command, owner in ((train_tsn, TrainConfig), (render_clips, RenderJob)):
        defaults = {f.name: f.default for f in fields(owner) if f.default is not MISSING}
        checked = 0
        for p in command.params:
            if p.name in defaults and not getattr(p, "is_flag", False) and isinstance(p.default, (int, float, str)):
                # render's size is text ("340x256"), its executor a name ("local"): parsed into the job
                if p.name not in ("size", "executor") or owner is TrainConfig:
                    assert p.default == defaults[p.name], (command.name, p.name)
                    checked += 1
            if isinstance(p.type, click.Choice) and p.name != "executor":
                want = CHOICES[p.name] if owner is TrainConfig else registries[p.name]
                assert list(p.type.choices) == list(want), (command.name, p.name)
        assert checked >= (12 if owner is TrainConfig else 5), (command.name, checked)


def test_every_other_commands_choices_are_its_registry():
    """Executors, export formats, flow methods and datasets offered by the CLI are the registries'."""
    import click

    from synthact import cli
    from synthact.data.splits import DATASETS
    from synthact.executor import KINDS
    from synthact.export import FORMATS
    from synthact.flow.methods import METHODS, OPENCV_METHODS
    want = {("export", "fmt"): FORMATS, ("extract-flow", "method"): METHODS, ("prepare", "flow"): OPENCV_METHODS,
            ("prepare", "dataset"): DATASETS}
    seen = set()
    for command in cli.main.commands.values():
        for p in command.params:
            if not isinstance(p.type, click.Choice):
                continue
            if p.name == "executor":
                assert list(p.type.choices) == list(KINDS) and p.default == KINDS[0], command.name
                seen.add((command.name, "executor"))
            elif (command.name, p.name) in want:
                assert list(p.type.choices) == list(want[(command.name, p.name)]), (command.name, p.name)
                seen.add((command.name, p.name))
    assert set(want) <= seen and sum(name == "executor" for _, name in seen) >= 3, seen
