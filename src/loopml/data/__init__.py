"""Data: ingest, validate, version, profile and split datasets.

Every model in loopml traces back to the exact bytes it learned from: a
:class:`DatasetVersion` is named by a content hash of its canonical data.
"""

__all__: list[str] = []
