"""Deterministic dataset splits: random, stratified, group and time.

A :class:`SplitSpec` is stored (as :meth:`SplitSpec.to_dict`) beside a dataset
version, and applying it again to the same data must give the same rows on any
machine, in any process, with any later numpy. So this module:

* draws randomness from the raw 64-bit stream of ``numpy.random.PCG64`` (seeded
  through ``SeedSequence``), which numpy keeps stable across releases. It does
  *not* use ``Generator.permutation``: numpy promises ``Generator`` methods the
  same stream only "on the same build of numpy" (see the numpy.random
  compatibility policy, NEP 19). Sorting the raw draws with a stable sort gives
  a permutation fixed by the seed alone;
* hashes group values with BLAKE3, never with the builtin ``hash()``, which is
  salted per process (``PYTHONHASHSEED``);
* sizes parts with exact rational arithmetic on the ratios as written (``0.7`` is
  7/10), so 1,000 rows at 70/15/15 are 700/150/150 everywhere.

Kinds and what each result depends on::

    random      shuffle by seed, cut by ratios            row count and row order
    stratified  random within each class of ``column``    values, row order
    group       each value of ``column`` hashed to a part  values only
    time        rows cut at timestamps in ``column``       values only

Random and stratified splits depend on row order, which is fixed for an immutable
dataset version: re-sorting the rows is a new dataset and gives a new split.
"""

from __future__ import annotations

import bisect
import datetime as dt
import decimal
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
from blake3 import blake3

from loopml.core import ValidationError

__all__ = ["SplitSpec", "split_frames", "split_indices"]

Cut: TypeAlias = str | int | float
Data: TypeAlias = pd.DataFrame | pa.Table
Indices: TypeAlias = npt.NDArray[np.int64]

SPEC_VERSION = 1
KINDS = ("random", "stratified", "group", "time")
_DEFAULT_NAMES = {2: ("train", "test"), 3: ("train", "validation", "test")}
_FIELDS = ("version", "kind", "ratios", "names", "seed", "column", "cuts")
_RATIO_TOLERANCE = 1e-9
_RELATIVE_TIMES = {"now", "today", "tomorrow", "yesterday"}
_HASH_DOMAIN = b"loopml.split.group.v1\x00"


