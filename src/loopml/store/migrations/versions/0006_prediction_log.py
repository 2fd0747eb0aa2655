"""Serving: the prediction log's segment index.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "prediction_segments",
        sa.Column("digest", sa.String(length=80), nullable=False),
        sa.Column("deployment", sa.String(length=128), nullable=False),
        sa.Column("first_ts_ms", sa.BigInteger(), nullable=False),
        sa.Column("last_ts_ms", sa.BigInteger(), nullable=False),
        sa.Column("first_id", sa.String(length=64), nullable=False),
        sa.Column("last_id", sa.String(length=64), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("digest"),
    )
    op.create_index(
        "ix_prediction_segments_deployment",
        "prediction_segments",
        ["deployment", "last_ts_ms"],
        unique=False,
    )
    op.create_index(
        "ix_prediction_segments_ids",
        "prediction_segments",
        ["first_id", "last_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_prediction_segments_ids", table_name="prediction_segments")
    op.drop_index("ix_prediction_segments_deployment", table_name="prediction_segments")
    op.drop_table("prediction_segments")
