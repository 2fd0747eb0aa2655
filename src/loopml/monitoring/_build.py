"""Reports from stored windows: operations from the counts, data drift from each version's
sketch against its training profile, prediction drift against the version's reference
window, performance as the last label pass left it.

Prediction drift needs a reference for what a version's answers looked like: the
registry stores no predictions on training data, so the reference is the version's own
first complete window with at least :data:`MIN_REFERENCE_ROWS` model answers, frozen in
the state once chosen. Until one exists the version has no prediction drift, nor in a
window with fewer than :data:`MIN_CURRENT_ROWS` answers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from loopml.core import new_id, now_ms
from loopml.monitoring import _drift_link
from loopml.monitoring._drift_model import DriftThresholds
from loopml.monitoring._operations import LATENCY_QUANTILES
from loopml.monitoring._predictions import PredictionCounts, prediction_drift
from loopml.monitoring._report import MonitorReport, VersionWindow, WindowReport
from loopml.monitoring._state import MonitorState, newest_window, windows_of
from loopml.monitoring._versions import VersionCache
from loopml.monitoring._window_state import WindowState
from loopml.monitoring._windows import WindowSpec
from loopml.store import MetadataStore

if TYPE_CHECKING:
    from loopml.monitoring._monitor import PassStats

__all__ = ["MIN_REFERENCE_ROWS", "build_report", "choose_references"]

MIN_REFERENCE_ROWS = 100
# A window's predictions are compared with the reference from as many answers on, as
# its features are with the training data (DriftThresholds.min_current_rows).
MIN_CURRENT_ROWS = DriftThresholds().min_current_rows
_REFERENCE_SCAN = 200  # windows read at a time while looking for a version's reference
# ``state.prediction_refs[_SCAN + ref]``: the newest window already ruled out as ``ref``'s
# reference (model versions are ``name@N``, so the key never names one)
_SCAN = "scan:"


def _complete(window: WindowState, spec: WindowSpec, newest: int, now: int) -> bool:
    if spec.rows is not None:
        return window.rows >= spec.rows
    return window.index < newest or window.end_ms <= now


def choose_references(
    store: MetadataStore, state: MonitorState, spec: WindowSpec, refs: set[str]
) -> None:
    """Freeze a prediction-drift reference window for each version in ``refs`` lacking one."""
    now = now_ms()
    newest = newest_window(store, state.id)
    if newest is None:
        return
    for ref in sorted(refs - set(state.prediction_refs)):
        # windows before the cursor are complete and had too few answers: not again
        cursor = state.prediction_refs.get(_SCAN + ref)
        while ref not in state.prediction_refs:
            page = windows_of(store, state.id, containing=ref, after=cursor, first=_REFERENCE_SCAN)
            for window in page:
                complete = _complete(window, spec, newest, now)
                counts = window.versions[ref].predictions if ref in window.versions else None
                if counts is not None and counts.total >= MIN_REFERENCE_ROWS and complete:
                    state.prediction_refs[ref] = {
                        "window": window.index,
                        "counts": counts.to_dict(),
                    }
                    state.prediction_refs.pop(_SCAN + ref, None)
                    break
                if not complete:  # it may still qualify: scan from here next pass
                    break
                cursor = window.index
                state.prediction_refs[_SCAN + ref] = cursor
            else:
                if len(page) == _REFERENCE_SCAN:
                    continue  # a full page of windows that did not qualify: the next one
            break


def _version_window(
    ref: str, window: WindowState, versions: VersionCache, references: dict[str, Any]
) -> VersionWindow:
    sketch = window.versions[ref]
    ops = sketch.ops
    info = versions.get(ref)
    perf = window.performance.get(ref, {})
    labelled = int(perf.get("labelled", 0))
    answered = ops.rows - ops.errors  # the model's own answers
    drift = None
    if info.profile is not None and sketch.drift is not None and sketch.drift.rows:
        drift = _drift_link.compute(info.profile, sketch.drift)
    reference = references.get(ref)
    predicted = None
    if reference is not None and sketch.predictions.total >= MIN_CURRENT_ROWS:
        predicted = prediction_drift(
            PredictionCounts.from_dict(reference["counts"]), sketch.predictions
        )
    latency = {str(q): ops.quantile(q) for q in LATENCY_QUANTILES}
    return VersionWindow(
        model_version=ref,
        rows=ops.rows,
        shadow_rows=ops.shadow_rows,
        fallbacks=ops.fallbacks,
        errors=ops.errors,
        latency_ms={k: v for k, v in latency.items() if v is not None},
        error_rate=ops.error_rate,
        fallback_rate=ops.fallback_rate,
        labelled=labelled,
        label_coverage=labelled / answered if answered > 0 else None,
        performance=dict(perf.get("metrics", {})),
        data_drift=drift,
        prediction_drift=predicted,
        prediction_reference=None if reference is None else int(reference["window"]),
        invalid_inputs=dict(sketch.invalid),
    )


def build_report(
    store: MetadataStore,
    state: MonitorState,
    spec: WindowSpec,
    versions: VersionCache,
    history: int,
    stats: PassStats,
) -> MonitorReport:
    """The report of the ``history`` newest windows of ``state``."""
    now = now_ms()
    stored = windows_of(store, state.id, last=history)
    newest = stored[-1].index if stored else 0
    reports = []
    for window in stored:
        found = [
            _version_window(ref, window, versions, state.prediction_refs)
            for ref in sorted(window.versions)
        ]
        answering = [v for v in found if v.rows > v.shadow_rows]
        main = max(answering, key=lambda v: (v.rows - v.shadow_rows, v.model_version), default=None)
        reports.append(
            WindowReport(
                index=window.index,
                start_ms=window.start_ms,
                end_ms=window.end_ms,
                rows=window.rows,
                complete=_complete(window, spec, newest, now),
                versions=found,
                main_version=None if main is None else main.model_version,
            )
        )
    return MonitorReport(
        id=new_id(),
        deployment=state.deployment,
        window=spec.text,
        created_ms=now,
        windows=reports,
        rows_read=stats.rows_read,
        segments_read=stats.segments_read,
        labels_read=stats.labels_read,
        rows_total=state.rows,
    )
