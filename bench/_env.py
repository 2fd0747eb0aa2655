"""Peer environments: a virtual environment per requirements file, built on first use.

A peer (MLflow, later DVC, Evidently, ...) never shares an interpreter with loopml, so neither
side's imports or pins leak into the other. The environment is rebuilt when its requirements
file or the Python that builds it changes; the fingerprint of both is kept inside the venv.
"""

from __future__ import annotations

import hashlib
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from bench._errors import BenchError
from bench._log import log

__all__ = ["PEERS", "PeerEnv"]

BENCH_DIR = Path(__file__).resolve().parent
FINGERPRINT_FILE = "requirements.sha256"


@dataclass(frozen=True, slots=True)
class PeerEnv:
    """A virtual environment at ``venv`` holding what ``requirements`` pins."""

    name: str
    requirements: Path
    venv: Path

    @property
    def python(self) -> Path:
        """The environment's interpreter."""
        if sys.platform == "win32":
            return self.venv / "Scripts" / "python.exe"
        return self.venv / "bin" / "python"

    def fingerprint(self) -> str:
        """Hash of the requirements file and of the Python version that builds the venv."""
        try:
            pins = self.requirements.read_bytes()
        except OSError as exc:
            raise BenchError(f"cannot read {self.requirements} for peers {self.name!r}") from exc
        digest = hashlib.sha256(pins)
        digest.update(platform.python_version().encode())
        return digest.hexdigest()

    def is_current(self) -> bool:
        """Whether the venv exists and was built from the current requirements."""
        stamp = self.venv / FINGERPRINT_FILE
        return (
            self.python.is_file()
            and stamp.is_file()
            and stamp.read_text(encoding="utf-8").strip() == self.fingerprint()
        )

    def ensure(self) -> Path:
        """Build the venv if missing or stale; return its interpreter.

        Raises:
            BenchError: ``venv`` or ``pip install`` failed (pip's output is on stderr).
        """
        if self.is_current():
            return self.python
        fingerprint = self.fingerprint()
        if self.venv.exists():
            log(f"peers {self.name!r}: {self.requirements.name} changed; rebuilding {self.venv}")
            shutil.rmtree(self.venv)
        log(f"peers {self.name!r}: building {self.venv} (takes a minute or two)")
        _check_call([sys.executable, "-m", "venv", str(self.venv)])
        _check_call(
            [
                str(self.python),
                *("-m", "pip", "install", "--disable-pip-version-check", "--progress-bar", "off"),
                *("-r", str(self.requirements)),
            ]
        )
        # Written last: an interrupted build has no stamp and is rebuilt next time.
        (self.venv / FINGERPRINT_FILE).write_text(fingerprint + "\n", encoding="utf-8")
        log(f"peers {self.name!r}: ready")
        return self.python


def _check_call(command: list[str]) -> None:
    """Run ``command`` with its output on stderr, so stdout stays the bench's JSON."""
    log("$ " + " ".join(command))
    try:
        code = subprocess.call(command, stdout=sys.stderr, stderr=sys.stderr)
    except OSError as exc:
        raise BenchError(f"cannot start {command[0]}: {exc}") from exc
    if code != 0:
        raise BenchError(f"command failed with exit status {code}: {' '.join(command)}")


PEERS = PeerEnv(
    name="peers",
    requirements=BENCH_DIR / "requirements-peers.txt",
    venv=BENCH_DIR / ".venv-peers",
)
