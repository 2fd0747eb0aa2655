"""Monitoring: per deployment and window spec a state (watermark), the log segments read,
one row per window (mergeable counts, labels, performance), and the stored reports.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "monitor_states",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("deployment", sa.String(length=128), nullable=False),
        sa.Column("window_spec", sa.String(length=32), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("segments", sa.BigInteger(), nullable=False),
        sa.Column("last_ts_ms", sa.BigInteger(), nullable=True),
        sa.Column("labels_ms", sa.BigInteger(), nullable=True),
        sa.Column("prediction_refs", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("deployment", "window_spec", name="uq_monitor_states_window"),
    )
    op.create_table(
        "monitor_segments",
        sa.Column("state_id", sa.String(length=32), nullable=False),
        sa.Column("digest", sa.String(length=80), nullable=False),
        sa.Column("first_id", sa.String(length=64), nullable=False),
        sa.Column("last_id", sa.String(length=64), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("index_digest", sa.String(length=80), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["state_id"], ["monitor_states.id"]),
        sa.PrimaryKeyConstraint("state_id", "digest"),
    )
    op.create_index(
        "ix_monitor_segments_ids",
        "monitor_segments",
        ["state_id", "first_id", "last_id"],
        unique=False,
    )
    op.create_table(
        "monitor_windows",
        sa.Column("state_id", sa.String(length=32), nullable=False),
        sa.Column("window_index", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("start_ms", sa.BigInteger(), nullable=False),
        sa.Column("end_ms", sa.BigInteger(), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("sketch", sa.Text(), nullable=False),
        sa.Column("labels_digest", sa.String(length=80), nullable=True),
        sa.Column("performance", sa.Text(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["state_id"], ["monitor_states.id"]),
        sa.PrimaryKeyConstraint("state_id", "window_index"),
    )
    op.create_table(
        "monitor_reports",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("deployment", sa.String(length=128), nullable=False),
        sa.Column("window_spec", sa.String(length=32), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("report", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_monitor_reports_deployment",
        "monitor_reports",
        ["deployment", "created_ms"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_monitor_reports_deployment", table_name="monitor_reports")
    op.drop_table("monitor_reports")
    op.drop_table("monitor_windows")
    op.drop_index("ix_monitor_segments_ids", table_name="monitor_segments")
    op.drop_table("monitor_segments")
    op.drop_table("monitor_states")
