"""Experiments: runs with params, metrics, tags and artifacts, searched and compared.

Writes are buffered; see :mod:`loopml.tracking._buffer` for what a crash can lose.
"""

from loopml.tracking._client import Client, RunPage, start_run
from loopml.tracking._run import ActiveRun
from loopml.tracking._system import sample_system

__all__ = ["ActiveRun", "Client", "RunPage", "sample_system", "start_run"]
