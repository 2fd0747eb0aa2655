"""Alembic environment: loopml always hands in an open connection (see ``_migrate.py``)."""

from __future__ import annotations

from alembic import context

from loopml.store._schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
