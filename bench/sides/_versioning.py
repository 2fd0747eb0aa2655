"""The versioning workloads, timed the same way for every side.

Each side script wraps its tool in a :class:`VersioningSide`; :func:`measure` copies the
shared inputs into the side's folder, then per repetition prepares a fresh store or
repository, moves the inputs in, reads them once and flushes dirty pages (so both sides
start with them in the page cache and nothing left to write back), and times the tool's own
command line as a subprocess, the way a user runs it. The figure is the median.
Standard library only: the DVC side imports this under DVC's interpreter.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

__all__ = [
    "Finished",
    "Inputs",
    "SideFailure",
    "VersioningSide",
    "checked",
    "child_env",
    "measure",
    "run_cli",
    "settle",
    "warm",
]

_CHUNK = 16 << 20


class SideFailure(RuntimeError):
    """A command the side depends on failed; the side exits with this message."""


@dataclass(frozen=True, slots=True)
class Inputs:
    """The input files generated once per bench run, shared by both sides (read-only)."""

    large_file: Path
    small_dir: Path
    large_bytes: int
    small_files: int
    small_bytes: int

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Inputs:
        folder = Path(config["inputs_dir"])
        small_files = int(config["small_files"])
        return cls(
            large_file=folder / "big.bin",
            small_dir=folder / "small",
            large_bytes=int(config["large_file_bytes"]),
            small_files=small_files,
            small_bytes=small_files * int(config["small_file_bytes"]),
        )


@dataclass(frozen=True, slots=True)
class Finished:
    """A command that ran to its end: status, wall-clock seconds, peak memory, output."""

    code: int
    seconds: float
    max_rss_mib: float
    stdout: str
    stderr: str

    def tail(self, lines: int = 3) -> str:
        """The last lines of stderr (else stdout), joined on one line, for messages."""
        text = self.stderr.strip() or self.stdout.strip()
        return " | ".join(text.splitlines()[-lines:]) or "no output"


class VersioningSide(Protocol):
    """One data-versioning tool, driven through the command line a user would type."""

    package: str
    version: str

    def prepare(self, folder: Path) -> Path:
        """Initialise a fresh store or repository in the new, empty ``folder`` and return the
        folder the inputs are moved into; not timed. Called once per repetition."""

    def version_command(self) -> list[str]:
        """The tool's cheapest command (its version), timed as the CLI's start-up cost."""

    def add_command(self, path: Path, name: str) -> list[str]:
        """Version ``path`` (relative to the prepared folder) under ``name``."""

    def stored(self, path: Path, name: str) -> tuple[int, int]:
        """Files and bytes the tool recorded for that add; not timed.

        Raises:
            SideFailure: the tool's record could not be read.
        """


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without ``PYTHONPATH``: a CLI runs as it would for a user."""
    environ = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    environ.update(extra or {})
    return environ


def run_cli(command: Sequence[str], cwd: Path, env: Mapping[str, str] | None = None) -> Finished:
    """Run ``command`` to its end; its peak memory comes from its own rusage (``wait4``)."""
    with tempfile.TemporaryFile("w+b") as stdout, tempfile.TemporaryFile("w+b") as stderr:
        started = time.perf_counter()
        process = subprocess.Popen(
            list(command),
            cwd=cwd,
            env=dict(env) if env is not None else child_env(),
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
        )
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        texts = []
        for stream in (stdout, stderr):
            stream.seek(0)
            texts.append(stream.read().decode("utf-8", errors="replace"))
    # ru_maxrss is KiB on Linux, bytes on macOS.
    rss_bytes = usage.ru_maxrss * (1 if platform.system() == "Darwin" else 1024)
    return Finished(process.returncode, elapsed, round(rss_bytes / (1 << 20), 1), *texts)


def checked(command: Sequence[str], cwd: Path, env: Mapping[str, str] | None = None) -> Finished:
    """:func:`run_cli`, raising :class:`SideFailure` with its output's tail on a failure."""
    done = run_cli(command, cwd, env)
    if done.code != 0:
        raise SideFailure(f"`{' '.join(command)}` exited {done.code}: {done.tail()}")
    return done


