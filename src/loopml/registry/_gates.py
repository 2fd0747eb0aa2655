"""Gates: what a version must pass before it may become champion, with evidence.

A gate is a dict (from Python, TOML or YAML) with a ``kind``:

- ``metric``: a recorded metric against an absolute bound:
  ``{kind = "metric", metric = "test.roc_auc", min = 0.8}`` (or ``max``).
- ``relative``: the candidate against the current champion on the same held-out rows
  (the test part of the candidate's split): ``{kind = "relative", metric = "roc_auc",
  max_drop = 0.01}`` (or ``min_gain``; for errors like ``rmse`` lower is better).
- ``latency``: single-row predict latency on a sample: ``{kind = "latency",
  max_ms = 20, rows = 200, percentile = 95}``.
- ``validation``: the training dataset version passed its validation (and was not forced).
- ``custom``: ``{kind = "custom", check = "module:function"}``; the function gets
  ``(model, version, frame)`` and returns a bool or ``(passed, value, message)``.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from loopml.core import ValidationError, now_ms
from loopml.registry._entities import GateOutcome, GateReport, ModelVersion

__all__ = ["GATE_KINDS", "evaluate", "load_gates_file", "parse_gates"]

GATE_KINDS = ("metric", "relative", "latency", "validation", "custom")
_LOWER_IS_BETTER = {"mae", "rmse", "mape", "log_loss"}
_ALLOWED = {
    "metric": {"metric", "min", "max"},
    "relative": {"metric", "max_drop", "min_gain"},
    "latency": {"max_ms", "rows", "percentile"},
    "validation": set(),
    "custom": {"check"},
}


def parse_gates(gates: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Checked gate specs, each with a ``name`` (default: its kind and metric)."""
    parsed = []
    for index, raw in enumerate(gates):
        if not isinstance(raw, Mapping):
            raise ValidationError(f"gate {index + 1} must be a table/dict; got {raw!r}")
        gate = dict(raw)
        kind = gate.get("kind")
        if kind not in GATE_KINDS:
            raise ValidationError(
                f"gate {index + 1}: kind must be one of {', '.join(GATE_KINDS)}; got {kind!r}"
            )
        unknown = set(gate) - _ALLOWED[kind] - {"kind", "name"}
        if unknown:
            raise ValidationError(
                f"gate {index + 1} ({kind}): unknown field(s) {', '.join(sorted(unknown))}; "
                f"expected {', '.join(sorted(_ALLOWED[kind])) or 'none'}"
            )
        if kind in ("metric", "relative") and not isinstance(gate.get("metric"), str):
            raise ValidationError(f'gate {index + 1} ({kind}) needs metric = "<name>"')
        bounds = {
            "metric": ("min", "max"),
            "relative": ("max_drop", "min_gain"),
            "latency": ("max_ms",),
        }.get(kind, ())
        for field in ("min", "max", "max_drop", "min_gain", "max_ms", "rows", "percentile"):
            value = gate.get(field)
            if field in gate and (isinstance(value, bool) or not isinstance(value, int | float)):
                raise ValidationError(f"gate {index + 1} ({kind}): {field} must be a number")
        if "percentile" in gate and not 0 < gate["percentile"] <= 100:
            raise ValidationError(f"gate {index + 1} (latency): percentile must be in (0, 100]")
        if "rows" in gate and gate["rows"] < 1:
            raise ValidationError(f"gate {index + 1} (latency): rows must be at least 1")
        if "name" in gate and not isinstance(gate["name"], str):
            raise ValidationError(f"gate {index + 1}: name must be a string")
        if bounds and not any(isinstance(gate.get(b), int | float) for b in bounds):
            raise ValidationError(
                f"gate {index + 1} ({kind}) needs a number for {' or '.join(bounds)}"
            )
        module, _, function = str(gate.get("check", "")).partition(":")
        if kind == "custom" and not (module and function):
            raise ValidationError(f'gate {index + 1} (custom) needs check = "module:function"')
        gate.setdefault("name", f"{kind}:{gate['metric']}" if "metric" in gate else kind)
        parsed.append(gate)
    return parsed


