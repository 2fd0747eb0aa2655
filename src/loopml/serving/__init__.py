"""Serving: deployments as data, the REST app, the prediction log and tracing a prediction
back to its data, feedback, batch scoring."""

from typing import TYPE_CHECKING

from loopml.core import lazy_exports as _lazy_exports

if TYPE_CHECKING:
    from loopml.serving._app import create_app
    from loopml.serving._batch import BatchResult, predict_file
    from loopml.serving._deployments import Deployment, DeploymentRevision, Deployments
    from loopml.serving._feedback import Feedback, FeedbackLabel, FeedbackResult
    from loopml.serving._predlog import SEGMENT_INTERVAL_S, PredictionLog, PredictionLogStats
    from loopml.serving._predlog_reader import PredictionReader
    from loopml.serving._predlog_record import PredictionRecord, new_prediction_id
    from loopml.serving._routing import (
        STRATEGIES,
        DeploymentSpec,
        Fallback,
        Route,
        RouteDecision,
        key_fraction,
        route,
    )
    from loopml.serving._trace import (
        PredictionLineage,
        TracedDataset,
        TracedRun,
        TracedVersion,
        trace_prediction,
    )

# Names load on first use (PEP 562): `loopml serve` needs the app and the log, not batch
# scoring, feedback or tracing (which reach into tracking and data).
_LAZY = {
    "PredictionLineage": "_trace",
    "TracedDataset": "_trace",
    "TracedRun": "_trace",
    "TracedVersion": "_trace",
    "trace_prediction": "_trace",
    "create_app": "_app",
    "BatchResult": "_batch",
    "predict_file": "_batch",
    "Deployment": "_deployments",
    "DeploymentRevision": "_deployments",
    "Deployments": "_deployments",
    "Feedback": "_feedback",
    "FeedbackLabel": "_feedback",
    "FeedbackResult": "_feedback",
    "PredictionLog": "_predlog",
    "PredictionLogStats": "_predlog",
    "SEGMENT_INTERVAL_S": "_predlog",
    "PredictionReader": "_predlog_reader",
    "PredictionRecord": "_predlog_record",
    "new_prediction_id": "_predlog_record",
    "STRATEGIES": "_routing",
    "DeploymentSpec": "_routing",
    "Fallback": "_routing",
    "Route": "_routing",
    "RouteDecision": "_routing",
    "key_fraction": "_routing",
    "route": "_routing",
}


__getattr__ = _lazy_exports(__name__, _LAZY, globals())


__all__ = [
    "SEGMENT_INTERVAL_S",
    "STRATEGIES",
    "BatchResult",
    "Deployment",
    "DeploymentRevision",
    "DeploymentSpec",
    "Deployments",
    "Fallback",
    "Feedback",
    "FeedbackLabel",
    "FeedbackResult",
    "PredictionLineage",
    "PredictionLog",
    "PredictionLogStats",
    "PredictionReader",
    "PredictionRecord",
    "Route",
    "RouteDecision",
    "TracedDataset",
    "TracedRun",
    "TracedVersion",
    "create_app",
    "key_fraction",
    "new_prediction_id",
    "predict_file",
    "route",
    "trace_prediction",
]
