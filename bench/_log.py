"""Progress messages: always on stderr, so stdout carries only the results."""

from __future__ import annotations

import sys

__all__ = ["log"]


def log(message: str) -> None:
    """Write one progress line to stderr."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)
