"""What drift detection is configured with and what it returns: plain, JSON-able data.

:class:`DriftThresholds` holds the global thresholds, the method chosen per kind
of column and per-feature overrides (:class:`FeatureRule`); :class:`FeatureDrift`
is one feature's verdict with every statistic computed for it, and
:class:`DriftResult` the dataset's. Each has ``to_dict`` and ``from_dict``; the
dictionaries go through ``json.dumps`` as strict JSON (no NaN: a statistic that
could not be computed is ``None``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from loopml.core import ValidationError

__all__ = [
    "CATEGORICAL_METHODS",
    "METHODS",
    "NUMERIC_METHODS",
    "P_VALUE_METHODS",
    "DriftResult",
    "DriftThresholds",
    "FeatureDrift",
    "FeatureRule",
    "Method",
]

Method = Literal["auto", "psi", "ks", "wasserstein", "chisquare", "jensenshannon"]
METHODS: tuple[str, ...] = ("auto", "psi", "ks", "wasserstein", "chisquare", "jensenshannon")
NUMERIC_METHODS: tuple[str, ...] = ("auto", "psi", "ks", "wasserstein")
CATEGORICAL_METHODS: tuple[str, ...] = ("auto", "psi", "chisquare", "jensenshannon")
P_VALUE_METHODS: tuple[str, ...] = ("ks", "chisquare")
"""Methods whose score is a p-value: a feature drifted when it is *below* the threshold."""


def _check_method(value: Any, allowed: tuple[str, ...], what: str) -> None:
    if value not in allowed:
        raise ValidationError(f"{what} must be one of {list(allowed)} (got {value!r})")


def _check_threshold(method: str, value: Any, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValidationError(f"{what} must be a finite number (got {value!r})")
    if method in P_VALUE_METHODS and not 0 < value < 1:
        raise ValidationError(f"{what} is a p-value threshold, so within (0, 1) (got {value!r})")
    if value <= 0:
        raise ValidationError(f"{what} must be > 0 (got {value!r})")


@dataclass(frozen=True, slots=True)
class FeatureRule:
    """Overrides for one feature: its method, its threshold, or leaving it out."""

    method: Method | None = None
    threshold: float | None = None
    ignore: bool = False

    def __post_init__(self) -> None:
        if self.method is not None:
            _check_method(self.method, METHODS, "FeatureRule.method")
        if self.threshold is not None:
            _check_threshold(self.method or "", self.threshold, "FeatureRule.threshold")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dictionary."""
        return {"method": self.method, "threshold": self.threshold, "ignore": self.ignore}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureRule:
        """Rebuild a rule from :meth:`to_dict` (unknown keys are refused)."""
        unknown = set(data) - {"method", "threshold", "ignore"}
        if unknown:
            raise ValidationError(
                f"a feature rule takes method, threshold and ignore (got {sorted(unknown)})"
            )
        return cls(
            method=data.get("method"),
            threshold=data.get("threshold"),
            ignore=bool(data.get("ignore", False)),
        )


