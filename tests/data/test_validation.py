"""Data validation: expectations in Python and in files, checked on pandera, reported by loopml."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from rich.console import Console

from loopml.core import ConfigError, NotFoundError, ValidationError
from loopml.data._expectations import (
    Expectation,
    Severity,
    expect,
    expectations_from_dict,
    load_expectations,
)
from loopml.data._report import CheckResult, ValidationReport
from loopml.data._validation import validate

FILES = Path(__file__).parent / "files" / "validation"
NOW = datetime(2024, 1, 10, tzinfo=UTC)


def margin_positive(df: pd.DataFrame) -> pd.Series:
    """A custom check importable by path, as files name them."""
    return df["price"] > df["cost"]


def one(data: Any, exp: Expectation, **kwargs: Any) -> CheckResult:
    """Validate with a single expectation and return its result."""
    report = validate(data, [exp], **kwargs)
    assert len(report.results) == 1
    return report.results[0]


@pytest.fixture
def people() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": [1, 2, 3, 4, 5],
            "age": [30, 200, 41, -3, 150],
            "carrier": ["AA", "UA", "XX", None, "YY"],
            "price": [10.0, 5.0, 8.0, 2.0, 9.0],
            "cost": [1.0, 6.0, 2.0, 3.0, 1.0],
            "ts": pd.to_datetime(["2024-01-01", "2024-01-05", None, "2024-01-08", "2024-01-02"]),
        }
    )


# --- columns -----------------------------------------------------------------------------


def test_columns_happy(people: pd.DataFrame) -> None:
    result = one(people, expect.columns(required=["id", "age"], allow_extra=True))
    assert result.passed
    assert result.failing_rows is None


def test_columns_sad_missing_column_named(people: pd.DataFrame) -> None:
    result = one(people, expect.columns(required=["id", "weight"]))
    assert not result.passed
    assert result.examples == ["weight"]
    assert "missing required column(s) 'weight'" in result.message


def test_columns_sad_extra_column_when_not_allowed(people: pd.DataFrame) -> None:
    exp = expect.columns(required=["id", "age", "carrier", "price", "cost"], allow_extra=False)
    result = one(people, exp)
    assert not result.passed
    assert result.examples == ["ts"]
    assert "unexpected column(s) 'ts'" in result.message


# --- column_type ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        ([1, 2, None], "int"),
        ([1.5, None, 2.0], "float"),
        ([1.5, 2.0], "number"),
        ([1, 2], "number"),
        (["a", None, "b"], "string"),
        ([True, False], "bool"),
        (pd.to_datetime(["2024-01-01", None]), "datetime"),
    ],
)
def test_column_type_happy(values: Any, kind: str) -> None:
    frame = pd.DataFrame({"x": pd.array(values) if kind == "int" else values})
    assert one(frame, expect.column_type("x", kind)).passed


def test_column_type_sad_strings_for_int_lists_examples() -> None:
    frame = pd.DataFrame({"age": ["abc", "x", None]})
    result = one(frame, expect.column_type("age", "int"))
    assert not result.passed
    assert result.failing_rows == 2
    assert result.examples == ["abc", "x"]
    assert result.message == "column 'age': expected int, found string (examples: 'abc', 'x')"


def test_column_type_sad_mixed_object_column_counts_only_wrong_values() -> None:
    frame = pd.DataFrame({"n": pd.Series([1, "two", 3, 4.5, None], dtype=object)})
    result = one(frame, expect.column_type("n", "int"))
    assert result.failing_rows == 2
    assert result.examples == ["two", 4.5]
    assert "found float, string" in result.message


def test_column_type_sad_float_for_int_counts_non_null_values() -> None:
    frame = pd.DataFrame({"age": [1.0, None, 3.5]})
    result = one(frame, expect.column_type("age", "int"))
    assert result.failing_rows == 2
    assert "expected int, found float" in result.message


# --- not_null ------------------------------------------------------------------------------


def test_not_null_happy(people: pd.DataFrame) -> None:
    assert one(people, expect.not_null("id")).passed


def test_not_null_sad_counts_null_rows(people: pd.DataFrame) -> None:
    result = one(people, expect.not_null("carrier"))
    assert not result.passed
    assert result.failing_rows == 1
    assert result.total_rows == 5
    assert "found 1 null value (first rows: 3)" in result.message


# --- between -------------------------------------------------------------------------------


def test_between_happy(people: pd.DataFrame) -> None:
    assert one(people, expect.between("age", min=-10, max=300)).passed


def test_between_sad_out_of_range_counts_rows(people: pd.DataFrame) -> None:
    result = one(people, expect.between("age", min=0, max=120))
    assert result.failing_rows == 3
    assert result.examples == [200, -3, 150]
    assert "expected values between 0 and 120, found 3 values outside" in result.message


def test_between_sad_only_min_bound(people: pd.DataFrame) -> None:
    result = one(people, expect.between("age", min=0))
    assert result.failing_rows == 1
    assert result.examples == [-3]


def test_between_happy_ignores_nulls() -> None:
    frame = pd.DataFrame({"x": [1.0, None, 2.0]})
    assert one(frame, expect.between("x", max=2)).passed


def test_between_sad_non_numeric_column_fails_clearly(people: pd.DataFrame) -> None:
    result = one(people, expect.between("carrier", min=0))
    assert not result.passed
    assert result.failing_rows is None
    assert result.message == "column 'carrier': expected a numeric column, found string"


# --- allowed_values -----------------------------------------------------------------------


def test_allowed_values_happy(people: pd.DataFrame) -> None:
    assert one(people, expect.allowed_values("carrier", ["AA", "UA", "XX", "YY"])).passed


def test_allowed_values_sad_counts_other_values(people: pd.DataFrame) -> None:
    result = one(people, expect.allowed_values("carrier", ["AA", "UA"]))
    assert result.failing_rows == 2
    assert result.examples == ["XX", "YY"]
    assert "expected one of 'AA', 'UA'" in result.message


# --- unique --------------------------------------------------------------------------------


def test_unique_happy(people: pd.DataFrame) -> None:
    assert one(people, expect.unique("id")).passed


def test_unique_sad_counts_every_row_sharing_a_value() -> None:
    frame = pd.DataFrame({"id": [1, 2, 2, 3, 3, 3, None, None]})
    result = one(frame, expect.unique("id"))
    assert result.failing_rows == 5
    assert result.examples == [2.0, 3.0]
    assert "found 5 rows sharing 2 values" in result.message


def test_unique_sad_composite_key() -> None:
    frame = pd.DataFrame({"a": [1, 1, 1, 2], "b": ["x", "x", "y", "x"]})
    result = one(frame, expect.unique(["a", "b"]))
    assert result.column == "a, b"
    assert result.failing_rows == 2
    assert result.examples == [[1, "x"]]


def test_unique_happy_composite_key_differs_in_one_column() -> None:
    frame = pd.DataFrame({"a": [1, 1], "b": ["x", "y"]})
    assert one(frame, expect.unique(["a", "b"])).passed


# --- row_count -----------------------------------------------------------------------------


def test_row_count_happy(people: pd.DataFrame) -> None:
    assert one(people, expect.row_count(min=1, max=None)).passed


def test_row_count_sad_too_many_rows(people: pd.DataFrame) -> None:
    result = one(people, expect.row_count(min=1, max=3))
    assert not result.passed
    assert result.message == "expected between 1 and 3 rows, found 5"


def test_row_count_sad_empty_data() -> None:
    result = one(pd.DataFrame({"a": pd.Series([], dtype="int64")}), expect.row_count(min=1))
    assert not result.passed
    assert result.total_rows == 0


# --- fresh ---------------------------------------------------------------------------------


def test_fresh_happy(people: pd.DataFrame) -> None:
    assert one(people, expect.fresh("ts", max_age="2d", now=NOW)).passed


def test_fresh_sad_newest_too_old(people: pd.DataFrame) -> None:
    result = one(people, expect.fresh("ts", max_age="36h", now=NOW))
    assert not result.passed
    assert result.examples == ["2024-01-08T00:00:00+00:00"]
    assert "(2d old)" in result.message


def test_fresh_happy_timezone_aware_column_and_timedelta() -> None:
    frame = pd.DataFrame({"ts": pd.to_datetime(["2024-01-10T01:00:00+02:00"])})
    now = datetime(2024, 1, 9, 23, 30, tzinfo=UTC)
    assert one(frame, expect.fresh("ts", max_age=timedelta(minutes=31), now=now)).passed


def test_fresh_sad_not_a_datetime_column(people: pd.DataFrame) -> None:
    result = one(people, expect.fresh("carrier", max_age="1d", now=NOW))
    assert result.message == "column 'carrier': expected a datetime column, found string"


def test_fresh_sad_no_timestamps() -> None:
    frame = pd.DataFrame({"ts": pd.to_datetime(pd.Series([None, None]))})
    result = one(frame, expect.fresh("ts", max_age="1d", now=NOW))
    assert not result.passed
    assert "found no timestamps" in result.message


# --- custom --------------------------------------------------------------------------------


def test_custom_happy() -> None:
    frame = pd.DataFrame({"price": [2, 3], "cost": [1, 2]})
    assert one(frame, expect.custom("margin_positive", margin_positive)).passed


def test_custom_sad_counts_false_rows_with_row_examples(people: pd.DataFrame) -> None:
    result = one(people[["price", "cost"]], expect.custom("margin", margin_positive))
    assert result.name == "margin"
    assert result.failing_rows == 2
    assert result.examples == [{"price": 5.0, "cost": 6.0}, {"price": 2.0, "cost": 3.0}]
    assert "found 2 rows False (first rows: 1, 3)" in result.message


def test_custom_sad_returns_false(people: pd.DataFrame) -> None:
    result = one(people, expect.custom("never", lambda df: False))
    assert not result.passed
    assert result.failing_rows is None


def test_custom_sad_function_raises_is_reported(people: pd.DataFrame) -> None:
    result = one(people, expect.custom("boom", lambda df: df["nope"] > 0))
    assert not result.passed
    assert result.message == "custom check 'boom': the function raised KeyError: 'nope'"


def test_custom_sad_wrong_return_type_is_reported(people: pd.DataFrame) -> None:
    result = one(people, expect.custom("count", lambda df: df["age"]))
    assert "must return a boolean Series" in result.message


def test_custom_happy_function_given_by_path() -> None:
    frame = pd.DataFrame({"price": [2], "cost": [1]})
    path = f"{__name__}:margin_positive"
    assert one(frame, expect.custom("margin", path)).passed


# --- missing columns, severity, arguments -------------------------------------------------


@pytest.mark.parametrize(
    "exp",
    [
        expect.column_type("weight", "int"),
        expect.not_null("weight"),
        expect.between("weight", min=0),
        expect.allowed_values("weight", [1]),
        expect.unique(["id", "weight"]),
        expect.fresh("weight", max_age="1d"),
    ],
)
def test_check_on_missing_column_sad_fails_with_message(
    people: pd.DataFrame, exp: Expectation
) -> None:
    result = one(people, exp)
    assert not result.passed
    assert result.failing_rows is None
    assert "'weight' not found in DataFrame" in result.message


def test_severity_warn_failure_keeps_report_passed(people: pd.DataFrame) -> None:
    report = validate(people, [expect.not_null("id"), expect.not_null("carrier", severity="warn")])
    assert report.passed
    assert report.failures == []
    assert [r.column for r in report.warnings] == ["carrier"]


def test_severity_fail_failure_fails_report(people: pd.DataFrame) -> None:
    exps = [expect.not_null("carrier"), expect.between("age", max=100, severity=Severity.WARN)]
    report = validate(people, exps)
    assert not report.passed
    assert [r.name for r in report.failures] == ["not_null"]
    assert [r.severity for r in report.results] == ["fail", "warn"]


@pytest.mark.parametrize(
    ("exp", "argument"),
    [
        (expect.not_null("age", severity="error"), "severity"),
        (expect.column_type("age", "integer"), "dtype"),
        (expect.between("age"), "min"),
        (expect.between("age", min=5, max=1), "min"),
        (expect.between("age", min="0"), "min"),  # type: ignore[arg-type]
        (expect.allowed_values("c", "AA"), "values"),
        (expect.unique([]), "columns"),
        (expect.row_count(min=-1), "min"),
        (expect.fresh("ts", max_age="2 days"), "max_age"),
        (expect.custom("c", "no_such_module_xyz:f"), "function"),
        (expect.columns(required="id"), "required"),
    ],
)
def test_check_args_sad_names_the_argument(exp: Expectation, argument: str) -> None:
    with pytest.raises(ValidationError, match=f"argument '{argument}'"):
        exp.check_args()


def test_validate_sad_checks_arguments_before_reading(people: pd.DataFrame) -> None:
    with pytest.raises(ValidationError, match=r"expect.between\('age'\): argument 'max'"):
        validate(people, [expect.between("age", max="high")])  # type: ignore[arg-type]


def test_validate_sad_unsupported_data_type() -> None:
    with pytest.raises(ValidationError, match="got list"):
        validate([1, 2], [expect.row_count(min=1)])


def test_validate_sad_missing_parquet_path(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="no such Parquet file"):
        validate(tmp_path / "nope.parquet", [expect.row_count(min=1)])


def test_validate_sad_not_parquet(tmp_path: Path) -> None:
    path = tmp_path / "x.parquet"
    path.write_text("not parquet")
    with pytest.raises(ValidationError, match="not a readable Parquet file"):
        validate(path, [expect.row_count(min=1)])


# --- storing expectations ------------------------------------------------------------------


def python_form() -> list[Expectation]:
    """The expectations that files/expectations.{toml,yaml} declare."""
    return [
        expect.columns(required=["id", "age", "carrier", "ts"], allow_extra=True),
        expect.column_type("id", "int"),
        expect.not_null("id"),
        expect.unique("id"),
        expect.column_type("age", "int", severity="warn"),
        expect.between("age", min=0, max=120, severity="warn"),
        expect.allowed_values("carrier", ["AA", "UA"]),
        expect.column_type("ts", "datetime"),
        expect.fresh("ts", max_age="2d"),
        expect.row_count(min=1, max=1000000),
        expect.unique(["carrier", "id"]),
        expect.custom(
            "margin_positive", "tests.data.test_validation:margin_positive", severity="warn"
        ),
    ]


def test_to_dict_round_trip_happy_every_kind() -> None:
    exps = [*python_form(), expect.fresh("ts", max_age=timedelta(hours=3), now=NOW)]
    dicts = json.loads(json.dumps([e.to_dict() for e in exps]))
    rebuilt = expectations_from_dict(dicts)
    assert [e.to_dict() for e in rebuilt] == dicts
    assert rebuilt[:-1] == exps[:-1]
    assert rebuilt[-1].to_dict()["now"] == NOW.isoformat()


def test_to_dict_happy_custom_callable_stored_by_path() -> None:
    stored = expect.custom("margin", margin_positive).to_dict()
    assert stored["function"] == "tests.data.test_validation:margin_positive"
    assert expectations_from_dict(stored)[0].to_dict() == stored


def test_to_dict_sad_custom_lambda_cannot_be_stored() -> None:
    with pytest.raises(ValidationError, match="cannot be stored"):
        expect.custom("c", lambda df: True).to_dict()


def test_expectations_from_dict_sad_unknown_kind() -> None:
    with pytest.raises(ValidationError, match="'kind' must be one of"):
        expectations_from_dict({"kind": "nonsense"})


def test_expectations_from_dict_sad_unknown_key() -> None:
    with pytest.raises(ValidationError, match="unknown key"):
        expectations_from_dict({"kind": "not_null", "column": "a", "colour": "red"})


# --- files ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["expectations.toml", "expectations.yaml"])
def test_load_expectations_happy_same_as_python_form(name: str) -> None:
    assert load_expectations(FILES / name) == python_form()


def test_expectations_from_dict_happy_file_format_document() -> None:
    exps = expectations_from_dict({"columns": {"id": {"nullable": False}}})
    assert exps == [expect.columns(required=["id"]), expect.not_null("id")]


def test_load_expectations_happy_allow_extra_false_without_columns(tmp_path: Path) -> None:
    path = tmp_path / "e.yml"
    path.write_text("table:\n  allow_extra_columns: false\n")
    assert load_expectations(path) == [expect.columns(required=[], allow_extra=False)]


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("columns:\n  age: {minimum: 0}\n", r"columns\.age\.minimum is not a known key"),
        ("colums: {}\n", r"colums is not a known key; expected some of columns, table, custom"),
        ("columns:\n  age: {min: zero}\n", r"columns\.age\.min must be a number or None"),
        ("columns:\n  age: {nullable: 'no'}\n", r"columns\.age\.nullable must be true or false"),
        ("columns:\n  ts: {max_age: 2 days}\n", r"columns\.ts\.max_age must be a duration"),
        ("columns:\n  age: {type: integer}\n", r"columns\.age\.type must be one of int, float"),
        ("columns:\n  age: {allowed: AA}\n", r"columns\.age\.allowed must be a list"),
        ("columns:\n  age: {min: 5, max: 1}\n", r"columns\.age\.min must not exceed max"),
        ("columns:\n  age: {severity: error}\n", r"columns\.age\.severity must be 'warn' or"),
        ("columns: [a, b]\n", r"columns must be a table"),
        ("table:\n  row_count: {min: -1}\n", r"table\.row_count\.min must be a non-negative"),
        (
            "table:\n  unique: [[a, 3]]\n",
            r"table\.unique\[0\] must be a non-empty column name; got 3",
        ),
        ("custom:\n  - {name: c}\n", r"custom\[0\]\.function is required"),
        (
            "custom:\n  - {name: c, function: 'no_such_module_xyz:f'}\n",
            r"custom\[0\]\.function must name an importable function; importing "
            r"'no_such_module_xyz:f' failed",
        ),
        ("columns: {a: {type: int}\n", r"not valid YAML"),
    ],
)
def test_load_expectations_sad_yaml_errors_name_file_and_key(
    tmp_path: Path, text: str, match: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=match) as info:
        load_expectations(path)
    assert str(path) in str(info.value)


def test_load_expectations_sad_unparsable_toml(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[columns.age\ntype = 'int'\n")
    with pytest.raises(ConfigError, match=r"bad\.toml: not valid TOML"):
        load_expectations(path)


def test_load_expectations_sad_toml_wrong_value_type(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[columns.age]\nmax = '120'\n")
    with pytest.raises(ConfigError, match=r"columns\.age\.max must be a number or None; got '120'"):
        load_expectations(path)


def test_load_expectations_sad_unknown_extension(tmp_path: Path) -> None:
    path = tmp_path / "e.json"
    path.write_text("{}")
    with pytest.raises(ConfigError, match=r"must end in \.toml, \.yaml or \.yml; got '\.json'"):
        load_expectations(path)


def test_load_expectations_sad_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read expectations file"):
        load_expectations(tmp_path / "nope.yaml")


# --- the report ----------------------------------------------------------------------------


def test_report_to_dict_round_trips_exactly(people: pd.DataFrame) -> None:
    exps = [
        expect.columns(required=["id", "x"]),
        expect.unique("age"),
        expect.between("age", min=0, max=120, severity="warn"),
        expect.fresh("ts", max_age="1d", now=NOW),
        expect.custom("margin", margin_positive),
    ]
    report = validate(people, exps)
    stored = json.loads(json.dumps(report.to_dict()))
    assert stored == report.to_dict()
    assert ValidationReport.from_dict(stored) == report


def test_report_from_dict_sad_unknown_format() -> None:
    with pytest.raises(ValidationError, match="must have format 1; got 99"):
        ValidationReport.from_dict({"format": 99, "results": [], "total_rows": 0})


def test_report_summary_counts_fail_and_warn(people: pd.DataFrame) -> None:
    exps = [
        expect.not_null("id"),
        expect.not_null("carrier"),
        expect.between("age", max=100, severity="warn"),
    ]
    assert validate(people, exps).summary() == "2 checks failed (1 fail, 1 warn) of 3"
    assert validate(people, exps[:1]).summary() == "all 1 check passed"


def test_report_results_in_declaration_order(people: pd.DataFrame) -> None:
    exps = [expect.row_count(min=1), expect.not_null("age"), expect.columns(required=["id"])]
    assert [r.name for r in validate(people, exps).results] == ["row_count", "not_null", "columns"]


def test_report_to_table_renders_failed_checks(people: pd.DataFrame) -> None:
    exps = [
        expect.not_null("id"),
        expect.between("age", min=0, max=120),
        expect.allowed_values("carrier", ["AA", "UA"], severity="warn"),
    ]
    console = Console(record=True, width=120)
    console.print(validate(people, exps))
    text = console.export_text()
    assert "2 checks failed (1 fail, 1 warn) of 3" in text
    assert "between" in text
    assert "3 (60.0%)" in text
    assert "200, -3, 150" in text
    assert "allowed_values" in text
    assert "'XX', 'YY'" in text
    assert "not_null" not in text


# --- Arrow and Parquet input, streamed -----------------------------------------------------


@pytest.fixture
def parquet_file(tmp_path: Path) -> Path:
    """20 rows in 4 row groups: ids repeat across groups, ages out of range in each."""
    ids = [*range(18), 3, 12]
    ages = [(-1 if i % 5 == 0 else 20 + i) for i in range(20)]
    table = pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "age": pa.array(ages, pa.int32()),
            "carrier": [None if i % 7 == 0 else "AA" for i in range(20)],
            "ts": pa.array(
                [datetime(2024, 1, 1) + timedelta(hours=i) for i in range(20)],
                pa.timestamp("us", tz="UTC"),
            ),
        }
    )
    path = tmp_path / "data.parquet"
    pq.write_table(table, path, row_group_size=5)
    assert pq.ParquetFile(path).metadata.num_row_groups == 4
    return path


def streamed_exps() -> list[Expectation]:
    return [
        expect.column_type("age", "int"),
        expect.between("age", min=0),
        expect.not_null("carrier"),
        expect.unique("id"),
        expect.row_count(min=20, max=20),
        expect.fresh("ts", max_age="1h", now=datetime(2024, 1, 1, 19, 30, tzinfo=UTC)),
        expect.custom("even_age", lambda df: df["age"] % 2 == 0),
    ]


def test_validate_parquet_streamed_happy_aggregates_across_batches(parquet_file: Path) -> None:
    report = validate(parquet_file, streamed_exps(), batch_size=3)
    by_name = {r.name: r for r in report.results}
    assert by_name["column_type"].passed
    assert by_name["between"].failing_rows == 4
    assert by_name["between"].examples == [-1]
    assert by_name["not_null"].failing_rows == 3
    assert "first rows: 0, 7, 14" in by_name["not_null"].message
    assert by_name["unique"].failing_rows == 4
    assert by_name["unique"].examples == [3, 12]
    assert by_name["row_count"].passed
    assert by_name["fresh"].passed
    assert by_name["even_age"].failing_rows == 12
    assert all(r.total_rows == 20 for r in report.results)


def test_validate_parquet_streamed_same_as_in_memory(parquet_file: Path) -> None:
    table = pq.read_table(parquet_file)
    streamed = validate(parquet_file, streamed_exps(), batch_size=4)
    assert validate(table, streamed_exps(), batch_size=7) == streamed
    frame = table.to_pandas(types_mapper={pa.int32(): pd.Int32Dtype()}.get)
    assert (
        validate(frame, streamed_exps()).to_dict()["results"][1:]
        == (streamed.to_dict()["results"][1:])
    )


def test_validate_parquet_sad_batch_size_not_positive(parquet_file: Path) -> None:
    with pytest.raises(ValidationError, match="batch_size must be a positive integer; got 0"):
        validate(parquet_file, [expect.row_count(min=1)], batch_size=0)


def test_validate_happy_frame_with_integer_column_labels() -> None:
    frame = pd.DataFrame({0: [1, None], 1: ["a", "b"]})
    result = one(frame, expect.not_null("0"))
    assert result.failing_rows == 1
