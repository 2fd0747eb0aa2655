"""The registry of suites: ``python -m bench NAME`` runs ``SUITES[NAME]``.

To add one, write its side scripts under ``bench/sides/``, define a :class:`bench._suite.Suite`
in a module here and register it below. A peer that needs its own packages gets its own
:class:`bench._env.PeerEnv` (requirements file + venv folder).
"""

from __future__ import annotations

from bench._suite import Suite
from bench.suites.drift import DRIFT
from bench.suites.pipelines import PIPELINES
from bench.suites.serving import SERVING
from bench.suites.tracking import TRACKING
from bench.suites.versioning import VERSIONING

__all__ = ["SUITES"]

SUITES: dict[str, Suite] = {
    suite.name: suite for suite in (TRACKING, VERSIONING, PIPELINES, SERVING, DRIFT)
}