def warm(path: Path) -> int:
    """Read every byte under ``path`` once; return how many."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    total = 0
    for file in files:
        with open(file, "rb") as stream:
            while chunk := stream.read(_CHUNK):
                total += len(chunk)
    return total


def settle(path: Path) -> int:
    """Read ``path`` once (warm), then flush dirty pages; return its bytes. Call before timing.

    ``os.sync`` writes back what is still dirty (the staged copies, an earlier command's
    writes), so that write-back does not land inside the next timing; what was read stays
    in the page cache.
    """
    size = warm(path)
    os.sync()
    return size


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def _timed_add(side: VersioningSide, folder: Path, path: Path, name: str) -> dict[str, Any]:
    """One add of ``path`` (inside ``folder``), warmed and settled first; not checked."""
    settle(path)
    done = checked(side.add_command(path.relative_to(folder), name), folder)
    # Not part of the figure: how long the writes the command left in the page cache take
    # to reach the disk (a tool that fsyncs before it exits leaves next to nothing).
    started = time.perf_counter()
    os.sync()
    return {
        "seconds": done.seconds,
        "sync_after_seconds": time.perf_counter() - started,
        "max_rss_mib": done.max_rss_mib,
    }


def _stored(
    side: VersioningSide, relative: Path, name: str, files: int, size: int
) -> dict[str, Any]:
    try:
        stored_files, stored_bytes = side.stored(relative, name)
    except SideFailure as exc:
        return {"stored_ok": False, "stored_error": str(exc)}
    return {
        "stored_files": stored_files,
        "stored_bytes": stored_bytes,
        "stored_ok": (stored_files, stored_bytes) == (files, size),
    }


def _summary(runs: list[dict[str, Any]], files: int, size: int) -> dict[str, Any]:
    seconds = _median([run["seconds"] for run in runs])
    return {
        "files": files,
        "bytes": size,
        "seconds": round(seconds, 6),
        "repeats": len(runs),
        "all_seconds": [round(run["seconds"], 6) for run in runs],
        "mb_per_s": round(size / 1e6 / seconds, 1),
        "files_per_s": round(files / seconds, 1),
        "max_rss_mib": max(run["max_rss_mib"] for run in runs),
        "sync_after_seconds": round(_median([run["sync_after_seconds"] for run in runs]), 6),
    }


def measure(side: VersioningSide, config: Mapping[str, Any], workdir: Path) -> dict[str, Any]:
    """Stage the inputs in ``workdir``, then time both adds ``repeats`` times (see
    bench/README.md): each repetition in a fresh folder that the side prepares (a new store
    or repository), with the staged inputs moved in (a rename) and out again."""
    inputs = Inputs.from_config(config)
    repeats = max(1, int(config.get("repeats", 1)))
    large = workdir / inputs.large_file.name
    small = workdir / inputs.small_dir.name
    shutil.copyfile(inputs.large_file, large)
    shutil.copytree(inputs.small_dir, small)
    workloads = (
        ("add_large_file", large, "big", 1, inputs.large_bytes),
        ("add_small_files", small, "small", inputs.small_files, inputs.small_bytes),
    )
    runs: dict[str, list[dict[str, Any]]] = {workload: [] for workload, *_ in workloads}
    stored: dict[str, dict[str, Any]] = {}
    startup: list[float] = []
    for repeat in range(repeats):
        rep = workdir / f"rep-{repeat}"
        rep.mkdir()
        folder = side.prepare(rep)
        startup.append(checked(side.version_command(), folder).seconds)
        for workload, staged, name, files, size in workloads:
            path = folder / staged.name
            staged.rename(path)
            try:
                runs[workload].append(_timed_add(side, folder, path, name))
            finally:
                path.rename(staged)
            found = _stored(side, path.relative_to(folder), name, files, size)
            if repeat == 0 or not found["stored_ok"]:
                stored[workload] = found
    # The repetitions' stores and caches go only now, so that the filesystem's work of
    # freeing thousands of files cannot land inside a timed add.
    for repeat in range(repeats):
        shutil.rmtree(workdir / f"rep-{repeat}")
    figures: dict[str, Any] = {
        "package": side.package,
        "version": side.version,
        "python": platform.python_version(),
        "cli_startup": {"seconds": round(_median(startup), 6)},
    }
    for workload, _, _, files, size in workloads:
        figures[workload] = _summary(runs[workload], files, size) | stored[workload]
    return figures
