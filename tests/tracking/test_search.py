"""Searching runs: filters, ordering, pagination and bad queries."""

from __future__ import annotations

import pytest

from loopml.core import Settings, ValidationError
from loopml.tracking import Client


@pytest.fixture
def client(settings: Settings) -> Client:
    client = Client(settings)
    for i, (model, acc) in enumerate([("rf", 0.7), ("gbm", 0.9), ("rf", 0.8), ("lr", 0.6)]):
        with client.start_run("search", name=f"run-{i}", params={"model": model}) as run:
            run.log_metric("acc", acc)
            run.set_tag("parity", "even" if i % 2 == 0 else "odd")
    with client.start_run("other", name="elsewhere") as run:
        run.log_metric("acc", 0.99)
    return client


def _names(runs: list) -> list[str]:  # type: ignore[type-arg]
    return [r.name for r in runs]


def test_metric_filter_and_order(client: Client) -> None:
    runs = client.search_runs("search", filter="metrics.acc > 0.65", order_by=["metrics.acc DESC"])
    assert _names(runs) == ["run-1", "run-2", "run-0"]


def test_param_and_tag_filters_combine(client: Client) -> None:
    runs = client.search_runs(
        "search", filter="params.model = 'rf' and tags.parity = 'even'", order_by=["metrics.acc"]
    )
    assert _names(runs) == ["run-0", "run-2"]


def test_like_and_attribute_filters(client: Client) -> None:
    assert _names(
        client.search_runs(
            "search", filter="attributes.name LIKE 'run-%'", order_by=["attributes.name"]
        )
    ) == ["run-0", "run-1", "run-2", "run-3"]
    assert _names(client.search_runs("search", filter="params.model ILIKE 'GB%'")) == ["run-1"]
    assert len(client.search_runs("search", filter="attributes.status = 'FINISHED'")) == 4


def test_not_equal_and_order_by_param(client: Client) -> None:
    runs = client.search_runs(
        "search", filter="params.model != 'rf'", order_by=["params.model ASC"]
    )
    assert _names(runs) == ["run-1", "run-3"]


def test_all_experiments_when_none_given(client: Client) -> None:
    runs = client.search_runs(None, order_by=["metrics.acc DESC"], max_results=1)
    assert _names(runs) == ["elsewhere"]
    assert len(client.search_runs(["search", "other"])) == 5


def test_default_order_is_newest_first(client: Client) -> None:
    starts = [r.start_ms for r in client.search_runs("search")]
    assert starts == sorted(starts, reverse=True)


def test_pagination_walks_every_run_once(client: Client) -> None:
    seen: list[str] = []
    token = None
    while True:
        page = client.search_runs(
            "search", order_by=["metrics.acc"], max_results=3, page_token=token
        )
        seen.extend(_names(page))
        token = page.next_page_token
        if token is None:
            break
    assert seen == ["run-3", "run-0", "run-2", "run-1"]


def test_quoted_names_with_dots(settings: Settings) -> None:
    client = Client(settings)
    with client.start_run("q") as run:
        run.log_metric("val.auc", 0.8)
    assert len(client.search_runs("q", filter="metrics.`val.auc` >= 0.8")) == 1
    assert len(client.search_runs("q", filter='metrics."val.auc" < 0.8')) == 0


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("metrics.acc >", "expected clauses like metrics.acc > 0.9"),
        ("metrics.acc > 'high'", "metrics.acc compares with a number"),
        ("params.model > 'a'", "params.model compares with a quoted string"),
        ("colour.x = 'a'", "unknown entity 'colour'"),
        ("attributes.size = 'a'", "unknown attribute 'size'"),
        ("metrics.acc > 1 or metrics.acc < 0", "cannot parse filter"),
        ("metrics.acc > 1 and", "ends with AND|expected clauses"),
    ],
)
def test_sad_bad_filter_says_what_is_wrong(client: Client, query: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        client.search_runs("search", filter=query)


def test_sad_bad_order_and_paging(client: Client) -> None:
    with pytest.raises(ValidationError, match="order_by 'size DESC'"):
        client.search_runs("search", order_by=["size DESC"])
    with pytest.raises(ValidationError, match="max_results must be between 1 and 50000; got 0"):
        client.search_runs("search", max_results=0)
    with pytest.raises(ValidationError, match="page_token 'garbage' is not a token"):
        client.search_runs("search", page_token="garbage")
