"""Names and values a root's files may hold: class and clip names that are safe folder names,
paths kept inside their root, finite and whole numbers. Each check names the bad value and where it was."""
from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any

from ..errors import BadData

# Class and clip names become folder names and list entries: printable ASCII without separators,
# quotes, shell or glob characters, or white space (lists are space-separated). Every real
# UCF-101 and HMDB-51 name fits (HMDB's use ! # & ( ) + ; @ [ ] ~).
_NAME = re.compile(r"[A-Za-z0-9_!#&()+;@\[\]~,=%-][A-Za-z0-9_.!#&()+;@\[\]~,=%-]{0,199}")


def check_name(name: Any, what: str, where: Any) -> str:
    """A class or clip name safe to use as one folder name; ``where`` (file:line, option) is blamed."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise BadData(f"{where}: bad {what} name {name!r}: use letters, digits and _-.+!#&()@;[]~,=% "
                      f"(no '/', '..', leading '.', spaces or quotes)")
    return name


def check_clip_id(clip_id: Any, where: Any) -> str:
    """``<class>/<clip>``, each part a safe name: never absolute, never climbing out of its root."""
    parts = clip_id.split("/") if isinstance(clip_id, str) else []
    if len(parts) != 2:
        raise BadData(f"{where}: bad clip {clip_id!r}: expected '<class>/<clip>'")
    check_name(parts[0], "class", where)
    check_name(parts[1], "clip", where)
    return clip_id


def class_of(clip_id: str) -> str:
    """The class of a ``<class>/<clip>`` id."""
    return clip_id.split("/", 1)[0]


def check_relpath(path: Any, where: Any) -> str:
    """A frame folder of an annotation list: relative, each part a safe name (mmaction2's lists
    allow ``<clip>`` or deeper than ``<class>/<clip>``)."""
    parts = path.split("/") if isinstance(path, str) else []
    if not parts or not all(_NAME.fullmatch(p) for p in parts):
        raise BadData(f"{where}: bad clip {path!r}: expected a relative folder like '<class>/<clip>' "
                      f"(no '..', no leading '/' or '.', no spaces or quotes)")
    return path


def inside(root: Path, path: Path, where: Any = None) -> Path:
    """``path`` if it resolves (symlinks followed) inside ``root``; else a refusal naming both. A
    symlink loop resolves to where the loop starts (os.path.realpath, unlike Path.resolve, does not
    raise): reading it then fails on its own file, not the whole run."""
    real, base = Path(os.path.realpath(path)), Path(os.path.realpath(root))
    if real != base and not real.is_relative_to(base):
        raise BadData(f"{where or path}: resolves to {real}, outside {base}; refusing to read or write there")
    return Path(path)


def finite(value: Any) -> bool:
    """A real number that is neither NaN nor infinite (booleans are not numbers here)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def whole(value: Any, low: int | None = None, high: int | None = None) -> bool:
    """A whole number (booleans are not numbers here) within ``low``..``high``, both inclusive, where given."""
    return (isinstance(value, int) and not isinstance(value, bool) and (low is None or value >= low)
            and (high is None or value <= high))