def load_gates_file(path: str | Path) -> list[dict[str, Any]]:
    """Gates from a TOML (``[[gates]]``) or YAML (``gates:`` list) file."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValidationError(f"cannot read gates file {file}: {exc.strerror}") from None
    try:
        if file.suffix == ".toml":
            import tomllib

            document: Any = tomllib.loads(text)
        else:
            import yaml

            document = yaml.safe_load(text)
    except Exception as exc:
        raise ValidationError(f"gates file {file} does not parse: {exc}") from None
    gates = document.get("gates") if isinstance(document, dict) else None
    if not isinstance(gates, list):
        raise ValidationError(f"gates file {file} must hold a list named 'gates'")
    return parse_gates(gates)


def _held_out(settings: Any, version: ModelVersion) -> tuple[Any, Any]:
    """The test part of the version's split: features and target."""
    from loopml.data import DataCatalog

    features = version.extra.get("features") or []
    target = version.extra.get("target")
    if not version.dataset or not target:
        raise ValidationError(f"{version.ref} records no dataset and target to evaluate on")
    with DataCatalog(settings, create_store=False) as catalog:
        frame = catalog.load(version.dataset)
        if version.split and "spec" in version.split:  # a split made on the fly, not stored
            from loopml.data import SplitSpec, split_indices

            parts = split_indices(frame, SplitSpec.from_dict(version.split["spec"]))
        elif version.split:
            parts = catalog.get_split(version.dataset, version.split["name"])
        else:
            parts = None
        if parts is not None:
            held_out: Any = next((parts[p] for p in ("test", "validation") if p in parts), [])
            frame = frame.iloc[list(held_out)]
    if frame.empty:
        raise ValidationError(f"{version.ref}: its split has no test rows to evaluate on")
    return frame[features], frame[target]


def _score(model: Any, task: str | None, metric: str, x: Any, y: Any) -> float:
    from loopml.training import classification_metrics, regression_metrics

    if task == "regression":
        scores = regression_metrics(y, model.predict(x))
    else:
        proba = model.predict_proba(x) if hasattr(model, "predict_proba") else None
        classes = list(getattr(model, "classes_", [])) or None
        scores = classification_metrics(y, model.predict(x), proba, classes=classes)
    name = metric.split(".")[-1]
    if name not in scores:
        raise ValidationError(f"metric {name!r} is not computed for {task}; have {sorted(scores)}")
    return float(scores[name])


def _metric(gate: dict[str, Any], version: ModelVersion) -> GateOutcome:
    name, metric = gate["name"], gate["metric"]
    if metric in version.metrics and version.metrics[metric] is None:
        return GateOutcome(
            name,
            "metric",
            False,
            None,
            None,
            f"{metric} is undefined (NaN) for {version.ref}, e.g. one class only in the test part",
        )
    value = version.metrics.get(metric)
    if value is None:
        return GateOutcome(
            name, "metric", False, None, None, f"{metric} was not recorded for {version.ref}"
        )
    if "min" in gate and value < gate["min"]:
        return GateOutcome(
            name,
            "metric",
            False,
            value,
            gate["min"],
            f"{metric} = {value:.4g} < min {gate['min']} (short by {gate['min'] - value:.4g})",
        )
    if "max" in gate and value > gate["max"]:
        return GateOutcome(
            name,
            "metric",
            False,
            value,
            gate["max"],
            f"{metric} = {value:.4g} > max {gate['max']} (over by {value - gate['max']:.4g})",
        )
    bound = gate.get("min", gate.get("max"))
    return GateOutcome(name, "metric", True, value, bound, f"{metric} = {value:.4g} within bounds")


