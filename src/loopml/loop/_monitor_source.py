"""The controller's default sample source: a fresh monitoring report per deployment.

``loopml loop tick`` and ``loopml loop run`` have no monitor of their own running beside
them, so each tick brings the deployment's windows up to date (reading only the log
segments written since the last pass) and hands the newest report's samples to the
drift and performance triggers. Reports made here are stored like any other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from loopml.core import Settings
from loopml.loop._triggers import Sample
from loopml.monitoring import Monitor

__all__ = ["MonitorSamples"]


class MonitorSamples:
    """Samples of ``Monitor.report(deployment, window)``, with a window per deployment.

    Args:
        windows: the window spec for each deployment (``"1h"`` when one is not named).
    """

    def __init__(self, settings: Settings, windows: Mapping[str, str] | None = None) -> None:
        self.settings = settings
        self.windows = dict(windows or {})
        self._monitor: Monitor | None = None

    def samples(self, deployment: str) -> Sequence[Sample]:
        if self._monitor is None:
            self._monitor = Monitor(self.settings)
        window = self.windows.get(deployment, "1h")
        return list(self._monitor.report(deployment, window=window).samples())

    def close(self) -> None:
        if self._monitor is not None:
            self._monitor.close()
            self._monitor = None
