"""Safe artifact paths: user-given names that can never escape the artifact root."""

from __future__ import annotations

import os
import re
from pathlib import Path

from loopml.core import ValidationError

__all__ = ["safe_join", "safe_relative_path"]

_DRIVE_RE = re.compile(r"[A-Za-z]:")


def safe_relative_path(name: str) -> str:
    """Normalize a user-given artifact path to ``a/b/c`` form.

    Empty and ``.`` components are dropped and a ``..`` that stays inside the path is
    applied, so ``"./a//b/../c.txt"`` becomes ``"a/c.txt"``. Separators are ``/`` only.

    Raises:
        ValidationError: ``name`` is not a str, is empty, is absolute (``/x``, ``C:\\x``,
            ``C:/x``), contains a backslash or a NUL byte, has a ``..`` that climbs above
            its start, or normalizes to ``.``.
    """
    if not isinstance(name, str):
        raise ValidationError(f"artifact path must be a str (got {type(name).__name__})")

    def bad(why: str) -> ValidationError:
        return ValidationError(
            f"artifact path {name!r} is not allowed: {why}; "
            f"expected a relative path such as 'model/model.pkl'"
        )

    if not name:
        raise bad("it is empty")
    if "\x00" in name:
        raise bad("it contains a NUL byte")
    if name.startswith("/") or _DRIVE_RE.match(name):
        raise bad("it is absolute")
    if "\\" in name:
        raise bad("it contains a backslash (use '/' between folders)")
    parts: list[str] = []
    for part in name.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise bad("its '..' escapes the root")
            parts.pop()
        else:
            parts.append(part)
    if not parts:
        raise bad("it normalizes to '.'")
    return "/".join(parts)


def safe_join(root: str | os.PathLike[str], name: str) -> Path:
    """Return ``Path(root) / safe_relative_path(name)``, proven to stay inside ``root``.

    Besides the checks of :func:`safe_relative_path`, the joined path is resolved
    (following symlinks that already exist) and must lie inside ``root.resolve()``.

    Raises:
        ValidationError: ``name`` is not a safe relative path, or resolves outside
            ``root`` (for example through a symlink), or cannot be resolved.
    """
    relative = safe_relative_path(name)
    base = Path(root)
    joined = base / relative
    try:
        resolved_base = base.resolve()
        resolved = joined.resolve()
    except (OSError, RuntimeError) as exc:  # RuntimeError: symlink loop on Python < 3.13
        raise ValidationError(
            f"artifact path {name!r} under {str(base)!r} cannot be resolved: {exc}"
        ) from exc
    if not resolved.is_relative_to(resolved_base):
        raise ValidationError(
            f"artifact path {name!r} resolves to {str(resolved)!r}, outside the root "
            f"{str(resolved_base)!r}; expected a path inside it (is a symlink pointing out?)"
        )
    return joined
