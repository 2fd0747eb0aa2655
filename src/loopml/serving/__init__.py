"""Serving: deployments as data, the REST app, the prediction log, feedback, batch scoring."""
