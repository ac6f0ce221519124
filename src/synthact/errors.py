"""The error boundary: what the library raises when it refuses, and how the CLI shows it.

Every refusal is one of these types, worded as one line that names the file (and line) or the
parameter and the problem. The CLI turns any of them into that line on stderr and exit 2 in one
place (:class:`synthact.cli.Guarded`); exit 1 is kept for "some items failed", with their list.
Anything else escaping the library is a bug and keeps its traceback.
"""
from __future__ import annotations

import logging


class SynthactError(Exception):
    """Base of every refusal; ``str(exc)`` is the one line a user sees."""


class BadData(SynthactError, ValueError):
    """An input file breaks the data contract (a corrupt frame, a malformed list, a BVH with NaN)."""


class BadConfig(SynthactError, ValueError):
    """An option, config key or setting is invalid or disagrees with what a root or run holds."""


class MissingDependency(SynthactError, RuntimeError):
    """An optional package, device or download that this request needs is not available here."""


class RootBusy(SynthactError):
    """Another process holds the lock of the root or run folder this command would write."""


class Interrupted(BaseException):
    """A batch stopped by SIGINT (Ctrl-C) or SIGTERM once its finished items were recorded; ``str``
    says what was finished and what was not, ``code`` is the exit status (128 + the signal).
    A BaseException, as KeyboardInterrupt is: no ``except Exception`` may take it for a failed item."""

    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.code = code


def one_line(exc: BaseException) -> str:
    """The first line of an exception's message, for failure lists and summaries."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


log = logging.getLogger("synthact")


def warn(message: str) -> None:
    """A one-line warning a run goes on after (a duplicate record dropped, a version differing)."""
    log.warning(message)
