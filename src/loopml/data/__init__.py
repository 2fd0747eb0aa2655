"""Data: ingest, validate, version, profile and split datasets.

Every model in loopml traces back to the exact bytes it learned from: a
:class:`~loopml.core.DatasetVersion` is named by a content hash of its canonical
data, validated against expectations, profiled (the profile is monitoring's drift
reference) and split reproducibly.

    from loopml.data import DataCatalog, expect

    catalog = DataCatalog()
    result = catalog.ingest("flights.csv", name="flights",
                            expectations=[expect.not_null("dep_time")])
    train = catalog.load("flights@1")
"""

from typing import TYPE_CHECKING

from loopml.core import lazy_exports as _lazy_exports

if TYPE_CHECKING:
    from loopml.data._catalog_api import DataCatalog, IngestResult, validate_file
    from loopml.data._diff import ColumnDiff, ProfileDiff, diff_profiles
    from loopml.data._expectations import (
        Expectation,
        Severity,
        expect,
        expectations_from_dict,
        load_expectations,
    )
    from loopml.data._profile import (
        ColumnProfile,
        DatasetProfile,
        Histogram,
        category_counts,
        histogram_counts,
        profile,
    )
    from loopml.data._report import CheckResult, ValidationReport
    from loopml.data._splits import SplitSpec, split_frames, split_indices
    from loopml.data._validation import validate

# The names below pull in pandas, pyarrow, DuckDB and pandera, which take most of a second
# to import, and the catalog pulls in the store (SQLAlchemy), which profiles and drift checks
# do without; they load on first use (PEP 562) so the CLI starts fast.
_LAZY = {
    "DataCatalog": "_catalog_api",
    "IngestResult": "_catalog_api",
    "validate_file": "_catalog_api",
    "ColumnDiff": "_diff",
    "ProfileDiff": "_diff",
    "diff_profiles": "_diff",
    "Expectation": "_expectations",
    "Severity": "_expectations",
    "expect": "_expectations",
    "expectations_from_dict": "_expectations",
    "load_expectations": "_expectations",
    "ColumnProfile": "_profile",
    "DatasetProfile": "_profile",
    "Histogram": "_profile",
    "category_counts": "_profile",
    "histogram_counts": "_profile",
    "profile": "_profile",
    "CheckResult": "_report",
    "ValidationReport": "_report",
    "SplitSpec": "_splits",
    "split_frames": "_splits",
    "split_indices": "_splits",
    "validate": "_validation",
}


__getattr__ = _lazy_exports(__name__, _LAZY, globals())


__all__ = [
    "CheckResult",
    "ColumnDiff",
    "ColumnProfile",
    "DataCatalog",
    "DatasetProfile",
    "Expectation",
    "Histogram",
    "IngestResult",
    "ProfileDiff",
    "Severity",
    "SplitSpec",
    "ValidationReport",
    "category_counts",
    "diff_profiles",
    "expect",
    "expectations_from_dict",
    "histogram_counts",
    "load_expectations",
    "profile",
    "split_frames",
    "split_indices",
    "validate",
    "validate_file",
]
