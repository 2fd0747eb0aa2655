"""Serving: deployments as data, the REST app, the prediction log, feedback, batch scoring."""

from loopml.serving._deployments import Deployment, DeploymentRevision, Deployments
from loopml.serving._predlog import PredictionLog, PredictionLogStats
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

__all__ = [
    "STRATEGIES",
    "Deployment",
    "DeploymentRevision",
    "DeploymentSpec",
    "Deployments",
    "Fallback",
    "PredictionLog",
    "PredictionLogStats",
    "PredictionRecord",
    "Route",
    "RouteDecision",
    "key_fraction",
    "new_prediction_id",
    "route",
]
