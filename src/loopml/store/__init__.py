"""Platform: loopml's metadata database (SQLite by default, PostgreSQL in production).

It owns the schema and its migrations; the domain layers query its tables.
"""

from loopml.store import _schema as schema
from loopml.store._migrate import HEAD_REVISION
from loopml.store._store import MetadataStore, open_store, upgrade_store

__all__ = ["HEAD_REVISION", "MetadataStore", "open_store", "schema", "upgrade_store"]
