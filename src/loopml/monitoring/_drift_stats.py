"""Drift statistics from counts: no raw values of either side are needed.

Numeric features are compared on bins whose edges the reference profile stored:

- **PSI** on the coarse histogram (quantile bins, about 5% of the reference each),
  ``sum (q - p) ln(q / p)`` with shares floored at 1e-4, the formula of
  ``loopml data diff``; current values outside the reference's range count in
  its end bins.
- **Kolmogorov-Smirnov**: the largest gap between the two empirical CDFs, read at
  every fine edge and just below the reference's minimum. Between two edges the
  gap can grow by at most the larger share of one bin, so the statistic is exact
  up to about one fine bin (0.1% of the reference with 1,000 fine bins) and never
  above the exact value. The p-value is two-sided: the limiting Kolmogorov
  distribution at ``(sqrt(e) + 0.12 + 0.11 / sqrt(e)) D`` for the effective sample
  size ``e = n m / (n + m)`` (Stephens' small-sample correction), within a few
  thousandths of scipy's exact values from a few hundred values on.
- **Wasserstein** (earth mover's distance, W1) is the area between the CDFs.
  Outside the reference's range it is exact (the sketch keeps the summed distance
  of values beyond each end). Over a bin ``(a, b]`` the area under a CDF is
  ``(b - a) F(a) + (m b - s) / n`` for the bin's ``m`` values summing to ``s``, so
  with both sides' per-bin counts and sums the *signed* area between the CDFs is
  exact per bin, and its absolute value is the exact unsigned area wherever the
  CDFs do not cross inside a bin (where they do, the gap is small there anyway). A
  profile stored without bin sums falls back to CDFs linear within each bin.
  ``wasserstein_normed``
  divides by the reference's standard deviation, as Evidently does, so one
  threshold fits every unit (a constant reference divides by 1).

Categorical features are compared on the reference's ``top_k`` values plus an
"other" bucket (values never seen in training land there):

- **chi-square**: Pearson's test of homogeneity of the 2 x k table (reference
  counts, current counts), as ``scipy.stats.chi2_contingency(correction=False)``;
  for a boolean it equals the two-proportion z-test.
- **Jensen-Shannon distance** between the two shares, natural logarithm (as
  ``scipy.spatial.distance.jensenshannon`` and Evidently), between 0 and sqrt(ln 2).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import special  # not scipy.stats: that costs 57 MB of memory to import

__all__ = [
    "PSI_EPSILON",
    "chisquare",
    "jensenshannon",
    "ks_from_cdfs",
    "ks_p_value",
    "psi",
    "wasserstein_from_cdfs",
    "wasserstein_from_moments",
]

PSI_EPSILON = 1e-4
_Floats = np.ndarray[Any, np.dtype[np.float64]]


def psi(expected: Any, actual: Any) -> float | None:
    """Population stability index of ``actual`` counts against ``expected`` ones."""
    p = np.asarray(expected, dtype=np.float64)
    q = np.asarray(actual, dtype=np.float64)
    if p.sum() <= 0 or q.sum() <= 0:
        return None
    p = np.maximum(p / p.sum(), PSI_EPSILON)
    q = np.maximum(q / q.sum(), PSI_EPSILON)
    return float(np.sum((q - p) * np.log(q / p)))


def ks_from_cdfs(reference: _Floats, current: _Floats, current_below: float) -> float:
    """The KS statistic from both CDFs at the same edges and the current share below
    the first edge (where the reference's CDF is 0)."""
    gap = float(np.max(np.abs(reference - current))) if len(reference) else 0.0
    return max(gap, current_below)


def ks_p_value(statistic: float, n_reference: int, n_current: int) -> float:
    """Two-sided asymptotic p-value of the two-sample KS statistic."""
    root = math.sqrt(n_reference * n_current / (n_reference + n_current))
    return float(np.clip(special.kolmogorov((root + 0.12 + 0.11 / root) * statistic), 0.0, 1.0))


def _area_of_abs_linear(left: _Floats, right: _Floats, width: _Floats) -> _Floats:
    """Integral of ``|d|`` over bins where ``d`` goes linearly from ``left`` to ``right``."""
    a, b = np.abs(left), np.abs(right)
    same_sign = left * right >= 0
    total = a + b
    crossing = np.divide(
        left * left + right * right, 2 * total, where=total > 0, out=np.zeros_like(total)
    )
    area: _Floats = width * np.where(same_sign, total / 2, crossing)
    return area


def wasserstein_from_cdfs(edges: _Floats, reference: _Floats, current: _Floats) -> float:
    """The area between two CDFs known at ``edges``, taking both linear between them."""
    gap = reference - current
    return float(_area_of_abs_linear(gap[:-1], gap[1:], np.diff(edges)).sum())


def wasserstein_from_moments(
    edges: _Floats,
    ref_left: _Floats,
    ref_share: _Floats,
    ref_sum: _Floats,
    cur_left: _Floats,
    cur_share: _Floats,
    cur_sum: _Floats,
) -> float:
    """The area between two CDFs over the bins of ``edges``, each side given per bin
    as its CDF at the left edge, its share of values and their sum divided by n."""
    right = edges[1:]
    signed = np.diff(edges) * (ref_left - cur_left)
    signed += (ref_share * right - ref_sum) - (cur_share * right - cur_sum)
    return float(np.abs(signed).sum())


def chisquare(reference: Any, current: Any) -> tuple[float, float]:
    """Pearson's chi-square test of homogeneity: ``(statistic, p_value)``.

    Categories empty on both sides are dropped; fewer than two left give ``(0, 1)``.
    """
    table = np.vstack(
        [np.asarray(reference, dtype=np.float64), np.asarray(current, dtype=np.float64)]
    )
    table = table[:, table.sum(axis=0) > 0]
    rows = table.sum(axis=1)
    if table.shape[1] < 2 or np.any(rows <= 0):
        return 0.0, 1.0
    expected = np.outer(rows, table.sum(axis=0)) / table.sum()
    statistic = float(np.sum((table - expected) ** 2 / expected))
    p_value = float(special.chdtrc(table.shape[1] - 1, statistic))  # chi2.sf
    return statistic, p_value


def jensenshannon(reference: Any, current: Any) -> float | None:
    """Jensen-Shannon distance (natural log) between the shares of two count vectors."""
    p = np.asarray(reference, dtype=np.float64)
    q = np.asarray(current, dtype=np.float64)
    if p.sum() <= 0 or q.sum() <= 0:
        return None
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2

    def kl(x: _Floats) -> float:
        mask = x > 0
        return float(np.sum(x[mask] * np.log(x[mask] / m[mask])))

    return math.sqrt(max((kl(p) + kl(q)) / 2, 0.0))
