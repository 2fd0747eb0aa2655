"""Serving: deployments as data, the REST app, the prediction log, feedback, batch scoring."""

from loopml.serving._predlog import PredictionLog, PredictionLogStats
from loopml.serving._predlog_record import PredictionRecord, new_prediction_id

__all__ = ["PredictionLog", "PredictionLogStats", "PredictionRecord", "new_prediction_id"]
