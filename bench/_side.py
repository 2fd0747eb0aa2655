"""Run one side script in its own interpreter and read back its figures.

Both sides of a suite go through :func:`run_side`, so they are started, isolated and read the
same way: a clean environment (no ``LOOPML_*``/``MLFLOW_*`` from the caller), the working
folder as current directory, stderr passed through, figures on the last stdout line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from bench._errors import BenchError

__all__ = ["run_side"]

# Variables that would make a side read the caller's setup instead of its fresh store.
_DROPPED_PREFIXES = ("LOOPML_", "MLFLOW_")
_DROPPED = {"PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV"}


def side_environ(pythonpath: Sequence[Path], extra: Mapping[str, str]) -> dict[str, str]:
    """The environment a side runs in: the caller's, cleaned, plus ``extra``."""
    environ = {
        key: value
        for key, value in os.environ.items()
        if key not in _DROPPED and not key.startswith(_DROPPED_PREFIXES)
    }
    environ["PYTHONPATH"] = os.pathsep.join(str(path) for path in pythonpath)
    environ.update(extra)
    return environ


def run_side(
    *,
    python: Path,
    module: str,
    workdir: Path,
    config: Mapping[str, Any],
    pythonpath: Sequence[Path],
    extra_env: Mapping[str, str],
    timeout_s: float,
) -> dict[str, Any]:
    """Run ``python -m module WORKDIR CONFIG_JSON`` in ``workdir``; return its figures.

    Raises:
        BenchError: the script could not start, timed out, failed, or did not end its
            stdout with a JSON object.
    """
    command = [str(python), "-m", module, str(workdir), json.dumps(dict(config))]
    with tempfile.TemporaryFile("w+", encoding="utf-8") as stdout:
        environ = side_environ(pythonpath, extra_env)
        code, stderr_tail = _run(module, command, workdir, environ, stdout, timeout_s)
        stdout.seek(0)
        lines = [line for line in stdout.read().splitlines() if line.strip()]
    for line in lines[:-1]:  # anything a library printed goes to stderr, not our stdout
        print(line, file=sys.stderr)
    if code != 0:
        last = stderr_tail[-1] if stderr_tail else "no stderr"
        raise BenchError(f"{module} failed with exit status {code}: {last}")
    if not lines:
        raise BenchError(f"{module} printed nothing; expected figures as JSON on its last line")
    try:
        figures = json.loads(lines[-1])
    except json.JSONDecodeError as exc:
        raise BenchError(f"{module}'s last stdout line is not JSON: {lines[-1][:200]!r}") from exc
    if not isinstance(figures, dict):
        raise BenchError(f"{module} printed {type(figures).__name__}; expected a JSON object")
    return figures


def _run(
    name: str,
    command: list[str],
    cwd: Path,
    env: dict[str, str],
    stdout: IO[str],
    timeout_s: float,
) -> tuple[int, list[str]]:
    """Run ``command``, passing its stderr through live; return its status and last stderr lines.

    Raises:
        BenchError: it could not start, or ran past ``timeout_s`` (it is killed then).
    """
    try:
        process = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=stdout, stderr=subprocess.PIPE, text=True
        )
    except OSError as exc:
        raise BenchError(f"cannot start {command[0]} for {name}: {exc}") from exc
    tail: deque[str] = deque(maxlen=5)

    def pump() -> None:
        assert process.stderr is not None  # set by stderr=PIPE
        for line in process.stderr:
            sys.stderr.write(line)
            if line.strip():
                tail.append(line.strip())

    pumper = threading.Thread(target=pump, daemon=True)
    pumper.start()
    try:
        code = process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired as exc:
        process.kill()
        process.wait()
        raise BenchError(f"{name} ran past its limit of {timeout_s:.0f} s; killed") from exc
    finally:
        pumper.join(timeout=5)
    return code, list(tail)
