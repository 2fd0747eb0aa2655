"""Tracing one prediction back: the record, its model version, the run, the data, the commit.

The prediction log gives the record (and the version it was routed to); the registry's
:func:`~loopml.registry.model_lineage` gives the chain from that version to its run,
pipeline run and dataset versions. This module adds what only a prediction knows: the
aliases and the deployment revision in force at the moment it was made.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from loopml.core import NotFoundError, Settings, ValidationError
from loopml.registry import AliasMove, ModelRegistry, ModelVersion, model_lineage
from loopml.serving._deployments import DeploymentRevision, Deployments
from loopml.serving._predlog_reader import PredictionReader
from loopml.serving._predlog_record import PredictionRecord

__all__ = [
    "PredictionLineage",
    "TracedDataset",
    "TracedRun",
    "TracedVersion",
    "trace_prediction",
]

_MAX_ID = 64


@dataclass(frozen=True)
class TracedVersion:
    """The registered version that made the prediction."""

    ref: str
    flavor: str
    artifact: str  # the model file's digest
    aliases_now: list[str]
    aliases_then: list[str]  # the aliases pointing at it when the prediction was made


@dataclass(frozen=True)
class TracedRun:
    """The tracking run that trained the version, and the code it ran."""

    id: str
    name: str
    experiment: str | None
    status: str
    params: dict[str, str]
    git_commit: str | None  # None when the run did not start in a git checkout
    git_dirty: bool | None  # uncommitted changes to tracked files at the start
    git_branch: str | None
    diff_digest: str | None  # of those changes, when dirty


@dataclass(frozen=True)
class TracedDataset:
    """A dataset version the run (or its pipeline) read."""

    ref: str
    digest: str
    rows: int | None
    source: dict[str, Any]
    split: dict[str, Any] | None  # the split the version learned on (its own dataset only)


@dataclass(frozen=True)
class PredictionLineage:
    """One prediction and everything it came from; see :func:`trace_prediction`."""

    prediction: PredictionRecord
    deployment_revision: int | None  # the deployment's revision in force at the time
    answered_by: str | None  # for a fallback: who answered (logged, else its revision's)
    model: TracedVersion
    run: TracedRun | None
    pipeline_run: dict[str, Any] | None  # id, pipeline, status, params, steps
    datasets: list[TracedDataset]
    code_version: str | None  # the git commit of the run, else of its pipeline run

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types, for ``--json`` and for scripts."""
        return dataclasses.asdict(self)


def _aliases_at(moves: list[AliasMove], version: int, ts_ms: int) -> list[str]:
    """The aliases pointing at ``version`` at ``ts_ms``, replaying ``moves`` (oldest
    first) up to that moment."""
    points: dict[str, int | None] = {}
    for move in moves:
        if move.ts_ms <= ts_ms:  # in insertion order, so a later move overrides
            points[move.alias] = move.to_version
    return sorted(alias for alias, at in points.items() if at == version)


def _revision_at(history: list[DeploymentRevision], ts_ms: int) -> DeploymentRevision | None:
    """The newest revision written at or before ``ts_ms`` (servers switch within about a
    second of a change, so a prediction right after one may still be the previous's)."""
    earlier = [rev for rev in history if rev.ts_ms <= ts_ms]
    return earlier[-1] if earlier else None


def _answered_by(record: PredictionRecord, revision: DeploymentRevision | None) -> str | None:
    """Who answered a fallback: as logged, or (records logged before loopml kept it) the
    fallback that revision named."""
    logged = record.output.get("answered_by") if isinstance(record.output, dict) else None
    if record.fallback and isinstance(logged, str):
        return logged
    if not record.fallback or revision is None or revision.spec.fallback is None:
        return None
    fallback = revision.spec.fallback
    return fallback.model if fallback.kind == "version" else "constant"


def _run(settings: Settings, chain_run: dict[str, Any]) -> TracedRun:
    """The run of the chain, with the git tags and experiment that the chain leaves out."""
    from loopml.tracking import Client

    client = Client(settings, create_store=False)
    try:
        run = client.get_run(chain_run["id"])
        names = {e.id: e.name for e, _, _ in client.list_experiments()}
    finally:
        client.close()
    dirty = run.tags.get("loopml.git.dirty")
    return TracedRun(
        id=run.id,
        name=run.name,
        experiment=names.get(run.experiment_id),
        status=chain_run["status"],
        params=dict(chain_run["params"]),
        git_commit=run.tags.get("loopml.git.commit"),
        git_dirty=None if dirty is None else dirty == "true",
        git_branch=run.tags.get("loopml.git.branch"),
        diff_digest=run.tags.get("loopml.git.diff_digest"),
    )


def _version(registry: ModelRegistry, record: PredictionRecord) -> ModelVersion:
    try:
        return registry.get(record.model_version)
    except NotFoundError as exc:
        raise NotFoundError(
            f"prediction {record.prediction_id} names model version {record.model_version}, "
            f"which the registry does not hold ({exc})"
        ) from exc


def trace_prediction(settings: Settings, prediction_id: str) -> PredictionLineage:
    """Prediction -> model version -> run -> (pipeline run) -> dataset versions -> commit.

    The record is found by id in the prediction log's segments or in a journal on this
    machine (a prediction made a moment ago, not yet in a segment, is found too).

    Raises:
        ValidationError: ``prediction_id`` is not a string of 1-64 characters.
        NotFoundError: no prediction has that id, or its model version is gone.
    """
    if not isinstance(prediction_id, str) or not 0 < len(prediction_id.strip()) <= _MAX_ID:
        raise ValidationError(f"a prediction id is a string of 1-{_MAX_ID} characters")
    prediction_id = prediction_id.strip()
    with PredictionReader(settings, create_store=False) as reader:
        record = reader.find(prediction_id)
    if record is None:
        raise NotFoundError(
            f"no prediction {prediction_id!r} in the prediction log "
            f"(database {settings.db_url}, journals in {settings.home / 'predlog'})"
        )
    with ModelRegistry(settings, create_store=False) as registry:
        version = _version(registry, record)
        moves = registry.alias_history(version.model)
        chain = model_lineage(settings, version)
    with Deployments(settings, create_store=False) as deployments:
        try:
            history = deployments.history(record.deployment)
        except NotFoundError:  # logged without a deployment record (a script's own log)
            history = []
    revision = _revision_at(history, record.ts_ms)
    run = _run(settings, chain["run"]) if chain["run"] else None
    datasets = [
        TracedDataset(
            ref=data["ref"],
            digest=data["digest"],
            rows=data["rows"],
            source=data["source"],
            split=version.split if data["ref"] == version.dataset else None,
        )
        for data in chain["datasets"]
    ]
    return PredictionLineage(
        prediction=record,
        deployment_revision=None if revision is None else revision.revision,
        answered_by=_answered_by(record, revision),
        model=TracedVersion(
            ref=version.ref,
            flavor=version.flavor,
            artifact=version.artifact,
            aliases_now=list(version.aliases),
            aliases_then=_aliases_at(moves, version.version, record.ts_ms),
        ),
        run=run,
        pipeline_run=chain["pipeline_run"],
        datasets=datasets,
        code_version=(run.git_commit if run else None) or chain["code_version"],
    )
