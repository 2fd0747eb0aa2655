"""Reading the prediction log from any process on the machine, without writing to it.

A :class:`PredictionLog` sees its own records before they become segments, but a command
such as ``loopml predictions tail`` runs beside the server, not inside it. The reader
looks at the segments (through ``prediction_segments``) and at every journal in the
home's ``predlog`` folder, the live ones included, read without taking their locks: a
record is in a journal from its group commit until a segment holds it.
"""

from __future__ import annotations

import os
from pathlib import Path

import sqlalchemy as sa

from loopml.governance import StoreService
from loopml.serving._predlog_journal import _PATTERN as JOURNAL_GLOB
from loopml.serving._predlog_journal import read_journal
from loopml.serving._predlog_record import PredictionRecord
from loopml.serving._predlog_segments import (
    find_in_segments,
    newest_first,
    segment_records,
    tail,
)
from loopml.store import schema

__all__ = ["PredictionReader"]

_SEGS = schema.prediction_segments


class PredictionReader(StoreService):
    """Read-only view of the prediction log of the store and home ``settings`` name.

    With auth on, reading needs a valid token (as every other read does). Journals of
    servers on other machines are not visible: their records appear once segments hold
    them (every couple of seconds).
    """

    def _check_reader(self) -> None:
        if self.settings.auth:
            _ = self.identity

    def _journal_records(self, deployment: str | None = None) -> list[PredictionRecord]:
        """Every intact record of every journal in the home (live or orphaned)."""
        folder: Path = self.settings.home / "predlog"
        if not folder.is_dir():
            return []
        found: list[PredictionRecord] = []
        for path in sorted(folder.glob(JOURNAL_GLOB)):
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:  # its owner closed cleanly meanwhile
                continue
            try:
                # a line being written right now is torn and skipped: it is not
                # acknowledged yet
                records, _ = read_journal(fd)
            finally:
                os.close(fd)
            found += [r for r in records if deployment is None or r.deployment == deployment]
        return found

    def find(self, prediction_id: str) -> PredictionRecord | None:
        """The record with ``prediction_id``, or None when the log does not hold it."""
        self._check_reader()
        # Journals before segments: a writer records a segment before it deletes the
        # sealed journal, so a record moving between the two is seen in one or the other.
        for record in self._journal_records():
            if record.prediction_id == prediction_id:
                return record
        return find_in_segments(self.artifacts, self.store, prediction_id)

    def tail(self, deployment: str, n: int = 20) -> list[PredictionRecord]:
        """The ``n`` newest records of ``deployment``, newest first (shadows included)."""
        self._check_reader()
        return tail(self.artifacts, self.store, deployment, self._journal_records(deployment), n)

    def since(self, deployment: str, since_ms: int) -> list[PredictionRecord]:
        """The records of ``deployment`` stamped at ``since_ms`` or later, oldest first."""
        self._check_reader()
        found = self._journal_records(deployment)
        query = sa.select(_SEGS.c.digest).where(
            _SEGS.c.deployment == deployment, _SEGS.c.last_ts_ms >= since_ms
        )
        with self.store.read() as conn:
            digests = list(conn.scalars(query))
        for digest in digests:
            found += segment_records(self.artifacts, digest)
        return [r for r in reversed(newest_first(found)) if r.ts_ms >= since_ms]
