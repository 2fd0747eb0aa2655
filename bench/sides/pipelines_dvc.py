"""Pipelines workloads on DVC; runs under DVC's interpreter (bench/.venv-dvc).

``python -m bench.sides.pipelines_dvc WORKDIR CONFIG_JSON``: ``git init`` and ``dvc init`` in
WORKDIR/repo-N for each repetition (not timed), a ``dvc.yaml`` of chained no-op stages, then
``dvc repro`` as a user runs it, twice; figures on the last stdout line.
"""

from __future__ import annotations

import re
import sys
import sysconfig
from importlib import metadata
from pathlib import Path

from bench.sides._common import emit, parse_args
from bench.sides._pipelines import measure
from bench.sides._versioning import SideFailure, checked, run_cli

DVC = str(Path(sysconfig.get_path("scripts")) / "dvc")
LOG = "runs.log"
_SKIPPED = re.compile(r"^Stage '[^']+' didn't change, skipping$", re.MULTILINE)


def dvc_yaml(steps: int) -> str:
    """Stages ``s00..``: each depends on the one before's out (the first on ``s.in``), and
    its command, shell built-ins only, logs its name to ``runs.log`` and writes its out."""
    lines = ["stages:"]
    previous = "s.in"
    for i in range(steps):
        name = f"s{i:02d}"
        lines += [
            f"  {name}:",
            f"    cmd: echo {name} >> {LOG} && echo {name} > {name}.out",
            "    deps:",
            f"    - {previous}",
            "    outs:",
            f"    - {name}.out",
        ]
        previous = f"{name}.out"
    return "\n".join(lines) + "\n"


class DvcSide:
    """``dvc repro`` in a fresh Git + DVC repository, with analytics and update checks off."""

    package = "dvc"
    version = metadata.version("dvc")

    def __init__(self, workdir: Path) -> None:
        self._workdir = workdir
        self._repo = workdir
        self._logged = 0
        self._output = ""

    def _init(self, repo: Path) -> None:
        repo.mkdir()
        checked(["git", "init", "-q"], repo)
        checked([DVC, "init", "-q"], repo)
        for key, value in (
            ("core.analytics", "false"),
            ("core.check_update", "false"),
            # DVC's state database lives in /var/tmp by default; keep it in the temp folder.
            ("core.site_cache_dir", str(self._workdir / "dvc-site-cache")),
        ):
            checked([DVC, "config", key, value], repo)
        (repo / "s.in").write_text("0\n", encoding="utf-8")

    def warm_up(self) -> None:
        # A two-stage pipeline in a repository of its own: DVC's modules are read from disk
        # once before timing, as loopml's are imported before its timing.
        warm = self._workdir / "warmup"
        self._init(warm)
        (warm / "dvc.yaml").write_text(dvc_yaml(2), encoding="utf-8")
        checked([DVC, "repro"], warm)

    def prepare(self, steps: int, repetition: int) -> None:
        self._repo, self._logged = self._workdir / f"repo-{repetition}", 0
        self._init(self._repo)
        (self._repo / "dvc.yaml").write_text(dvc_yaml(steps), encoding="utf-8")

    def run(self) -> None:
        done = run_cli([DVC, "repro"], self._repo)
        if done.code != 0:
            raise SideFailure(f"`dvc repro` exited {done.code}: {done.tail()}")
        self._output = done.stdout + done.stderr

    def outcome(self) -> tuple[int, int]:
        """Stages that ran: new lines in ``runs.log``; reused: DVC's "didn't change" lines."""
        log = self._repo / LOG
        logged = len(log.read_text(encoding="utf-8").splitlines()) if log.exists() else 0
        executed, self._logged = logged - self._logged, logged
        return executed, len(_SKIPPED.findall(self._output))


def main() -> None:
    args = parse_args()
    side = DvcSide(args.workdir)
    try:
        figures = measure(side, args.config)
        startup = checked([DVC, "--version"], args.workdir)
    except SideFailure as exc:
        sys.exit(str(exc))
    figures["cli_startup"] = {"seconds": round(startup.seconds, 6)}
    emit(figures)


if __name__ == "__main__":
    main()
