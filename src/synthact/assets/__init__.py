"""Package data: the action class map and named subsets (classes.yaml)."""
from __future__ import annotations

from functools import lru_cache
from importlib import resources

import yaml

from ..errors import BadConfig


@lru_cache(maxsize=None)
def class_map() -> dict:
    """``{"actions": {ours: {dataset: their_class}}, "subsets": {name: [ours]}}``."""
    return yaml.safe_load(resources.files(__package__).joinpath("classes.yaml").read_text())


def resolve_classes(spec: str, extra=()) -> list[str]:
    """``ucf25``, ``hmdb``, ``all`` or a comma list of our class names -> sorted class list.
    ``extra``: more accepted names (the classes of a motion-capture library)."""
    cm = class_map()
    known = set(cm["actions"]) | set(extra)
    if spec == "all":
        return sorted(known)
    if spec in cm["subsets"]:
        return sorted(cm["subsets"][spec])
    names = [c.strip() for c in spec.split(",") if c.strip()]
    unknown = [c for c in names if c not in known]
    if unknown or not names:
        raise BadConfig(f"unknown class {', '.join(unknown) or repr(spec)}: choose from "
                         f"{', '.join(sorted(cm['subsets']))}, all, or {', '.join(sorted(known))}")
    return sorted(dict.fromkeys(names))


def target_class(ours: str, dataset: str) -> str | None:
    """The ``dataset`` (ucf101 or hmdb51) class that our class stands for, or None."""
    return class_map()["actions"][ours].get(dataset)
