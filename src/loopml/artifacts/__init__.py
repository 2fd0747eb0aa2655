"""Artifacts: a content-addressed blob store on local folders and any fsspec filesystem.

Blobs are named by the blake3 digest of their bytes (``blake3:<64 hex>``), so equal bytes
are stored once and every read proves the bytes unchanged. Writes are atomic. Paths that
users give for artifacts go through :func:`safe_relative_path` / :func:`safe_join`, which
never let them escape the artifact root.
"""

from __future__ import annotations

from loopml.artifacts._digest import BlobInfo
from loopml.artifacts._paths import safe_join, safe_relative_path
from loopml.artifacts._store import ArtifactStore

__all__ = ["ArtifactStore", "BlobInfo", "safe_join", "safe_relative_path"]

for _name in __all__:
    globals()[_name].__module__ = __name__
del _name
