"""Identifiers and the clock, in one place so tests and stores agree on them."""

from __future__ import annotations

import time
import uuid

__all__ = ["new_id", "now_ms"]


def new_id() -> str:
    """Return a new random 32-character hex id (a UUID4 without dashes)."""
    return uuid.uuid4().hex


def now_ms() -> int:
    """Return the current time as integer milliseconds since the Unix epoch."""
    return time.time_ns() // 1_000_000
