"""The CLI reference, ``docs/cli.md``, written from the click command tree so that it cannot drift.

``python -m synthact.cli_docs [FILE]`` (``make docs``) writes it; ``tests/test_codebase.py`` builds it
again in memory and fails when the committed file differs (an option changed, the docs not rebuilt).
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator

import click

from .cli import main
from .contract import atomic_write

# help is wrapped at a fixed width, not the terminal's, so the file is the same wherever it is built
WIDTH = 100
DEFAULT_OUT = Path("docs/cli.md")
HEADER = """\
# Command-line reference

Generated from the click commands by `make docs` (`python -m synthact.cli_docs`); do not edit by hand:
`tests/test_codebase.py` fails when this file and the options differ. `render-clips`, `extract-flow`
and `train-tsn` are also installed as commands of their own, with the same options.
"""


def _contexts(ctx: click.Context) -> Iterator[click.Context]:
    """``ctx`` and the context of every command below it, depth first, in the order ``--help`` lists them."""
    yield ctx
    command = ctx.command
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                yield from _contexts(click.Context(sub, info_name=name, parent=ctx))


def _anchor(path: str) -> str:
    """GitHub's anchor for a ``## path`` heading."""
    return path.lower().replace(" ", "-")


def reference() -> str:
    """The whole reference as Markdown: a table of commands, then each command's ``--help`` with every
    option's default shown."""
    root = click.Context(main, info_name="synthact", terminal_width=WIDTH, max_content_width=WIDTH,
                         show_default=True)
    contexts = list(_contexts(root))
    lines = [HEADER, "| command | what it does |", "|---|---|"]
    for ctx in contexts:
        path = ctx.command_path
        summary = ctx.command.get_short_help_str(limit=300).replace("|", "\\|").replace("<", "&lt;")
        lines.append(f"| [`{path}`](#{_anchor(path)}) | {summary} |")
    for ctx in contexts:
        lines += ["", f"## {ctx.command_path}", "", "```text", ctx.command.get_help(ctx).rstrip(), "```"]
    return "\n".join(lines) + "\n"


def write(path: Path = DEFAULT_OUT) -> None:
    """Write :func:`reference` to ``path``."""
    atomic_write(path, reference())


if __name__ == "__main__":
    write(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_OUT)
