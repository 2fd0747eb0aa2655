"""Versioning workloads on DVC; runs under DVC's interpreter (bench/.venv-dvc).

``python -m bench.sides.versioning_dvc WORKDIR CONFIG_JSON``: ``git init`` and ``dvc init`` in
a fresh folder per repetition (not timed), then ``dvc add`` as a user runs it; figures on the
last stdout line.
"""

from __future__ import annotations

import sys
import sysconfig
from importlib import metadata
from pathlib import Path

from bench.sides._common import emit, parse_args
from bench.sides._versioning import SideFailure, checked, measure

DVC = str(Path(sysconfig.get_path("scripts")) / "dvc")


class DvcSide:
    """``dvc add`` in a fresh Git + DVC repository, with analytics and update checks off."""

    package = "dvc"
    version = metadata.version("dvc")

    def __init__(self) -> None:
        self._repo = Path()

    def prepare(self, folder: Path) -> Path:
        """``git init`` and ``dvc init`` in ``folder``: a repository with an empty cache."""
        self._repo = folder
        checked(["git", "init", "-q"], folder)
        checked([DVC, "init", "-q"], folder)
        for key, value in (
            ("core.analytics", "false"),
            ("core.check_update", "false"),
            # DVC's state database lives in /var/tmp by default; keep it in this folder, so
            # each repetition hashes again, as a first add does.
            ("core.site_cache_dir", str(folder / ".dvc-site-cache")),
        ):
            checked([DVC, "config", key, value], folder)
        return folder

    def version_command(self) -> list[str]:
        return [DVC, "--version"]

    def add_command(self, path: Path, name: str) -> list[str]:
        return [DVC, "add", str(path)]

    def stored(self, path: Path, name: str) -> tuple[int, int]:
        """``size`` and ``nfiles`` (1 for a file) from the ``.dvc`` file ``dvc add`` wrote."""
        record = self._repo / f"{path}.dvc"
        try:
            lines = record.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise SideFailure(f"cannot read {record.name}: {exc}") from exc
        fields = dict(line.strip(" -").split(": ", 1) for line in lines if ": " in line)
        try:
            return int(fields.get("nfiles", "1")), int(fields["size"])
        except (KeyError, ValueError) as exc:
            raise SideFailure(f"{record.name} has no usable size/nfiles: {fields}") from exc


def main() -> None:
    args = parse_args()
    try:
        figures = measure(DvcSide(), args.config, args.workdir)
    except SideFailure as exc:
        sys.exit(str(exc))
    emit(figures)


if __name__ == "__main__":
    main()
