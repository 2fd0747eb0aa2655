"""Pipelines: pipeline and step runs, schedules and triggers, their fires, events.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_AutoId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "pipeline_runs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("pipeline", sa.String(256), nullable=False),
        sa.Column("ref", sa.Text, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("params", sa.Text, nullable=False),
        sa.Column("executor", sa.String(16), nullable=False),
        sa.Column("cache", sa.Integer, nullable=False),
        sa.Column("tracking_run_id", sa.String(32), nullable=True),
        sa.Column("code_version", sa.String(64), nullable=True),
        sa.Column("resumed_from", sa.String(32), nullable=True),
        sa.Column("started_by", sa.String(256), nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("start_ms", sa.BigInteger, nullable=False),
        sa.Column("end_ms", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_pipeline_runs_pipeline", "pipeline_runs", ["pipeline", "start_ms"])
    op.create_table(
        "step_runs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "pipeline_run_id", sa.String(32), sa.ForeignKey("pipeline_runs.id"), nullable=False
        ),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("cache_key", sa.String(80), nullable=True),
        sa.Column("cached_from", sa.String(32), nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("inputs", sa.Text, nullable=False),
        sa.Column("outputs", sa.Text, nullable=True),
        sa.Column("datasets", sa.Text, nullable=False),
        sa.Column("logs", sa.String(80), nullable=True),
        sa.Column("tracking_run_id", sa.String(32), nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("start_ms", sa.BigInteger, nullable=True),
        sa.Column("end_ms", sa.BigInteger, nullable=True),
        sa.UniqueConstraint("pipeline_run_id", "name", name="uq_step_runs_name"),
    )
    op.create_index("ix_step_runs_cache", "step_runs", ["cache_key", "status"])
    op.create_table(
        "schedules",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(256), nullable=False, unique=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("spec", sa.String(256), nullable=False),
        sa.Column("pipeline_ref", sa.Text, nullable=False),
        sa.Column("params", sa.Text, nullable=False),
        sa.Column("executor", sa.String(16), nullable=False),
        sa.Column("enabled", sa.Integer, nullable=False),
        sa.Column("cursor", sa.BigInteger, nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "schedule_fires",
        sa.Column("schedule_id", sa.String(32), sa.ForeignKey("schedules.id"), primary_key=True),
        sa.Column("slot", sa.String(64), primary_key=True),
        sa.Column("scheduler", sa.String(256), nullable=False),
        sa.Column("pipeline_run_id", sa.String(32), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "events",
        sa.Column("id", _AutoId, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("source", sa.String(256), nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_events_name", "events", ["name", "id"])


def downgrade() -> None:
    op.drop_index("ix_events_name", table_name="events")
    op.drop_table("events")
    op.drop_table("schedule_fires")
    op.drop_table("schedules")
    op.drop_index("ix_step_runs_cache", table_name="step_runs")
    op.drop_table("step_runs")
    op.drop_index("ix_pipeline_runs_pipeline", table_name="pipeline_runs")
    op.drop_table("pipeline_runs")