def _relative(
    gate: dict[str, Any], version: ModelVersion, registry: Any, model: Any
) -> GateOutcome:
    name, metric = gate["name"], gate["metric"]
    model_entry = registry.get_model(version.model)
    champion_number = model_entry.aliases.get("champion")
    if champion_number is None or champion_number == version.version:
        return GateOutcome(name, "relative", True, None, None, "no other champion to compare with")
    x, y = _held_out(registry.settings, version)
    task = version.extra.get("task")
    mine = _score(model, task, metric, x, y)
    theirs = _score(registry.load(f"{version.model}@{champion_number}"), task, metric, x, y)
    gain = (theirs - mine) if metric.split(".")[-1] in _LOWER_IS_BETTER else (mine - theirs)
    evidence = {
        "candidate": mine,
        "champion": theirs,
        "champion_version": champion_number,
        "rows": len(y),
    }
    if "min_gain" in gate:
        passed, bound = gain >= gate["min_gain"], gate["min_gain"]
        verdict = f"gain {gain:+.4g} vs champion @{champion_number} (needs >= {bound})"
    else:
        passed, bound = gain >= -gate["max_drop"], gate["max_drop"]
        verdict = f"change {gain:+.4g} vs champion @{champion_number} (may drop at most {bound})"
    message = f"{metric}: candidate {mine:.4g}, champion {theirs:.4g}; {verdict}"
    return GateOutcome(name, "relative", bool(passed), gain, bound, message, evidence)


def _latency(gate: dict[str, Any], version: ModelVersion, registry: Any, model: Any) -> GateOutcome:
    x, _ = _held_out(registry.settings, version)
    rows = min(int(gate.get("rows", 100)), len(x))
    timings = []
    for i in range(rows):
        start = time.perf_counter()
        model.predict(x.iloc[i : i + 1])
        timings.append((time.perf_counter() - start) * 1000)
    percentile = float(gate.get("percentile", 95))
    value = float(np.percentile(timings, percentile))
    passed = value <= gate["max_ms"]
    word = "within" if passed else "over"
    message = (
        f"p{percentile:g} single-row predict {value:.3g} ms {word} {gate['max_ms']} ms "
        f"({rows} rows)"
    )
    return GateOutcome(
        gate["name"],
        "latency",
        passed,
        value,
        gate["max_ms"],
        message,
        {"rows": rows, "mean_ms": float(np.mean(timings))},
    )


def _validation(gate: dict[str, Any], version: ModelVersion, registry: Any) -> GateOutcome:
    from loopml.data import DataCatalog

    if not version.dataset:
        return GateOutcome(
            gate["name"],
            "validation",
            False,
            None,
            None,
            f"{version.ref} records no training dataset version",
        )
    with DataCatalog(registry.settings, create_store=False) as catalog:
        data = catalog.get(version.dataset)
        report = catalog.validation_report(version.dataset)
    if data.forced:
        return GateOutcome(
            gate["name"],
            "validation",
            False,
            None,
            None,
            f"{data.ref} was ingested with --force past failed checks",
        )
    if report is not None and not report.passed:
        return GateOutcome(
            gate["name"], "validation", False, None, None, f"{data.ref} failed validation"
        )
    checked = "passed its checks" if report is not None else "has no declared checks"
    return GateOutcome(gate["name"], "validation", True, None, None, f"{data.ref} {checked}")


def _custom(gate: dict[str, Any], version: ModelVersion, registry: Any, model: Any) -> GateOutcome:
    module, _, attr = gate["check"].partition(":")
    check = getattr(importlib.import_module(module), attr)
    try:
        frame = _held_out(registry.settings, version)[0]
    except ValidationError:
        frame = None
    result = check(model, version, frame)
    passed, value, message = result if isinstance(result, tuple) else (bool(result), None, "")
    return GateOutcome(
        gate["name"],
        "custom",
        bool(passed),
        value,
        None,
        message or f"{gate['check']} returned {bool(passed)}",
    )


def evaluate(registry: Any, version: ModelVersion, gates: list[dict[str, Any]]) -> GateReport:
    """Run every gate on ``version``; a gate that errors fails with the error as message."""
    model = registry.load(version.ref)
    outcomes = []
    for gate in gates:
        kind = gate["kind"]
        try:
            if kind == "metric":
                outcome = _metric(gate, version)
            elif kind == "relative":
                outcome = _relative(gate, version, registry, model)
            elif kind == "latency":
                outcome = _latency(gate, version, registry, model)
            elif kind == "validation":
                outcome = _validation(gate, version, registry)
            else:
                outcome = _custom(gate, version, registry, model)
        except Exception as exc:
            outcome = GateOutcome(
                gate["name"], kind, False, None, None, f"could not evaluate: {exc}"
            )
        outcomes.append(outcome)
    passed = all(o.passed for o in outcomes)
    return GateReport(version.ref, passed, outcomes, registry.identity.name, now_ms())
