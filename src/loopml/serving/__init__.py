"""Serving: deployments as data, the REST app, the prediction log and tracing a prediction
back to its data, feedback, batch scoring."""

from loopml.serving._app import create_app
from loopml.serving._batch import BatchResult, predict_file
from loopml.serving._deployments import Deployment, DeploymentRevision, Deployments
from loopml.serving._feedback import Feedback, FeedbackLabel, FeedbackResult
from loopml.serving._predlog import PredictionLog, PredictionLogStats
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

__all__ = [
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
