"""Data: datasets, immutable dataset versions, validation attempts, stored splits.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "datasets",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(256), nullable=False, unique=True),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "dataset_versions",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("dataset_id", sa.String(32), sa.ForeignKey("datasets.id"), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("digest", sa.String(80), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("snapshot", sa.String(80), nullable=False),
        sa.Column("row_count", sa.BigInteger, nullable=True),
        sa.Column("file_count", sa.BigInteger, nullable=False),
        sa.Column("bytes", sa.BigInteger, nullable=False),
        sa.Column("schema", sa.Text, nullable=True),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("lineage", sa.Text, nullable=False),
        sa.Column("profile", sa.Text, nullable=True),
        sa.Column("validation", sa.Text, nullable=True),
        sa.Column("forced", sa.Integer, nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("dataset_id", "version", name="uq_dataset_versions_number"),
        sa.UniqueConstraint("dataset_id", "digest", name="uq_dataset_versions_digest"),
    )
    op.create_table(
        "validation_attempts",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("dataset_name", sa.String(256), nullable=False),
        sa.Column("version_id", sa.String(32), sa.ForeignKey("dataset_versions.id"), nullable=True),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("passed", sa.Integer, nullable=False),
        sa.Column("forced", sa.Integer, nullable=False),
        sa.Column("report", sa.Text, nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
    )
    op.create_index(
        "ix_validation_attempts_name", "validation_attempts", ["dataset_name", "created_ms"]
    )
    op.create_table(
        "dataset_splits",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "version_id", sa.String(32), sa.ForeignKey("dataset_versions.id"), nullable=False
        ),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("spec", sa.Text, nullable=False),
        sa.Column("fingerprint", sa.String(80), nullable=False),
        sa.Column("counts", sa.Text, nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("version_id", "name", name="uq_dataset_splits_name"),
    )


def downgrade() -> None:
    for name in ("dataset_splits", "validation_attempts", "dataset_versions", "datasets"):
        op.drop_table(name)