@dataclass(frozen=True, slots=True, kw_only=True)
class SplitSpec:
    """How to split a dataset into named parts, reproducibly.

    The constructor only stores its arguments (lists become tuples, whole-number
    ratios become floats, and ``names=None`` becomes ``("train", "test")`` for
    two parts or ``("train", "validation", "test")`` for three); :meth:`check`
    validates. ``ratios`` and ``seed`` are ignored by ``kind="time"``.

    Example::

        spec = SplitSpec(kind="group", column="customer_id", seed=7)
        parts = split_indices(df, spec)        # {"train": array([...]), ...}
        SplitSpec.from_dict(spec.to_dict()) == spec
    """

    kind: str = "random"
    ratios: tuple[float, ...] = (0.7, 0.15, 0.15)
    names: tuple[str, ...] | None = None
    seed: int = 0
    column: str | None = None
    cuts: tuple[Cut, ...] | None = None

    def __post_init__(self) -> None:
        ratios: Any = self.ratios
        if isinstance(ratios, list | tuple):
            ratios = tuple(
                float(r) if isinstance(r, int) and not isinstance(r, bool) else r for r in ratios
            )
            object.__setattr__(self, "ratios", ratios)
        if isinstance(self.cuts, list):
            object.__setattr__(self, "cuts", tuple(self.cuts))
        names: Any = self.names
        if isinstance(names, list):
            object.__setattr__(self, "names", tuple(names))
        elif names is None:
            object.__setattr__(self, "names", _DEFAULT_NAMES.get(self._part_count()))

    def _part_count(self) -> int:
        if self.kind == "time":
            return len(self.cuts) + 1 if isinstance(self.cuts, tuple) else 0
        return len(self.ratios) if isinstance(self.ratios, tuple) else 0

    @property
    def part_names(self) -> tuple[str, ...]:
        """The part names, in order; raises :class:`ValidationError` when unset."""
        if self.names is None:
            raise ValidationError(
                f"SplitSpec.names is required for a split into {self._part_count()} parts "
                "(defaults exist only for 2 and 3 parts); got None"
            )
        return self.names

    def check(self, columns: Sequence[str] | None = None) -> None:
        """Validate the spec, and its column against ``columns`` when given.

        Raises:
            ValidationError: naming the bad field, what it expects and what it got.
        """
        if self.kind not in KINDS:
            raise ValidationError(f"SplitSpec.kind must be one of {KINDS}; got {self.kind!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise ValidationError(f"SplitSpec.seed must be an int >= 0; got {self.seed!r}")
        if self.kind == "time":
            _parse_cuts(self.cuts)
            source = f"{len(self.cuts or ())} cuts make"
        else:
            _check_ratios(self.ratios)
            if self.cuts is not None:
                raise ValidationError(
                    f"SplitSpec.cuts is only used by kind 'time'; got {self.cuts!r} "
                    f"for kind {self.kind!r}"
                )
            source = "ratios give"
        self._check_names(source)
        self._check_column(columns)

    def _check_names(self, source: str) -> None:
        names = self.part_names
        if not isinstance(names, tuple) or not all(isinstance(n, str) and n for n in names):
            raise ValidationError(
                f"SplitSpec.names must be a tuple of non-empty strings; got {names!r}"
            )
        if len(names) != self._part_count():
            raise ValidationError(
                f"SplitSpec.names has {len(names)} entries but the {source} "
                f"{self._part_count()} parts; got names={names!r}"
            )
        seen: set[str] = set()
        for name in names:
            if name in seen:
                raise ValidationError(
                    f"SplitSpec.names must be unique; {name!r} appears twice in {names!r}"
                )
            seen.add(name)

    def _check_column(self, columns: Sequence[str] | None) -> None:
        if self.kind == "random":
            if self.column is not None:
                raise ValidationError(
                    f"SplitSpec.column is not used by kind 'random'; got {self.column!r}"
                )
            return
        if not isinstance(self.column, str) or not self.column:
            raise ValidationError(
                f"SplitSpec.column must name a column for kind {self.kind!r}; got {self.column!r}"
            )
        if columns is None:
            return
        found = [c for c in columns if c == self.column]
        if not found:
            shown = list(columns)[:20]
            more = f" and {len(columns) - 20} more" if len(columns) > 20 else ""
            raise ValidationError(
                f"SplitSpec.column {self.column!r} is not in the data; "
                f"available columns: {shown!r}{more}"
            )
        if len(found) > 1:
            raise ValidationError(
                f"SplitSpec.column {self.column!r} appears {len(found)} times in the data; "
                "expected exactly once"
            )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict; :meth:`from_dict` rebuilds an equal spec from it."""
        return {
            "version": SPEC_VERSION,
            "kind": self.kind,
            "ratios": list(self.ratios),
            "names": None if self.names is None else list(self.names),
            "seed": self.seed,
            "column": self.column,
            "cuts": None if self.cuts is None else list(self.cuts),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SplitSpec:
        """Rebuild a spec from :meth:`to_dict` output; missing fields take defaults.

        Raises:
            ValidationError: if ``data`` is not a mapping, has unknown keys or a
                ``version`` other than the one this code writes.
        """
        if not isinstance(data, Mapping):
            raise ValidationError(
                f"SplitSpec.from_dict expects a mapping; got {type(data).__name__}"
            )
        unknown = sorted(set(data) - set(_FIELDS))
        if unknown:
            raise ValidationError(
                f"SplitSpec.from_dict got unknown keys {unknown!r}; expected some of {_FIELDS}"
            )
        version = data.get("version", SPEC_VERSION)
        if version != SPEC_VERSION:
            raise ValidationError(
                f"SplitSpec.from_dict: version must be {SPEC_VERSION}; got {version!r}"
            )
        fields = {key: value for key, value in data.items() if key != "version"}
        for key in ("ratios", "names", "cuts"):
            if isinstance(fields.get(key), list):
                fields[key] = tuple(fields[key])
        return cls(**fields)

    def fingerprint(self) -> str:
        """``"blake3:<hex>"`` of the canonical JSON of :meth:`to_dict`.

        Raises:
            ValidationError: if a field cannot be written as strict JSON (NaN, ...).
        """
        try:
            text = json.dumps(
                self.to_dict(),
                sort_keys=True,
                separators=(",", ":"),
                ensure_ascii=False,
                allow_nan=False,
            )
        except (TypeError, ValueError) as exc:
            raise ValidationError(f"SplitSpec {self!r} is not JSON-able: {exc}") from exc
        return "blake3:" + blake3(text.encode("utf-8")).hexdigest()


def split_indices(data: Data, spec: SplitSpec) -> dict[str, Indices]:
    """Split rows of ``data`` into the parts of ``spec``.

    Returns a dict from part name (in spec order) to the int64 row positions of
    that part, sorted ascending; every row is in exactly one part.

    Raises:
        ValidationError: if the spec is invalid for this data, or ``data`` is not
            a pandas DataFrame or pyarrow Table.
    """
    if isinstance(data, pd.DataFrame):
        columns, rows = list(data.columns), len(data)
    elif isinstance(data, pa.Table):
        columns, rows = list(data.column_names), data.num_rows
    else:
        raise ValidationError(
            f"split_indices expects a pandas DataFrame or pyarrow Table; got {type(data).__name__}"
        )
    spec.check(columns)
    count = len(spec.part_names)
    if spec.kind == "random":
        assignment = _random_assignment(rows, spec)
    elif spec.kind == "stratified":
        assignment = _stratified_assignment(_column(data, spec, dates=False), spec)
    elif spec.kind == "group":
        assignment = _group_assignment(_column(data, spec, dates=False), spec)
    else:
        assignment = _time_assignment(_column(data, spec, dates=True), spec)
    return {
        name: np.flatnonzero(assignment == part).astype(np.int64)
        for part, name in zip(range(count), spec.part_names, strict=True)
    }


def split_frames(df: pd.DataFrame, spec: SplitSpec) -> dict[str, pd.DataFrame]:
    """Split ``df`` into one DataFrame per part (``df.iloc`` of :func:`split_indices`)."""
    if not isinstance(df, pd.DataFrame):
        raise ValidationError(
            f"split_frames expects a pandas DataFrame; got {type(df).__name__} "
            "(use split_indices for a pyarrow Table)"
        )
    return {name: df.iloc[positions] for name, positions in split_indices(df, spec).items()}


def _check_ratios(ratios: object) -> None:
    if not isinstance(ratios, tuple) or len(ratios) < 2:
        raise ValidationError(
            f"SplitSpec.ratios must be a tuple of at least 2 numbers; got {ratios!r}"
        )
    for ratio in ratios:
        if (
            not isinstance(ratio, int | float)
            or isinstance(ratio, bool)
            or not math.isfinite(ratio)
            or ratio < 0
        ):
            raise ValidationError(
                f"SplitSpec.ratios must be finite numbers >= 0; got {ratio!r} in {ratios!r}"
            )
    total = math.fsum(ratios)
    if abs(total - 1.0) > _RATIO_TOLERANCE:
        raise ValidationError(
            f"SplitSpec.ratios must sum to 1 (tolerance {_RATIO_TOLERANCE}); "
            f"got {ratios!r}, which sums to {total!r}"
        )


def _parse_cuts(cuts: object) -> list[pd.Timestamp | int | float]:
    """Cuts as Timestamps (from ISO strings) or numbers, checked to be increasing."""
    if not isinstance(cuts, tuple) or not cuts:
        raise ValidationError(
            f"SplitSpec.cuts must be a non-empty tuple for kind 'time'; got {cuts!r}"
        )
    parsed: list[pd.Timestamp | int | float] = []
    for cut in cuts:
        if isinstance(cut, str):
            if cut.strip().lower() in _RELATIVE_TIMES:
                raise ValidationError(
                    f"SplitSpec.cuts must be fixed instants; got the relative time {cut!r}"
                )
            try:
                parsed.append(pd.Timestamp(cut))
            except (TypeError, ValueError) as exc:
                raise ValidationError(
                    f"SplitSpec.cuts entry {cut!r} is not an ISO timestamp: {exc}"
                ) from exc
        elif isinstance(cut, int | float) and not isinstance(cut, bool) and math.isfinite(cut):
            parsed.append(cut)
        else:
            raise ValidationError(
                f"SplitSpec.cuts entries must be ISO timestamp strings or finite numbers; "
                f"got {cut!r}"
            )
    if len({isinstance(p, pd.Timestamp) for p in parsed}) > 1:
        raise ValidationError(f"SplitSpec.cuts mixes timestamps and numbers; got {cuts!r}")
    for index in range(1, len(parsed)):
        try:
            increasing = bool(parsed[index] > parsed[index - 1])
        except TypeError as exc:
            raise ValidationError(
                f"SplitSpec.cuts mixes timezone-aware and naive timestamps; got {cuts!r}"
            ) from exc
        if not increasing:
            raise ValidationError(
                f"SplitSpec.cuts must be strictly increasing; cut {cuts[index]!r} is not "
                f"after {cuts[index - 1]!r}"
            )
    return parsed


def _column(data: Data, spec: SplitSpec, *, dates: bool) -> pd.Series[Any]:
    name = str(spec.column)
    if isinstance(data, pa.Table):
        # Exact Python ints for integer columns with nulls (not float64 with NaN).
        return pd.Series(
            data.column(name).to_pandas(integer_object_nulls=True, date_as_object=not dates)
        )
    return data[name].reset_index(drop=True)


def _random_keys(rows: int, seed: int) -> npt.NDArray[np.uint64]:
    """One raw PCG64 draw per row; their stable argsort is the seed's permutation."""
    keys: npt.NDArray[np.uint64] = np.random.PCG64(seed).random_raw(rows)
    return keys


def _allocate(rows: int, ratios: Sequence[float]) -> list[int]:
    """Largest-remainder rounding of ``ratios * rows``; ties go to the earlier part."""
    weights = [Fraction(repr(float(r))) for r in ratios]
    total = sum(weights, Fraction(0))
    quotas = [w * rows / total for w in weights]
    counts = [math.floor(q) for q in quotas]
    by_remainder = sorted(range(len(quotas)), key=lambda i: (counts[i] - quotas[i], i))
    for part in by_remainder[: rows - sum(counts)]:
        counts[part] += 1
    return counts


def _assign_in_order(
    assignment: npt.NDArray[np.int64], ordered: npt.NDArray[np.intp], counts: list[int]
) -> None:
    start = 0
    for part, count in enumerate(counts):
        assignment[ordered[start : start + count]] = part
        start += count


def _random_assignment(rows: int, spec: SplitSpec) -> npt.NDArray[np.int64]:
    assignment = np.zeros(rows, dtype=np.int64)
    order = np.argsort(_random_keys(rows, spec.seed), kind="stable")
    _assign_in_order(assignment, order, _allocate(rows, spec.ratios))
    return assignment


def _stratified_assignment(values: pd.Series[Any], spec: SplitSpec) -> npt.NDArray[np.int64]:
    rows = len(values)
    codes, _ = pd.factorize(values, use_na_sentinel=True)
    classes = np.asarray(codes, dtype=np.int64) + 1  # nulls (-1) become class 0
    order = np.argsort(_random_keys(rows, spec.seed), kind="stable")
    order = order[np.argsort(classes[order], kind="stable")]  # by class, random within
    assignment = np.zeros(rows, dtype=np.int64)
    start = 0
    for size in np.bincount(classes).tolist():
        block = order[start : start + size]
        _assign_in_order(assignment, block, _allocate(size, spec.ratios))
        start += size
    return assignment


def _group_assignment(values: pd.Series[Any], spec: SplitSpec) -> npt.NDArray[np.int64]:
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    weights = [Fraction(repr(float(r))) for r in spec.ratios]
    total = sum(weights, Fraction(0))
    thresholds: list[int] = []
    running = Fraction(0)
    for weight in weights[:-1]:
        running += weight
        thresholds.append(math.floor(running / total * 2**64))
    base = blake3(_HASH_DOMAIN + str(spec.seed).encode("ascii") + b"\x00")

    def part_of(payload: bytes) -> int:
        hasher = base.copy()
        hasher.update(payload)
        point = int.from_bytes(hasher.digest(length=8), "big")
        return bisect.bisect_right(thresholds, point)

    column = str(spec.column)
    lookup = [part_of(b"\x00")]  # index 0: the null group
    lookup += [part_of(b"\x01" + _canonical(v, column).encode("utf-8")) for v in uniques]
    return np.asarray(lookup, dtype=np.int64)[np.asarray(codes, dtype=np.int64) + 1]


def _canonical(value: object, column: str) -> str:
    """A string for a group value that equal values share whatever their type.

    ``1``, ``1.0``, ``True`` and ``Decimal("1")`` are equal in Python (and merged
    by pandas), so they must map to one string or the result would depend on
    which one came first.
    """
    if isinstance(value, decimal.Decimal) and not value.is_nan() and float(value) == value:
        value = float(value)
    if isinstance(value, bool | np.bool_):
        return "1" if value else "0"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        number = float(value)
        return str(int(number)) if number.is_integer() else repr(number)
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, decimal.Decimal):
        return str(value.normalize())
    if isinstance(value, pd.Timestamp | dt.datetime | np.datetime64):
        stamp = pd.Timestamp(value)
        return str((stamp if stamp.tz is None else stamp.tz_convert("UTC")).isoformat())
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, pd.Timedelta | dt.timedelta | np.timedelta64):
        return str(pd.Timedelta(value).isoformat())
    raise ValidationError(
        f"SplitSpec.column {column!r} holds a {type(value).__name__} value ({value!r}); "
        "a group split supports strings, numbers, booleans, bytes, dates and timestamps"
    )


