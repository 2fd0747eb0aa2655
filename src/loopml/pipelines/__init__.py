"""Lifecycle: pipelines of plain Python steps, cached, retried, run anywhere.

Define steps with :func:`step`, wire them in a :func:`pipeline` function, run it with
:meth:`Pipeline.run` or ``loopml run module:pipeline``. Every run and step is
recorded; a step whose code, parameters, declared dependencies and inputs are
unchanged is not run again.
"""

from loopml.pipelines._cron import Cron, latest_slot, next_slot, parse_cron
from loopml.pipelines._events import Event, emit_event
from loopml.pipelines._loader import load_pipeline
from loopml.pipelines._pipeline import DatasetInput, Pipeline, StepOutput, dataset, pipeline
from loopml.pipelines._reader import PipelineRuns
from loopml.pipelines._records import PipelineRunRecord, StepRunRecord, StepStatus
from loopml.pipelines._runner import resume_run, run_pipeline, run_ref
from loopml.pipelines._scheduler import Scheduler
from loopml.pipelines._schedules import Fire, Schedule
from loopml.pipelines._step import Step, step
from loopml.pipelines._task import StepContext, current_step
from loopml.pipelines._values import ValueRef

__all__ = [
    "Cron",
    "DatasetInput",
    "Event",
    "Fire",
    "Pipeline",
    "PipelineRunRecord",
    "PipelineRuns",
    "Schedule",
    "Scheduler",
    "Step",
    "StepContext",
    "StepOutput",
    "StepRunRecord",
    "StepStatus",
    "ValueRef",
    "current_step",
    "dataset",
    "emit_event",
    "latest_slot",
    "load_pipeline",
    "next_slot",
    "parse_cron",
    "pipeline",
    "resume_run",
    "run_pipeline",
    "run_ref",
    "step",
]
