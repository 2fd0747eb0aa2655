"""Where code ran: git commit, interpreter, packages, host. Runs and dataset versions record it.

Captured once per process and working folder (git is asked three questions, which
costs milliseconds), then stamped on each run as ``loopml.*`` tags, so runs can be
searched by commit or package version like any other tag.
"""

from __future__ import annotations

import functools
import getpass
import json
import platform
import shlex
import socket
import subprocess
import sys
from pathlib import Path

import blake3

__all__ = ["KEY_PACKAGES", "capture_environment"]

# Versions worth knowing when a model behaves differently on another machine.
KEY_PACKAGES = (
    "loopml",
    "numpy",
    "pandas",
    "pyarrow",
    "scikit-learn",
    "scipy",
    "xgboost",
    "lightgbm",
    "torch",
    "optuna",
)


def _git(folder: Path, *args: str) -> bytes | None:
    try:
        result = subprocess.run(
            ["git", *args], cwd=folder, capture_output=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout if result.returncode == 0 else None


def _git_tags(folder: Path) -> dict[str, str]:
    commit = _git(folder, "rev-parse", "HEAD")
    if commit is None:
        return {}
    tags = {"loopml.git.commit": commit.decode().strip()}
    branch = _git(folder, "rev-parse", "--abbrev-ref", "HEAD")
    if branch:
        tags["loopml.git.branch"] = branch.decode().strip()
    status = _git(folder, "status", "--porcelain", "--untracked-files=no")
    dirty = bool(status and status.strip())
    tags["loopml.git.dirty"] = "true" if dirty else "false"
    if dirty:
        diff = _git(folder, "diff", "HEAD", "--binary") or b""
        tags["loopml.git.diff_digest"] = "blake3:" + blake3.blake3(diff).hexdigest()
    return tags


def _package_versions() -> dict[str, str]:
    import importlib.metadata  # about 0.1 s to import: paid by runs, not by every command

    versions = {}
    for name in KEY_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


@functools.cache
def capture_environment(folder: Path) -> dict[str, str]:
    """Tags describing the code and machine, for runs started in ``folder``."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    tags = {
        "loopml.python": platform.python_version(),
        "loopml.platform": platform.platform(),
        "loopml.host": socket.gethostname(),
        "loopml.user": user,
        "loopml.command": shlex.join(sys.argv),
        "loopml.packages": json.dumps(_package_versions(), sort_keys=True),
    }
    tags.update(_git_tags(folder))
    return tags
