"""The metadata schema: every table loopml keeps in its database, as SQLAlchemy Core.

One schema and one migration history for the whole database: the tables belong
to the store, the domain layers (tracking, registry, ...) query them. Changing a
table here needs a new Alembic revision in ``migrations/versions``.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

__all__ = [
    "alert_transitions",
    "alerts",
    "alias_moves",
    "api_tokens",
    "approvals",
    "audit_log",
    "dataset_splits",
    "dataset_versions",
    "datasets",
    "deployment_revisions",
    "deployments",
    "events",
    "experiments",
    "feedback",
    "gate_results",
    "latest_metrics",
    "loop_decisions",
    "loop_lease",
    "loop_state",
    "metadata",
    "metrics",
    "model_aliases",
    "model_versions",
    "monitor_reports",
    "monitor_segments",
    "monitor_states",
    "monitor_windows",
    "params",
    "pipeline_runs",
    "prediction_segments",
    "registered_models",
    "run_artifacts",
    "runs",
    "schedule_fires",
    "schedules",
    "step_runs",
    "tags",
    "users",
    "validation_attempts",
]

metadata = MetaData()

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL wants BIGINT.
_AutoId = BigInteger().with_variant(Integer(), "sqlite")

experiments = Table(
    "experiments",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(256), nullable=False, unique=True),
    Column("created_ms", BigInteger, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("experiment_id", String(32), ForeignKey("experiments.id"), nullable=False),
    Column("name", String(256), nullable=False),
    Column("status", String(16), nullable=False),
    Column("start_ms", BigInteger, nullable=False),
    Column("end_ms", BigInteger, nullable=True),
    Column("parent_id", String(32), ForeignKey("runs.id"), nullable=True),
    # JSON of the ended run's params, latest metrics and tags, written once when it ends,
    # so a search page reads one row per run instead of dozens (NULL while running).
    Column("summary", Text, nullable=True),
    Index("ix_runs_experiment_start", "experiment_id", "start_ms"),
    Index("ix_runs_parent", "parent_id"),
)

params = Table(
    "params",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)

tags = Table(
    "tags",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)

# A metric value of NULL stands for NaN, which SQLite cannot store.
metrics = Table(
    "metrics",
    metadata,
    Column("id", _AutoId, primary_key=True, autoincrement=True),
    Column("run_id", String(32), ForeignKey("runs.id"), nullable=False),
    Column("key", String(250), nullable=False),
    Column("value", Float, nullable=True),
    Column("step", BigInteger, nullable=False),
    Column("timestamp_ms", BigInteger, nullable=False),
    Index("ix_metrics_run_key_step", "run_id", "key", "step"),
)

# The latest value of each metric of each run, kept on write so that searching
# and ordering runs by a metric is one indexed join instead of a scan of history.
latest_metrics = Table(
    "latest_metrics",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Float, nullable=True),
    Column("step", BigInteger, nullable=False),
    Column("timestamp_ms", BigInteger, nullable=False),
    Index("ix_latest_metrics_key_value", "key", "value"),
)

run_artifacts = Table(
    "run_artifacts",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id"), primary_key=True),
    Column("path", String(1024), primary_key=True),
    Column("digest", String(80), nullable=False),
    Column("size", BigInteger, nullable=False),
)

datasets = Table(
    "datasets",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(256), nullable=False, unique=True),
    Column("created_ms", BigInteger, nullable=False),
)

# Immutable once written. ``digest`` names the content (canonical table data, or the
# manifest of a file set); ``snapshot`` is the artifact holding it.
dataset_versions = Table(
    "dataset_versions",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("dataset_id", String(32), ForeignKey("datasets.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("digest", String(80), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("snapshot", String(80), nullable=False),
    Column("row_count", BigInteger, nullable=True),
    Column("file_count", BigInteger, nullable=False),
    Column("bytes", BigInteger, nullable=False),
    Column("schema", Text, nullable=True),
    Column("source", Text, nullable=False),
    Column("lineage", Text, nullable=False),
    Column("profile", Text, nullable=True),
    Column("validation", Text, nullable=True),
    Column("forced", Integer, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    UniqueConstraint("dataset_id", "version", name="uq_dataset_versions_number"),
    UniqueConstraint("dataset_id", "digest", name="uq_dataset_versions_digest"),
)

# Every validation of an ingest, kept whether or not it created a version.
validation_attempts = Table(
    "validation_attempts",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("dataset_name", String(256), nullable=False),
    Column("version_id", String(32), ForeignKey("dataset_versions.id"), nullable=True),
    Column("source", Text, nullable=False),
    Column("passed", Integer, nullable=False),
    Column("forced", Integer, nullable=False),
    Column("report", Text, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Index("ix_validation_attempts_name", "dataset_name", "created_ms"),
)

dataset_splits = Table(
    "dataset_splits",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("version_id", String(32), ForeignKey("dataset_versions.id"), nullable=False),
    Column("name", String(256), nullable=False),
    Column("spec", Text, nullable=False),
    Column("fingerprint", String(80), nullable=False),
    Column("counts", Text, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    UniqueConstraint("version_id", "name", name="uq_dataset_splits_name"),
)

# One row per pipeline run. ``ref`` ("module:attr" or "path.py:attr") is how the
# pipeline is loaded again to resume it or to run it from a schedule.
pipeline_runs = Table(
    "pipeline_runs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("pipeline", String(256), nullable=False),
    Column("ref", Text, nullable=True),
    Column("status", String(16), nullable=False),
    Column("params", Text, nullable=False),
    Column("executor", String(16), nullable=False),
    Column("cache", Integer, nullable=False),
    Column("tracking_run_id", String(32), nullable=True),
    Column("code_version", String(64), nullable=True),
    Column("resumed_from", String(32), nullable=True),
    Column("started_by", String(256), nullable=False),
    Column("error", Text, nullable=True),
    Column("start_ms", BigInteger, nullable=False),
    Column("end_ms", BigInteger, nullable=True),
    Index("ix_pipeline_runs_pipeline", "pipeline", "start_ms"),
)

# One row per step of a pipeline run. ``inputs``/``outputs``/``datasets`` are JSON
# maps to artifact digests and dataset versions; ``cached_from`` names the step run
# whose outputs were reused.
step_runs = Table(
    "step_runs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("pipeline_run_id", String(32), ForeignKey("pipeline_runs.id"), nullable=False),
    Column("name", String(256), nullable=False),
    Column("position", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("cache_key", String(80), nullable=True),
    Column("cached_from", String(32), nullable=True),
    Column("attempts", Integer, nullable=False),
    Column("inputs", Text, nullable=False),
    Column("outputs", Text, nullable=True),
    Column("datasets", Text, nullable=False),
    Column("logs", String(80), nullable=True),
    Column("tracking_run_id", String(32), nullable=True),
    Column("error", Text, nullable=True),
    Column("start_ms", BigInteger, nullable=True),
    Column("end_ms", BigInteger, nullable=True),
    UniqueConstraint("pipeline_run_id", "name", name="uq_step_runs_name"),
    Index("ix_step_runs_cache", "cache_key", "status"),
)

# Cron schedules and triggers (a new dataset version, a named event), stored as data.
# ``kind`` is "cron", "dataset" or "event"; ``spec`` is the cron expression, the
# dataset name or the event name.
schedules = Table(
    "schedules",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(256), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),
    Column("spec", String(256), nullable=False),
    Column("pipeline_ref", Text, nullable=False),
    Column("params", Text, nullable=False),
    Column("executor", String(16), nullable=False),
    Column("enabled", Integer, nullable=False),
    Column("cursor", BigInteger, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
)

# A slot fired by a schedule. The primary key is the lock that makes a slot fire
# once, however many schedulers race for it.
schedule_fires = Table(
    "schedule_fires",
    metadata,
    Column("schedule_id", String(32), ForeignKey("schedules.id"), primary_key=True),
    Column("slot", String(64), primary_key=True),
    Column("scheduler", String(256), nullable=False),
    Column("pipeline_run_id", String(32), nullable=True),
    Column("status", String(16), nullable=False),
    Column("error", Text, nullable=True),
    Column("created_ms", BigInteger, nullable=False),
)

# Named events (a drift alert, a manual nudge) that event triggers react to.
events = Table(
    "events",
    metadata,
    Column("id", _AutoId, primary_key=True, autoincrement=True),
    Column("name", String(256), nullable=False),
    Column("payload", Text, nullable=False),
    Column("source", String(256), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Index("ix_events_name", "name", "id"),
)

# -- governance: identities, tokens, the audit chain ------------------------------

users = Table(
    "users",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("disabled", Integer, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("created_by", String(128), nullable=False),
)

# Only a digest of each token is kept; ``prefix`` lets people tell tokens apart.
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("user_id", String(32), ForeignKey("users.id"), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    Column("name", String(128), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("expires_ms", BigInteger, nullable=True),
    Column("revoked_ms", BigInteger, nullable=True),
)

# Append-only. Each row's ``hash`` covers its content and the previous row's hash,
# so editing, inserting or deleting a row breaks the chain from there on.
audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("ts_ms", BigInteger, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target", String(512), nullable=False),
    Column("before", Text, nullable=True),
    Column("after", Text, nullable=True),
    Column("reason", Text, nullable=True),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)

# -- registry: models, versions, aliases, gates, approvals -----------------------

registered_models = Table(
    "registered_models",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(256), nullable=False, unique=True),
    Column("description", Text, nullable=False),
    Column("requires_approval", Integer, nullable=False),
    Column("gates", Text, nullable=False),
    Column("card", Text, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("created_by", String(128), nullable=False),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("model_id", String(32), ForeignKey("registered_models.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("run_id", String(32), nullable=True),
    Column("pipeline_run_id", String(32), nullable=True),
    Column("flavor", String(32), nullable=False),
    Column("artifact", String(80), nullable=False),
    Column("signature", Text, nullable=False),
    Column("libraries", Text, nullable=False),
    Column("dataset", String(300), nullable=True),
    Column("split", Text, nullable=True),
    Column("profile", String(80), nullable=True),
    Column("metrics", Text, nullable=False),
    Column("extra", Text, nullable=False),
    Column("code_version", String(64), nullable=True),
    Column("description", Text, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("created_by", String(128), nullable=False),
    UniqueConstraint("model_id", "version", name="uq_model_versions_number"),
)

model_aliases = Table(
    "model_aliases",
    metadata,
    Column("model_id", String(32), ForeignKey("registered_models.id"), primary_key=True),
    Column("alias", String(64), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
    Column("updated_by", String(128), nullable=False),
)

alias_moves = Table(
    "alias_moves",
    metadata,
    Column("id", _AutoId, primary_key=True, autoincrement=True),
    Column("model_id", String(32), ForeignKey("registered_models.id"), nullable=False),
    Column("alias", String(64), nullable=False),
    Column("from_version", Integer, nullable=True),
    Column("to_version", Integer, nullable=True),
    Column("actor", String(128), nullable=False),
    Column("reason", Text, nullable=True),
    Column("ts_ms", BigInteger, nullable=False),
    Index("ix_alias_moves_model", "model_id", "alias", "id"),
)

# Ordered by ``id`` (insertion order), never by a client's clock. ``gates_digest`` ties a
# result to the gate list it was evaluated against, so a later change of gates voids it.
gate_results = Table(
    "gate_results",
    metadata,
    Column("id", _AutoId, primary_key=True, autoincrement=True),
    Column("version_id", String(32), ForeignKey("model_versions.id"), nullable=False),
    Column("passed", Integer, nullable=False),
    Column("gates_digest", String(80), nullable=False),
    Column("results", Text, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("ts_ms", BigInteger, nullable=False),
    Index("ix_gate_results_version", "version_id", "ts_ms"),
)

approvals = Table(
    "approvals",
    metadata,
    Column("id", _AutoId, primary_key=True, autoincrement=True),
    Column("version_id", String(32), ForeignKey("model_versions.id"), nullable=False),
    Column("decision", String(16), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("comment", Text, nullable=False),
    Column("ts_ms", BigInteger, nullable=False),
    Index("ix_approvals_version", "version_id", "ts_ms"),
)

# -- serving: deployments as data, their revisions, feedback ---------------------

# ``spec`` is the whole routing: model versions, weights, sticky key, shadow, fallback.
# Servers poll ``revision`` and switch when it moves.
deployments = Table(
    "deployments",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("strategy", String(16), nullable=False),
    Column("spec", Text, nullable=False),
    Column("revision", Integer, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
    Column("updated_by", String(128), nullable=False),
)

# Every state a deployment has been in; a rollback writes an older spec as a new revision.
deployment_revisions = Table(
    "deployment_revisions",
    metadata,
    Column("id", _AutoId, primary_key=True, autoincrement=True),
    Column("deployment_id", String(32), ForeignKey("deployments.id"), nullable=False),
    Column("revision", Integer, nullable=False),
    Column("strategy", String(16), nullable=False),
    Column("spec", Text, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("reason", Text, nullable=True),
    Column("ts_ms", BigInteger, nullable=False),
    UniqueConstraint("deployment_id", "revision", name="uq_deployment_revisions_number"),
)

# Labels that arrive after the prediction (for monitoring's accuracy).
feedback = Table(
    "feedback",
    metadata,
    Column("id", _AutoId, primary_key=True, autoincrement=True),
    Column("prediction_id", String(64), nullable=False),
    Column("deployment", String(128), nullable=False),
    Column("label", Text, nullable=False),
    Column("source", String(128), nullable=False),
    Column("ts_ms", BigInteger, nullable=False),
    Index("ix_feedback_prediction", "prediction_id"),
    Index("ix_feedback_deployment", "deployment", "ts_ms"),
)

# The prediction log's index: one row per segment (an Arrow IPC blob of one deployment's
# records). Ids are time-ordered hex, so ``first_id``/``last_id`` bound a lookup by id.
# The digest is the key: recovering a journal twice records its segments once.
prediction_segments = Table(
    "prediction_segments",
    metadata,
    Column("digest", String(80), primary_key=True),
    Column("deployment", String(128), nullable=False),
    Column("first_ts_ms", BigInteger, nullable=False),
    Column("last_ts_ms", BigInteger, nullable=False),
    Column("first_id", String(64), nullable=False),
    Column("last_id", String(64), nullable=False),
    Column("rows", BigInteger, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Index("ix_prediction_segments_deployment", "deployment", "last_ts_ms"),
    Index("ix_prediction_segments_ids", "first_id", "last_id"),
)

# -- monitoring: alerts ------------------------------------------------------------

# One row per alert: a rule's condition held for one labelled series (its fingerprint).
# ``active_key`` is the fingerprint while the alert is pending or firing and NULL once it
# is resolved: the unique constraint keeps one open alert per rule and series, however
# many monitoring passes run at once (NULLs never collide).
alerts = Table(
    "alerts",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("rule", String(64), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("active_key", String(64), nullable=True, unique=True),
    Column("metric", String(128), nullable=False),
    Column("labels", Text, nullable=False),
    Column("deployment", String(128), nullable=True),
    Column("severity", String(16), nullable=False),
    Column("comparison", String(2), nullable=False),
    Column("threshold", Float, nullable=False),
    Column("value", Float, nullable=True),
    Column("state", String(16), nullable=False),
    Column("started_ms", BigInteger, nullable=False),
    Column("fired_ms", BigInteger, nullable=True),
    Column("resolved_ms", BigInteger, nullable=True),
    Column("updated_ms", BigInteger, nullable=False),
    Column("acked_by", String(128), nullable=True),
    Column("acked_ms", BigInteger, nullable=True),
    # the last state a webhook received, so an undelivered one is sent again next pass
    Column("notified_state", String(16), nullable=True),
    Index("ix_alerts_state", "state", "updated_ms"),
    Index("ix_alerts_deployment", "deployment", "started_ms"),
)

# Every change of an alert, in order: pending, firing, resolved, acknowledged, and each
# webhook delivery or failure, with the sample value and who or what made it.
alert_transitions = Table(
    "alert_transitions",
    metadata,
    Column("id", _AutoId, primary_key=True, autoincrement=True),
    Column("alert_id", String(32), ForeignKey("alerts.id"), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("value", Float, nullable=True),
    Column("detail", Text, nullable=True),
    Column("actor", String(128), nullable=False),
    Column("ts_ms", BigInteger, nullable=False),
    Index("ix_alert_transitions_alert", "alert_id", "id"),
)

# Monitoring (0007): one state per deployment and window spec ("1h", "10000rows") with its
# watermark; the log segments it has read (each with the monitor's compact join index of
# that segment, a blob, for late labels); one row per window with its mergeable counts; the
# stored reports. ``version`` guards a pass against a concurrent one (optimistic locking).
monitor_states = Table(
    "monitor_states",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("deployment", String(128), nullable=False),
    Column("window_spec", String(32), nullable=False),
    Column("rows", BigInteger, nullable=False),
    Column("segments", BigInteger, nullable=False),
    Column("last_ts_ms", BigInteger, nullable=True),
    Column("labels_ms", BigInteger, nullable=True),
    Column("prediction_refs", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
    UniqueConstraint("deployment", "window_spec", name="uq_monitor_states_window"),
)

monitor_segments = Table(
    "monitor_segments",
    metadata,
    Column("state_id", String(32), ForeignKey("monitor_states.id"), primary_key=True),
    Column("digest", String(80), primary_key=True),
    Column("first_id", String(64), nullable=False),
    Column("last_id", String(64), nullable=False),
    Column("rows", BigInteger, nullable=False),
    Column("index_digest", String(80), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Index("ix_monitor_segments_ids", "state_id", "first_id", "last_id"),
)

monitor_windows = Table(
    "monitor_windows",
    metadata,
    Column("state_id", String(32), ForeignKey("monitor_states.id"), primary_key=True),
    Column("window_index", BigInteger, primary_key=True, autoincrement=False),
    Column("start_ms", BigInteger, nullable=False),
    Column("end_ms", BigInteger, nullable=False),
    Column("rows", BigInteger, nullable=False),
    Column("sketch", Text, nullable=False),
    Column("labels_digest", String(80), nullable=True),
    Column("performance", Text, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
)

monitor_reports = Table(
    "monitor_reports",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("deployment", String(128), nullable=False),
    Column("window_spec", String(32), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("report", Text, nullable=False),
    Index("ix_monitor_reports_deployment", "deployment", "created_ms"),
)

# -- loop: the controller's decisions, its per-deployment state, its leader lease ------

# Every decision the loop controller takes (retrain, canary, promote, rollback, reject,
# skip, error) with its evidence as JSON; ``ts_ms`` is the controller's clock (injectable),
# ``recorded_ms`` the wall clock.
loop_decisions = Table(
    "loop_decisions",
    metadata,
    Column("id", _AutoId, primary_key=True, autoincrement=True),
    Column("deployment", String(128), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("reason", Text, nullable=False),
    Column("candidate", String(160), nullable=True),
    Column("champion", String(160), nullable=True),
    Column("evidence", Text, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("ts_ms", BigInteger, nullable=False),
    Column("recorded_ms", BigInteger, nullable=False),
    Index("ix_loop_decisions_deployment", "deployment", "id"),
)

# Where each deployment's rollout stands (idle, retraining, evaluating, canary), so a
# controller that crashed mid-rollout resumes; ``frozen`` stops the loop for it.
loop_state = Table(
    "loop_state",
    metadata,
    Column("deployment", String(128), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("data", Text, nullable=False),
    Column("frozen", Integer, nullable=False),
    Column("freeze_reason", Text, nullable=True),
    Column("updated_ms", BigInteger, nullable=False),
)

# One row per lease name: the controller that may act until ``expires_ms`` (wall clock).
loop_lease = Table(
    "loop_lease",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("owner", String(160), nullable=False),
    Column("acquired_ms", BigInteger, nullable=False),
    Column("expires_ms", BigInteger, nullable=False),
)
