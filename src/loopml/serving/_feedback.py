"""Feedback: true labels for logged predictions, stored for monitoring.

A label names the prediction it belongs to by ``prediction_id``. Each id is looked up in
the prediction log (its segments, plus the live records of a :class:`PredictionLog`
passed in); known ones are stored in ``feedback`` with the prediction's deployment,
unknown ones are reported back and not stored.
"""

from __future__ import annotations

import bisect
import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from loopml.core import NotFoundError, ValidationError, now_ms
from loopml.governance import StoreService, append_audit, require, resolve_identity
from loopml.serving._predlog import PredictionLog
from loopml.serving._predlog_record import table_from_bytes
from loopml.store import schema

__all__ = ["Feedback", "FeedbackLabel", "FeedbackResult", "read_feedback_file"]

ACTION = "feedback.write"
FILE_COLUMNS = ("prediction_id", "label")
_SEGS = schema.prediction_segments
_FEEDBACK = schema.feedback
_MAX_SOURCE = 128


@dataclass(frozen=True)
class FeedbackResult:
    """What :meth:`Feedback.record` did: how many labels were stored, which ids were not
    found in the prediction log (in the order given, each once)."""

    accepted: int
    unknown: list[str]


@dataclass(frozen=True)
class FeedbackLabel:
    """One stored label (``id``: its row in the store, growing with each label stored)."""

    prediction_id: str
    deployment: str
    label: Any
    source: str
    ts_ms: int
    id: int = 0


