"""loopml: closed-loop MLOps in one pip install.

Start here::

    import loopml

    with loopml.start_run(experiment="churn") as run:
        run.log_params({"lr": 0.1, "depth": 6})
        run.log_metric("auc", 0.91)

    best = loopml.Client().search_runs("churn", order_by=["metrics.auc DESC"], max_results=1)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from loopml.core import LoopmlError, Settings, load_settings

if TYPE_CHECKING:
    from loopml.tracking import ActiveRun, Client, start_run

__all__ = [
    "ActiveRun",
    "Client",
    "LoopmlError",
    "Settings",
    "__version__",
    "load_settings",
    "start_run",
]

__version__ = "0.1.0"
_TRACKING = {"ActiveRun", "Client", "start_run"}


def __getattr__(name: str) -> Any:
    # Tracking pulls in SQLAlchemy; load it on first use so `import loopml` (and every
    # CLI command that does not track) starts fast.
    if name in _TRACKING:
        import loopml.tracking

        return getattr(loopml.tracking, name)
    raise AttributeError(f"module 'loopml' has no attribute {name!r}")