@dataclass(frozen=True, slots=True)
class DriftThresholds:
    """When a feature and the dataset count as drifted; defaults follow common practice.

    ``numeric_method`` and ``categorical_method`` pick the statistic that decides a
    feature (boolean columns are categorical). ``"auto"`` picks a test while the
    reference has at most ``small_reference`` values of the feature (a p-value is
    informative there) and a distance above it (where any tiny shift is
    "significant"): numeric ``ks`` then ``wasserstein``, categorical ``chisquare``
    then ``jensenshannon``. Thresholds: a p-value below ``ks_p_value`` /
    ``chisquare_p_value``, or a distance at or above ``psi``, ``wasserstein``
    (divided by the reference's standard deviation) or ``jensenshannon``. The
    dataset drifted when the share of drifted features is at least ``share``.
    ``"auto"`` decides by the smaller of the two samples (the reference's values and
    the current ones). A feature with fewer than ``min_current_rows`` current values
    is not evaluated (its score is None, it does not count as drifted): a handful of
    rows says little, and a window that just began would flag noise.
    ``features`` overrides any of that per feature. See docs/monitoring.md.
    """

    psi: float = 0.2
    ks_p_value: float = 0.05
    wasserstein: float = 0.1
    chisquare_p_value: float = 0.05
    jensenshannon: float = 0.1
    share: float = 0.5
    small_reference: int = 1000
    min_current_rows: int = 100
    numeric_method: Method = "auto"
    categorical_method: Method = "auto"
    features: Mapping[str, FeatureRule] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for method in ("psi", "wasserstein", "jensenshannon"):
            _check_threshold(method, getattr(self, method), f"DriftThresholds.{method}")
        _check_threshold("ks", self.ks_p_value, "DriftThresholds.ks_p_value")
        _check_threshold("chisquare", self.chisquare_p_value, "DriftThresholds.chisquare_p_value")
        if isinstance(self.share, bool) or not isinstance(self.share, int | float):
            raise ValidationError(f"DriftThresholds.share must be a number (got {self.share!r})")
        if not 0 < self.share <= 1:
            raise ValidationError(f"DriftThresholds.share must be in (0, 1] (got {self.share!r})")
        if isinstance(self.small_reference, bool) or not isinstance(self.small_reference, int):
            raise ValidationError(
                f"DriftThresholds.small_reference must be an int (got {self.small_reference!r})"
            )
        if (
            isinstance(self.min_current_rows, bool)
            or not isinstance(self.min_current_rows, int)
            or self.min_current_rows < 1
        ):
            raise ValidationError(
                "DriftThresholds.min_current_rows must be an int >= 1 "
                f"(got {self.min_current_rows!r})"
            )
        _check_method(self.numeric_method, NUMERIC_METHODS, "DriftThresholds.numeric_method")
        _check_method(
            self.categorical_method, CATEGORICAL_METHODS, "DriftThresholds.categorical_method"
        )
        for name, rule in self.features.items():
            if not isinstance(rule, FeatureRule):
                raise ValidationError(
                    f"DriftThresholds.features[{name!r}] must be a FeatureRule "
                    f"(got {type(rule).__name__})"
                )

    def threshold(self, method: str) -> float:
        """The global threshold of ``method`` (not ``"auto"``)."""
        return {
            "psi": self.psi,
            "ks": self.ks_p_value,
            "wasserstein": self.wasserstein,
            "chisquare": self.chisquare_p_value,
            "jensenshannon": self.jensenshannon,
        }[method]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dictionary that :meth:`from_dict` reads back."""
        return {
            "psi": self.psi,
            "ks_p_value": self.ks_p_value,
            "wasserstein": self.wasserstein,
            "chisquare_p_value": self.chisquare_p_value,
            "jensenshannon": self.jensenshannon,
            "share": self.share,
            "small_reference": self.small_reference,
            "min_current_rows": self.min_current_rows,
            "numeric_method": self.numeric_method,
            "categorical_method": self.categorical_method,
            "features": {name: rule.to_dict() for name, rule in self.features.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DriftThresholds:
        """Thresholds from a dictionary; missing keys keep their defaults.

        Raises:
            ValidationError: an unknown key or a value out of range.
        """
        if not isinstance(data, Mapping):
            raise ValidationError(f"drift thresholds must be a mapping (got {type(data).__name__})")
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise ValidationError(
                f"unknown drift threshold keys {sorted(unknown)}; expected some of {sorted(known)}"
            )
        values = dict(data)
        features = values.pop("features", None) or {}
        if not isinstance(features, Mapping):
            raise ValidationError("drift thresholds 'features' must map feature names to rules")
        rules = {
            str(name): rule if isinstance(rule, FeatureRule) else FeatureRule.from_dict(rule)
            for name, rule in features.items()
        }
        return cls(**values, features=rules)


@dataclass(frozen=True, slots=True)
class FeatureDrift:
    """One feature's drift: the deciding ``method`` and ``score``, and every statistic.

    ``statistics`` holds, for numeric and datetime features, ``psi``,
    ``ks_statistic``, ``ks_p_value``, ``wasserstein`` (in the feature's unit) and
    ``wasserstein_normed`` (divided by the reference's standard deviation); for
    categorical and boolean ones ``psi``, ``chisquare_statistic``,
    ``chisquare_p_value`` and ``jensenshannon``. A statistic is ``None`` when the
    window has no values of the feature (then ``drifted`` is ``False`` and the
    feature does not count in the dataset's share). ``missing_reference`` and
    ``missing_current`` are missing rates, reported beside the statistics, which
    cover present values only. ``resolution`` is ``"fine"`` when KS and Wasserstein
    come from the profile's fine histogram, ``"coarse"`` when an older profile only
    had its 20-bin histogram, and ``"categories"`` for categorical features.
    """

    name: str
    kind: str
    method: str
    threshold: float
    score: float | None
    drifted: bool
    statistics: dict[str, float | None]
    n_reference: int
    n_current: int
    missing_reference: float
    missing_current: float
    resolution: str

    @property
    def evaluated(self) -> bool:
        """Whether the window had enough values to compare (``score`` is not ``None``)."""
        return self.score is not None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dictionary that :meth:`from_dict` reads back."""
        return {
            "name": self.name,
            "kind": self.kind,
            "method": self.method,
            "threshold": self.threshold,
            "score": self.score,
            "drifted": self.drifted,
            "statistics": dict(self.statistics),
            "n_reference": self.n_reference,
            "n_current": self.n_current,
            "missing_reference": self.missing_reference,
            "missing_current": self.missing_current,
            "resolution": self.resolution,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureDrift:
        """Rebuild a feature's drift from :meth:`to_dict`."""
        try:
            return cls(
                name=str(data["name"]),
                kind=str(data["kind"]),
                method=str(data["method"]),
                threshold=float(data["threshold"]),
                score=None if data["score"] is None else float(data["score"]),
                drifted=bool(data["drifted"]),
                statistics={
                    str(k): None if v is None else float(v) for k, v in data["statistics"].items()
                },
                n_reference=int(data["n_reference"]),
                n_current=int(data["n_current"]),
                missing_reference=float(data["missing_reference"]),
                missing_current=float(data["missing_current"]),
                resolution=str(data["resolution"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValidationError(
                f"feature drift {data.get('name', '?')!r} is malformed: {type(exc).__name__}: {exc}"
            ) from exc


@dataclass(frozen=True, slots=True)
class DriftResult:
    """A window's drift against a reference profile.

    ``features`` maps each compared feature to its :class:`FeatureDrift`;
    ``share_drifted`` is the share of drifted features among those evaluated and
    ``drifted`` whether it reached ``thresholds.share``. ``n_reference`` and
    ``n_current`` are row counts; ``skipped`` maps each reference column left out
    to the reason (not in the window, ignored, all missing in the reference, ...).
    """

    features: dict[str, FeatureDrift]
    share_drifted: float
    drifted: bool
    n_reference: int
    n_current: int
    thresholds: DriftThresholds
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def drifted_features(self) -> list[str]:
        """Names of the drifted features, in the reference's column order."""
        return [name for name, feature in self.features.items() if feature.drifted]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dictionary that :meth:`from_dict` reads back."""
        return {
            "features": [feature.to_dict() for feature in self.features.values()],
            "share_drifted": self.share_drifted,
            "drifted": self.drifted,
            "n_reference": self.n_reference,
            "n_current": self.n_current,
            "thresholds": self.thresholds.to_dict(),
            "skipped": dict(self.skipped),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DriftResult:
        """Rebuild a result from :meth:`to_dict`.

        Raises:
            ValidationError: the dictionary is malformed.
        """
        if not isinstance(data, Mapping):
            raise ValidationError(f"a drift result must be a mapping (got {type(data).__name__})")
        try:
            features = [FeatureDrift.from_dict(f) for f in data["features"]]
            return cls(
                features={f.name: f for f in features},
                share_drifted=float(data["share_drifted"]),
                drifted=bool(data["drifted"]),
                n_reference=int(data["n_reference"]),
                n_current=int(data["n_current"]),
                thresholds=DriftThresholds.from_dict(data["thresholds"]),
                skipped={str(k): str(v) for k, v in cast(dict[str, Any], data["skipped"]).items()},
            )
        except ValidationError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValidationError(
                f"drift result is malformed: {type(exc).__name__}: {exc}"
            ) from exc