def _check_items(items: Iterable[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """``(prediction_id, label as JSON text)`` per item; a ValidationError names the item."""
    checked: list[tuple[str, str]] = []
    for index, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise ValidationError(
                f"feedback item {index} must be an object with prediction_id and label"
            )
        pid = item.get("prediction_id")
        if not isinstance(pid, str) or not pid or len(pid) > 64:
            raise ValidationError(
                f"feedback item {index}: prediction_id must be a string of 1-64 characters"
            )
        if "label" not in item or item["label"] is None:
            raise ValidationError(f"feedback item {index} ({pid}): label is missing")
        try:
            label = json.dumps(item["label"], allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValidationError(
                f"feedback item {index} ({pid}): label is not JSON: {exc}"
            ) from None
        checked.append((pid, label))
    if not checked:
        raise ValidationError("no feedback items given")
    return checked


class Feedback(StoreService):
    """Labels for logged predictions in the store that ``settings`` names.

    Writing needs the ``feedback.write`` permission (contributor and up); each
    :meth:`record` call writes its labels and one audit entry in one transaction.
    """

    # -- writing -------------------------------------------------------------------

    def record(
        self,
        items: Iterable[Mapping[str, Any]],
        *,
        source: str = "api",
        log: PredictionLog | None = None,
    ) -> FeedbackResult:
        """Store ``[{"prediction_id": ..., "label": ...}, ...]``.

        Args:
            source: where the labels came from (``"api"``, ``"file:labels.csv"``, ...).
            log: a prediction log open in this process (the serving app's); its records
                not yet in a segment are found too. Without it only records already in
                segments are found (a log cuts segments every couple of seconds).

        Returns:
            The count stored and the ids not found (those are not stored).

        Raises:
            ValidationError: an item lacks a prediction id or a JSON label, or none given.
            PermissionDeniedError: the caller may not write feedback.
        """
        if not source or len(source) > _MAX_SOURCE:
            raise ValidationError(f"source must be 1-{_MAX_SOURCE} characters")
        checked = _check_items(items)
        identity = require(self.settings, self.store, ACTION)
        found = self._locate({pid for pid, _ in checked}, log)
        stamp = now_ms()
        rows = [
            {
                "prediction_id": pid,
                "deployment": found[pid],
                "label": label,
                "source": source,
                "ts_ms": stamp,
            }
            for pid, label in checked
            if pid in found
        ]
        unknown = list(dict.fromkeys(pid for pid, _ in checked if pid not in found))
        per_deployment = Counter(row["deployment"] for row in rows)

        def work(conn: sa.Connection) -> None:
            if rows:
                conn.execute(_FEEDBACK.insert(), rows)
            append_audit(
                conn,
                actor=identity.name,
                action=ACTION,
                target="feedback",
                after={
                    "accepted": len(rows),
                    "unknown": len(unknown),
                    "source": source,
                    "deployments": dict(sorted(per_deployment.items())),
                },
            )

        self.store.transact(work)
        return FeedbackResult(accepted=len(rows), unknown=unknown)

    def import_file(self, path: str | Path, *, source: str | None = None) -> FeedbackResult:
        """:meth:`record` the rows of a CSV, JSONL or Parquet file with columns
        ``prediction_id`` and ``label`` (others are ignored); ``source`` defaults to
        ``file:NAME``."""
        path = Path(path)
        items = read_feedback_file(path)
        return self.record(items, source=source or f"file:{path.name}"[:_MAX_SOURCE])

    def _locate(self, ids: set[str], log: PredictionLog | None) -> dict[str, str]:
        """``{prediction_id: deployment}`` for the ids the log knows."""
        # The live records in one pass, then the segments covering the rest, each read
        # once (asking the log id by id would read a segment per id).
        found = log.live_deployments(ids) if log is not None else {}
        wanted = sorted(ids - found.keys())
        if not wanted:
            return found
        query = sa.select(_SEGS.c.digest, _SEGS.c.first_id, _SEGS.c.last_id).where(
            _SEGS.c.first_id <= wanted[-1], _SEGS.c.last_id >= wanted[0]
        )
        with self.store.read() as conn:
            segments = list(conn.execute(query))
        for digest, first_id, last_id in segments:
            start = bisect.bisect_left(wanted, first_id)
            end = bisect.bisect_right(wanted, last_id)
            candidates = [pid for pid in wanted[start:end] if pid not in found]
            if not candidates:
                continue  # no id we look for falls in this segment's range
            table = table_from_bytes(self.artifacts.get_bytes(digest))
            hits = table.filter(pc.is_in(table["prediction_id"], pa.array(candidates)))
            for pid, deployment in zip(
                hits["prediction_id"].to_pylist(), hits["deployment"].to_pylist(), strict=True
            ):
                found[pid] = deployment
        return found

    # -- reading -------------------------------------------------------------------

    def labels(self, deployment: str, since_ms: int | None = None) -> list[FeedbackLabel]:
        """The labels stored for ``deployment`` (from ``since_ms`` on), oldest first.

        A prediction labelled twice has two entries; the later one is the correction.
        """
        resolve_identity(self.settings, self.store)  # with auth on, a valid token
        query = sa.select(_FEEDBACK).where(_FEEDBACK.c.deployment == deployment)
        if since_ms is not None:
            query = query.where(_FEEDBACK.c.ts_ms >= since_ms)
        query = query.order_by(_FEEDBACK.c.ts_ms, _FEEDBACK.c.id)
        with self.store.read() as conn:
            rows = list(conn.execute(query))
        return [
            FeedbackLabel(
                prediction_id=row.prediction_id,
                deployment=row.deployment,
                label=json.loads(row.label),
                source=row.source,
                ts_ms=row.ts_ms,
                id=row.id,
            )
            for row in rows
        ]

    def count_labels(self, deployment: str, since_ms: int, before_ms: int) -> tuple[int, int]:
        """How many labels ``deployment`` has stamped in ``[since_ms, before_ms)``, and the
        sum of their ids: a reader that kept the ids it read there can tell, without
        reading the labels again, whether any was stored there since."""
        resolve_identity(self.settings, self.store)
        query = sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(_FEEDBACK.c.id), 0)).where(
            _FEEDBACK.c.deployment == deployment,
            _FEEDBACK.c.ts_ms >= since_ms,
            _FEEDBACK.c.ts_ms < before_ms,
        )
        with self.store.read() as conn:
            count, total = conn.execute(query).one()
        return int(count), int(total)


def read_feedback_file(path: Path) -> list[dict[str, Any]]:
    """The ``{"prediction_id", "label"}`` items of a CSV, JSONL or Parquet file.

    Raises:
        NotFoundError: no such file.
        ValidationError: an unknown suffix, a malformed file, or a missing column (each
            message names the file, and the line or column at fault).
    """
    suffix = path.suffix.lower()
    if suffix not in {".jsonl", ".ndjson", ".csv", ".parquet", ".pq"}:
        raise ValidationError(f"{path}: feedback files are .csv, .jsonl or .parquet")
    if not path.is_file():
        raise NotFoundError(f"feedback file {path} does not exist")
    if suffix in {".jsonl", ".ndjson"}:
        return _read_jsonl(path)
    if suffix == ".csv":
        import pyarrow.csv as pacsv

        try:
            table = pacsv.read_csv(
                path,
                convert_options=pacsv.ConvertOptions(column_types={"prediction_id": pa.string()}),
            )
        except (pa.ArrowInvalid, OSError) as exc:
            raise ValidationError(f"{path}: not a readable CSV file: {exc}") from None
    else:
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except (pa.ArrowInvalid, OSError) as exc:
            raise ValidationError(f"{path}: not a readable Parquet file: {exc}") from None
    missing = [c for c in FILE_COLUMNS if c not in table.column_names]
    if missing:
        raise ValidationError(
            f"{path}: missing column {', '.join(missing)} (has: {', '.join(table.column_names)})"
        )
    ids = table["prediction_id"].cast(pa.string()).to_pylist()
    labels = table["label"].to_pylist()
    return [{"prediction_id": p, "label": lb} for p, lb in zip(ids, labels, strict=True)]


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:
                raise ValidationError(f"{path}:{number}: not valid JSON: {exc}") from None
            if not isinstance(row, dict):
                raise ValidationError(f"{path}:{number}: each line must be a JSON object")
            missing = [c for c in FILE_COLUMNS if c not in row]
            if missing:
                raise ValidationError(f"{path}:{number}: missing column {', '.join(missing)}")
            items.append({"prediction_id": row["prediction_id"], "label": row["label"]})
    return items
