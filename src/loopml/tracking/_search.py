"""Searching runs: a small filter language, ordering and pagination.

Filters are clauses joined by ``and``, as MLflow users write them::

    metrics.accuracy > 0.9 and params.model = 'rf' and tags.team != 'x'
    attributes.status = 'FINISHED' and attributes.name LIKE 'tune-%'

Operators: ``= != < <= > >=`` for metrics (numbers) and ``= != LIKE ILIKE`` for
params, tags and the attributes ``name``, ``status``, ``id``, ``parent_id`` (plus
``< <= > >=`` on ``start_ms`` and ``end_ms``). Order by ``metrics.X``,
``params.X``, ``tags.X`` or an attribute, each optionally ``ASC``/``DESC``.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, func, literal, select

from loopml.core import ValidationError
from loopml.store import schema
from loopml.tracking._repo import RUN_COLUMNS

__all__ = [
    "Clause",
    "apply_order",
    "decode_page_token",
    "encode_page_token",
    "parse_filter",
    "where",
]

R = schema.runs
_ENTITY = {
    "metric": "metrics",
    "metrics": "metrics",
    "param": "params",
    "params": "params",
    "tag": "tags",
    "tags": "tags",
    "attribute": "attributes",
    "attributes": "attributes",
    "attr": "attributes",
    "run": "attributes",
}
_ATTRIBUTES = {"name", "status", "id", "parent_id", "start_ms", "end_ms", "experiment_id"}
_NUMERIC_ATTRIBUTES = {"start_ms", "end_ms"}
_TOKEN = re.compile(
    r"""\s*(?:
        (?P<ident>[A-Za-z_]+)\.(?:`(?P<qname>[^`]+)`|"(?P<dname>[^"]+)"|(?P<name>[\w\-./:]+))
      | (?P<op>!=|<=|>=|=|<|>|\bLIKE\b|\bILIKE\b)
      | (?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)
      | '(?P<squote>(?:[^']|'')*)'
      | "(?P<dquote>[^"]*)"
      | (?P<and>\bAND\b)
    )""",
    re.VERBOSE | re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Clause:
    """One ``entity.key OP value`` comparison."""

    entity: str
    key: str
    op: str
    value: str | float


def _tokens(text: str) -> list[tuple[str, Any]]:
    tokens: list[tuple[str, Any]] = []
    position = 0
    text = text.strip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise ValidationError(
                f"cannot parse filter {text!r} at character {position}: "
                f"{text[position : position + 20]!r}"
            )
        position = match.end()
        kind = match.lastgroup
        if match.group("ident") is not None:
            name = match.group("qname") or match.group("dname") or match.group("name")
            tokens.append(("ident", (match.group("ident").lower(), name)))
        elif kind == "op":
            tokens.append(("op", match.group("op").upper()))
        elif kind == "number":
            tokens.append(("value", float(match.group("number"))))
        elif kind == "squote":
            tokens.append(("value", match.group("squote").replace("''", "'")))
        elif kind == "dquote":
            tokens.append(("value", match.group("dquote")))
        else:
            tokens.append(("and", None))
    return tokens


def parse_filter(text: str | None) -> list[Clause]:
    """Parse a filter string into clauses; an empty filter matches every run."""
    if not text or not text.strip():
        return []
    tokens = _tokens(text)
    clauses: list[Clause] = []
    for index in range(0, len(tokens), 4):
        group = tokens[index : index + 3]
        kinds = [kind for kind, _ in group]
        if kinds != ["ident", "op", "value"]:
            raise ValidationError(
                f"filter {text!r}: expected clauses like metrics.acc > 0.9 joined by AND"
            )
        if index + 3 < len(tokens) and tokens[index + 3][0] != "and":
            raise ValidationError(f"filter {text!r}: expected AND between clauses")
        (raw_entity, key), op, value = (v for _, v in group)
        clauses.append(_clause(text, raw_entity, key, op, value))
    if tokens and tokens[-1][0] == "and":
        raise ValidationError(f"filter {text!r} ends with AND")
    return clauses


def _clause(text: str, raw_entity: str, key: str, op: str, value: str | float) -> Clause:
    entity = _ENTITY.get(raw_entity)
    if entity is None:
        raise ValidationError(
            f"filter {text!r}: unknown entity {raw_entity!r}; "
            "expected metrics, params, tags or attributes"
        )
    numeric = entity == "metrics" or (entity == "attributes" and key in _NUMERIC_ATTRIBUTES)
    if entity == "attributes" and key not in _ATTRIBUTES:
        raise ValidationError(
            f"filter {text!r}: unknown attribute {key!r}; "
            f"expected one of {', '.join(sorted(_ATTRIBUTES))}"
        )
    if numeric and (op in {"LIKE", "ILIKE"} or not isinstance(value, float)):
        raise ValidationError(
            f"filter {text!r}: {entity}.{key} compares with a number using = != < <= > >="
        )
    if not numeric and (op in {"<", "<=", ">", ">="} or isinstance(value, float)):
        raise ValidationError(
            f"filter {text!r}: {entity}.{key} compares with a quoted string using = != LIKE ILIKE"
        )
    return Clause(entity=entity, key=key, op=op, value=value)


def _compare(column: Any, op: str, value: Any) -> ColumnElement[bool]:
    if op == "LIKE":
        result = column.like(value)
    elif op == "ILIKE":
        result = func.lower(column).like(func.lower(literal(value)))
    else:
        result = {
            "=": column == value,
            "!=": column != value,
            "<": column < value,
            "<=": column <= value,
            ">": column > value,
            ">=": column >= value,
        }[op]
    condition: ColumnElement[bool] = result
    return condition


def where(clauses: list[Clause]) -> ColumnElement[bool]:
    """SQL condition on ``runs`` for the parsed clauses."""
    conditions: list[ColumnElement[bool]] = []
    tables = {"metrics": schema.latest_metrics, "params": schema.params, "tags": schema.tags}
    for clause in clauses:
        if clause.entity == "attributes":
            value = int(clause.value) if clause.key in _NUMERIC_ATTRIBUTES else clause.value
            conditions.append(_compare(R.c[clause.key], clause.op, value))
            continue
        table = tables[clause.entity]
        conditions.append(
            exists().where(
                table.c.run_id == R.c.id,
                table.c.key == clause.key,
                _compare(table.c.value, clause.op, clause.value),
            )
        )
    return and_(True, *conditions)


def apply_order(query: Select[Any], order_by: list[str] | None) -> Select[Any]:
    """Add ORDER BY for expressions like ``metrics.acc DESC``; ties by newest start, then id."""
    tables = {"metrics": schema.latest_metrics, "params": schema.params, "tags": schema.tags}
    for index, expression in enumerate(order_by or []):
        parts = expression.strip().rsplit(None, 1)
        descending = len(parts) == 2 and parts[1].upper() == "DESC"
        subject = (
            parts[0]
            if len(parts) == 2 and parts[1].upper() in {"ASC", "DESC"}
            else expression.strip()
        )
        try:
            tokens = _tokens(subject)
        except ValidationError:
            tokens = []
        if len(tokens) != 1 or tokens[0][0] != "ident":
            raise ValidationError(f"order_by {expression!r}: expected e.g. 'metrics.acc DESC'")
        raw_entity, key = tokens[0][1]
        entity = _ENTITY.get(raw_entity)
        if entity == "attributes" and key in _ATTRIBUTES:
            column: Any = R.c[key]
        elif entity in tables:
            alias = tables[entity].alias(f"order_{index}")
            query = query.outerjoin(alias, (alias.c.run_id == R.c.id) & (alias.c.key == key))
            column = alias.c.value
        else:
            raise ValidationError(
                f"order_by {expression!r}: expected metrics.X, params.X, tags.X or attributes.X"
            )
        query = query.order_by(
            column.desc().nulls_last() if descending else column.asc().nulls_last()
        )
    return query.order_by(R.c.start_ms.desc(), R.c.id)


def encode_page_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def decode_page_token(token: str | None) -> int:
    if not token:
        return 0
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode()))["offset"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValidationError(
            f"page_token {token!r} is not a token returned by search_runs"
        ) from exc
    if not isinstance(offset, int) or offset < 0:
        raise ValidationError(f"page_token {token!r} is not a token returned by search_runs")
    return offset


def search_query(
    experiment_ids: list[str], clauses: list[Clause], order_by: list[str] | None
) -> Select[Any]:
    """SELECT the run columns for a search, before LIMIT/OFFSET."""
    query = select(*RUN_COLUMNS).where(R.c.experiment_id.in_(experiment_ids), where(clauses))
    return apply_order(query, order_by)
