"""Monitoring: data and prediction drift, late-label performance, operations, reports, alerts."""

__all__: list[str] = []
