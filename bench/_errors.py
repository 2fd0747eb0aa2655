"""The one error the harness raises: something kept a suite from producing figures."""

from __future__ import annotations

__all__ = ["BenchError"]


class BenchError(RuntimeError):
    """Raised when a peer environment cannot be built or a side script fails.

    The message names the command or file involved and what went wrong.
    """
