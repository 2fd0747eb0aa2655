"""The dataset profile model: what :func:`loopml.data.profile` returns and stores.

A :class:`DatasetProfile` is plain data, JSON-able with :meth:`DatasetProfile.to_dict`
and rebuilt exactly with :meth:`DatasetProfile.from_dict`. Floats that have no value
(an all-null column's mean, the std of a single value) are ``None``, never NaN, so
the dictionary goes through ``json.dumps`` as strict JSON. The dictionary carries
``format_version``; :meth:`~DatasetProfile.from_dict` refuses a version it does not
know instead of guessing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from rich.table import Table

from loopml.core import ValidationError

__all__ = [
    "FORMAT_VERSION",
    "QUANTILE_KEYS",
    "ColumnKind",
    "ColumnProfile",
    "DatasetProfile",
    "Histogram",
]

FORMAT_VERSION = 1
ColumnKind = Literal["numeric", "categorical", "boolean", "datetime"]
KINDS: tuple[ColumnKind, ...] = ("numeric", "categorical", "boolean", "datetime")
QUANTILE_KEYS: dict[str, float] = {
    "p01": 0.01,
    "p05": 0.05,
    "p25": 0.25,
    "p50": 0.50,
    "p75": 0.75,
    "p95": 0.95,
    "p99": 0.99,
}


@dataclass(frozen=True, slots=True)
class Histogram:
    """Counts of values in bins; ``len(edges) == len(counts) + 1``.

    Bins are closed on the right: bin ``i`` holds ``edges[i] < x <= edges[i + 1]``,
    and the first bin also holds ``edges[0]`` itself. A constant column has one
    zero-width bin ``[v, v]``. See :func:`loopml.data.histogram_counts` for how new
    values outside ``[edges[0], edges[-1]]`` are counted. ``sums`` (fine histograms
    only, else ``None``) is the sum of the values in each bin: with it, the area under
    the CDF over each bin is exact, which makes monitoring's Wasserstein distance so.
    """

    edges: list[float]
    counts: list[int]
    sums: list[float] | None = None

    def __post_init__(self) -> None:
        if len(self.edges) != len(self.counts) + 1 or not self.counts:
            raise ValidationError(
                f"a histogram needs len(edges) == len(counts) + 1 >= 2 "
                f"(got {len(self.edges)} edges and {len(self.counts)} counts)"
            )
        if self.sums is not None and len(self.sums) != len(self.counts):
            raise ValidationError(
                f"a histogram needs one sum per bin (got {len(self.sums)} sums "
                f"and {len(self.counts)} counts)"
            )
        if any(b < a for a, b in zip(self.edges, self.edges[1:], strict=False)):
            raise ValidationError(f"histogram edges must not decrease (got {self.edges!r})")

    @property
    def total(self) -> int:
        """The number of values counted."""
        return sum(self.counts)


@dataclass(frozen=True, slots=True)
class ColumnProfile:
    """Statistics of one column; fields that do not apply to its kind are ``None``.

    Numeric and datetime columns fill ``min``, ``max``, ``mean``, ``quantiles`` and
    ``histogram`` (datetimes in epoch seconds, UTC); ``std`` is numeric only.
    ``fine`` is a second, finer histogram of the same values (edges at the
    quantiles ``k / fine_bins``, exact counts) that monitoring's Kolmogorov-Smirnov
    and Wasserstein statistics are computed on; it is ``None`` in profiles stored
    before it existed and when the profile was computed with ``fine_bins=0``.
    Categorical and boolean columns fill ``distinct`` (exact), ``top_k`` (value as
    text, count; most frequent first, ties by value) and ``other_count`` (non-null
    rows outside ``top_k``). ``count`` is the number of non-missing values;
    NaN and infinities in float columns count as missing.
    """

    name: str
    kind: ColumnKind
    dtype: str
    count: int
    missing: int
    missing_rate: float
    min: float | None = None
    max: float | None = None
    mean: float | None = None
    std: float | None = None
    quantiles: dict[str, float] | None = None
    histogram: Histogram | None = None
    distinct: int | None = None
    top_k: list[tuple[str, int]] | None = None
    other_count: int | None = None
    fine: Histogram | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dictionary of this column's statistics."""
        return {
            "name": self.name,
            "kind": self.kind,
            "dtype": self.dtype,
            "count": self.count,
            "missing": self.missing,
            "missing_rate": self.missing_rate,
            "min": _finite(self.min),
            "max": _finite(self.max),
            "mean": _finite(self.mean),
            "std": _finite(self.std),
            "quantiles": None
            if self.quantiles is None
            else {k: _finite(v) for k, v in self.quantiles.items()},
            "histogram": None
            if self.histogram is None
            else {"edges": list(self.histogram.edges), "counts": list(self.histogram.counts)},
            "distinct": self.distinct,
            "top_k": None if self.top_k is None else [[v, n] for v, n in self.top_k],
            "other_count": self.other_count,
            "fine": None
            if self.fine is None
            else {
                "edges": list(self.fine.edges),
                "counts": list(self.fine.counts),
                "sums": None if self.fine.sums is None else list(self.fine.sums),
            },
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ColumnProfile:
        """Rebuild a column profile written by :meth:`to_dict`."""
        name = data.get("name", "?")
        try:
            kind = data["kind"]
            if kind not in KINDS:
                raise ValidationError(f"kind must be one of {KINDS} (got {kind!r})")
            hist = data.get("histogram")
            top = data.get("top_k")
            quantiles = data.get("quantiles")
            return cls(
                name=str(data["name"]),
                kind=cast(ColumnKind, kind),
                dtype=str(data["dtype"]),
                count=int(data["count"]),
                missing=int(data["missing"]),
                missing_rate=float(data["missing_rate"]),
                min=_opt_float(data.get("min")),
                max=_opt_float(data.get("max")),
                mean=_opt_float(data.get("mean")),
                std=_opt_float(data.get("std")),
                quantiles=None
                if quantiles is None
                else {str(k): float(v) for k, v in quantiles.items()},
                histogram=_histogram(hist),
                distinct=None if data.get("distinct") is None else int(data["distinct"]),
                top_k=None if top is None else [(str(v), int(n)) for v, n in top],
                other_count=None if data.get("other_count") is None else int(data["other_count"]),
                fine=_histogram(data.get("fine")),  # absent from profiles stored before it
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValidationError(
                f"column profile {name!r} is malformed: {type(exc).__name__}: {exc}"
            ) from exc


@dataclass(frozen=True, slots=True)
class DatasetProfile:
    """Per-column statistics of a dataset, with reusable histogram edges.

    ``exact_quantiles`` is ``False`` when the quantiles and bin edges were estimated
    from a uniform sample (large inputs); histogram counts are always exact.
    ``fine_bins`` is the most bins of each column's ``fine`` histogram (0: none).
    """

    row_count: int
    columns: dict[str, ColumnProfile]
    bins: int = 20
    top_k: int = 20
    exact_quantiles: bool = True
    format_version: int = field(default=FORMAT_VERSION)
    fine_bins: int = 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dictionary (no NaN or infinity) that :meth:`from_dict` reads back."""
        return {
            "format_version": self.format_version,
            "row_count": self.row_count,
            "bins": self.bins,
            "top_k": self.top_k,
            "exact_quantiles": self.exact_quantiles,
            "fine_bins": self.fine_bins,
            "columns": [column.to_dict() for column in self.columns.values()],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DatasetProfile:
        """Rebuild a profile written by :meth:`to_dict`.

        Raises:
            ValidationError: the dictionary is malformed or has an unknown format version.
        """
        if not isinstance(data, dict):
            raise ValidationError(f"a profile must be a dict (got {type(data).__name__})")
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise ValidationError(
                f"profile format_version must be {FORMAT_VERSION} (got {version!r}); "
                "it was written by another loopml version"
            )
        try:
            columns = [ColumnProfile.from_dict(c) for c in data["columns"]]
            return cls(
                row_count=int(data["row_count"]),
                columns={c.name: c for c in columns},
                bins=int(data["bins"]),
                top_k=int(data["top_k"]),
                exact_quantiles=bool(data["exact_quantiles"]),
                format_version=int(version),
                fine_bins=int(data.get("fine_bins", 0)),  # absent from older profiles
            )
        except ValidationError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise ValidationError(
                f"profile is malformed: missing or wrong key {type(exc).__name__}: {exc}"
            ) from exc

    def to_table(self) -> Table:
        """A :class:`rich.table.Table` with one row per column, readable in 100 columns."""
        from loopml.data._profile_table import profile_table

        return profile_table(self)


def _histogram(data: Any) -> Histogram | None:
    if data is None:
        return None
    sums = data.get("sums")
    return Histogram(
        edges=[float(e) for e in data["edges"]],
        counts=[int(c) for c in data["counts"]],
        sums=None if sums is None else [float(s) for s in sums],
    )


def _finite(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return value


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)
