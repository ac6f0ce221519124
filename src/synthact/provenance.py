"""Which versions made a root, its flow or a run: recorded once, compared on every rerun.

Versions are read from the installed packages' metadata, so recording them imports nothing heavy.
"""
from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

# what we record -> the distribution that provides it
PACKAGES = {"synthact": "synthact", "bpy": "bpy", "opencv": "opencv-contrib-python-headless", "torch": "torch",
            "torchvision": "torchvision"}


def versions() -> dict[str, str | None]:
    """The installed version of synthact and of each library whose output it records."""
    out: dict[str, str | None] = {}
    for name, dist in PACKAGES.items():
        try:
            out[name] = version(dist)
        except PackageNotFoundError:
            out[name] = None
    return out


def differences(recorded: dict | None, now: dict | None = None) -> list[str]:
    """``name recorded -> now`` for each version that changed since ``recorded`` was written."""
    if not isinstance(recorded, dict):
        return []
    now = now or versions()
    return [f"{k} {recorded[k]} -> {now.get(k)}" for k in sorted(recorded) if now.get(k) != recorded[k]]


def version_line() -> str:
    """One line for ``synthact --version``."""
    v = versions()
    return f"synthact {v['synthact']} (" + ", ".join(f"{k} {v[k]}" for k in PACKAGES if k != "synthact") + ")"
