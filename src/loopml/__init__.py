"""loopml: closed-loop MLOps in one pip install.

Start here::

    import loopml

    with loopml.start_run(experiment="churn") as run:
        run.log_params({"lr": 0.1, "depth": 6})
        run.log_metric("auc", 0.91)

    best = loopml.Client().search_runs("churn", order_by=["metrics.auc DESC"], max_results=1)
"""

from loopml.core import LoopmlError, Settings, load_settings
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
