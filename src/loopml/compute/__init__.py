"""Platform: where work runs. In this process, in a process pool, or on a Ray cluster.

An executor runs plain callables and knows nothing about pipelines or ML: it takes a
function, its arguments and the resources it asks for, and returns a
``concurrent.futures.Future``. Arguments and results travel by pickle (cloudpickle for
the function), so they must stay small; bulk data goes through the artifact store.
"""

from loopml.compute._executor import (
    EXECUTOR_KINDS,
    Executor,
    LocalExecutor,
    Resources,
    create_executor,
)
from loopml.compute._process import ProcessExecutor
from loopml.compute._ray import RayExecutor
from loopml.compute._timeout import StepTimeoutError, call_with_timeout

__all__ = [
    "EXECUTOR_KINDS",
    "Executor",
    "LocalExecutor",
    "ProcessExecutor",
    "RayExecutor",
    "Resources",
    "StepTimeoutError",
    "call_with_timeout",
    "create_executor",
]