def _time_assignment(values: pd.Series[Any], spec: SplitSpec) -> npt.NDArray[np.int64]:
    column = str(spec.column)
    nulls = int(values.isna().sum())
    if nulls:
        first = np.flatnonzero(values.isna().to_numpy())[:5].tolist()
        raise ValidationError(
            f"SplitSpec.column {column!r} has {nulls} null value(s) (first at rows {first}); "
            "a time split needs a value on every row: drop or fill them first"
        )
    values = _as_time_series(values, column)
    cuts = _parse_cuts(spec.cuts)
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        tz = getattr(values.dt, "tz", None)
        cuts = [_timestamp_cut(cut, tz, column, str(values.dtype)) for cut in cuts]
    elif any(isinstance(cut, pd.Timestamp) for cut in cuts):
        raise ValidationError(
            f"SplitSpec.cuts are timestamps but column {column!r} holds numbers "
            f"({values.dtype}); write the cuts as numbers"
        )
    assignment = np.zeros(len(values), dtype=np.int64)
    for cut in cuts:
        assignment += (values >= cut).to_numpy(dtype=bool)
    return assignment


def _as_time_series(values: pd.Series[Any], column: str) -> pd.Series[Any]:
    """``values`` as a datetime64 or numeric Series, or a ValidationError."""
    types = pd.api.types
    dtype = values.dtype
    if isinstance(dtype, pd.ArrowDtype) and pa.types.is_temporal(dtype.pyarrow_dtype):
        values = pd.Series(pa.chunked_array([values.array]).to_pandas(date_as_object=False))
    elif types.is_object_dtype(dtype) and types.infer_dtype(values) in {"date", "datetime"}:
        try:
            values = pd.Series(pd.to_datetime(values))
        except (TypeError, ValueError) as exc:
            raise ValidationError(
                f"SplitSpec.column {column!r} holds dates that pandas cannot convert: {exc}"
            ) from exc
    dtype = values.dtype
    if types.is_datetime64_any_dtype(dtype):
        return values
    if types.is_numeric_dtype(dtype) and not types.is_bool_dtype(dtype):
        return values
    raise ValidationError(
        f"SplitSpec.column {column!r} must hold timestamps or numbers for a time split; "
        f"got dtype {dtype}"
    )


def _timestamp_cut(
    cut: pd.Timestamp | int | float, tz: Any, column: str, dtype: str
) -> pd.Timestamp:
    if not isinstance(cut, pd.Timestamp):
        raise ValidationError(
            f"SplitSpec.cuts entry {cut!r} is a number but column {column!r} holds "
            f"timestamps ({dtype}); write the cuts as ISO strings"
        )
    if tz is not None and cut.tz is None:
        raise ValidationError(
            f"SplitSpec.cuts entry {cut.isoformat()!r} has no timezone but column {column!r} "
            f"is timezone-aware ({dtype}); write the cut with an offset, e.g. "
            f"{cut.tz_localize('UTC').isoformat()!r}"
        )
    if tz is None and cut.tz is not None:
        raise ValidationError(
            f"SplitSpec.cuts entry {cut.isoformat()!r} has a timezone but column {column!r} "
            f"is naive ({dtype}); write the cut without an offset"
        )
    return cut
