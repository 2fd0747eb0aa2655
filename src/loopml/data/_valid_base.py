"""The expectation base: a small frozen record of what a dataset must look like.

Each kind stores its keyword arguments verbatim and checks them only in
:meth:`Expectation.check_args`, which :func:`loopml.data.validate` and the file
loader call; a record is therefore cheap to build, compare and store
(:meth:`Expectation.to_dict` / :meth:`Expectation.from_dict`). Evaluating them
against data is the job of ``_validation``; this module knows no pandas.
"""

from __future__ import annotations

import abc
import enum
import importlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import timedelta
from typing import Any, ClassVar, NoReturn, cast

from loopml.core import ValidationError

__all__ = [
    "TYPE_KINDS",
    "ArgumentError",
    "Expectation",
    "Severity",
    "function_path",
    "got",
    "import_function",
    "is_number",
    "parse_duration",
]

TYPE_KINDS = ("int", "float", "number", "string", "bool", "datetime")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_KINDS: dict[str, type[Expectation]] = {}


class Severity(enum.StrEnum):
    """What a failed check means: ``"fail"`` fails the report, ``"warn"`` only warns."""

    WARN = "warn"
    FAIL = "fail"


class ArgumentError(ValidationError):
    """An expectation argument is wrong; carries which one, so a file loader can name its key."""

    def __init__(self, where: str, argument: str, problem: str) -> None:
        super().__init__(f"{where}: argument {argument!r} {problem}")
        self.argument = argument
        self.problem = problem


def parse_duration(text: str) -> timedelta:
    """Parse ``"90s"``, ``"15m"``, ``"6h"``, ``"2d"`` or ``"1w"`` into a timedelta.

    Raises:
        ValidationError: the text is not one number followed by one of s, m, h, d, w.
    """
    match = _DURATION.match(text)
    if match is None:
        raise ValidationError(
            f"must be a duration like '90s', '15m', '6h', '2d' or '1w'; got {text!r}"
        )
    return timedelta(seconds=float(match.group(1)) * _UNIT_SECONDS[match.group(2)])


def is_number(value: object) -> bool:
    """True for an int or float that is not a bool."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def got(value: object) -> str:
    """``got <repr> (<type>)``, the way error messages quote what they received."""
    return f"got {value!r} ({type(value).__name__})"


def function_path(function: Callable[..., Any]) -> str:
    """The ``module:qualname`` path that imports ``function`` back, or raise ValidationError."""
    module = getattr(function, "__module__", None)
    qualname = getattr(function, "__qualname__", None)
    if not module or not qualname or "<" in qualname:
        raise ValidationError(
            f"function {function!r} cannot be stored: only a module-level function, "
            "importable as 'module:name', can be; define it in a module instead of a lambda"
        )
    return f"{module}:{qualname}"


def import_function(path: str) -> Callable[..., Any]:
    """Import ``"pkg.module:name"`` (or ``"pkg.module.name"``) and return the callable.

    Raises:
        ValidationError: the module or attribute cannot be imported, or is not callable.
    """
    module_name, _, attribute = path.partition(":") if ":" in path else path.rpartition(".")
    if not module_name or not attribute:
        raise ValidationError(f"must be a dotted path like 'mypkg.checks:name'; got {path!r}")
    try:
        target: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise ValidationError(
            f"must name an importable function; importing {path!r} failed: {exc}"
        ) from exc
    if not callable(target):
        raise ValidationError(f"must name a callable; {path!r} is a {type(target).__name__}")
    return cast("Callable[..., Any]", target)


@dataclass(frozen=True, kw_only=True)
class Expectation(abc.ABC):
    """Base of every expectation: a severity plus the fields of its kind.

    Build them with :data:`loopml.data.expect`; subclasses register under ``kind``.
    """

    kind: ClassVar[str] = ""
    severity: str = "fail"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.kind:
            _KINDS[cls.kind] = cls

    @property
    def check_name(self) -> str:
        """The name its :class:`CheckResult` carries: the kind, or a custom check's name."""
        return self.kind

    @property
    def subject(self) -> str | None:
        """The column (or ``"a, b"`` for a composite key) its result is about, if any."""
        return None

    def columns_read(self) -> tuple[str, ...] | None:
        """The columns it reads batch by batch; None means every column (custom checks)."""
        return ()

    def check_args(self) -> None:
        """Check every argument, naming the bad one.

        Raises:
            ArgumentError: (a :class:`ValidationError`) an argument has the wrong type or value.
        """
        if self.severity not in tuple(Severity):
            self._bad("severity", f"must be 'warn' or 'fail'; {got(self.severity)}")
        self._check_own_args()

    @abc.abstractmethod
    def _check_own_args(self) -> None: ...

    def _bad(self, argument: str, problem: str, cause: BaseException | None = None) -> NoReturn:
        raise ArgumentError(self._where(), argument, problem) from cause

    def _where(self) -> str:
        subject = self.subject
        return f"expect.{self.kind}({subject!r})" if subject else f"expect.{self.kind}()"

    def _check_column(self, column: object, argument: str = "column") -> None:
        if not isinstance(column, str) or not column:
            self._bad(argument, f"must be a non-empty column name; {got(column)}")

    def _check_names(self, argument: str, value: object, *, allow_empty: bool = False) -> None:
        if isinstance(value, str) or not isinstance(value, Sequence):
            self._bad(argument, f"must be a list of column names; {got(value)}")
        items = list(value)
        if not items and not allow_empty:
            self._bad(argument, "must name at least one column; got an empty list")
        for item in items:
            self._check_column(item, argument)
        if len(set(items)) != len(items):
            self._bad(argument, f"must not repeat a column; got {items!r}")

    def _check_bounds(self, low: object, high: object, *, integer: bool = False) -> None:
        want = "a non-negative integer" if integer else "a number"
        for argument, value in (("min", low), ("max", high)):
            ok = value is None or (
                (isinstance(value, int) and not isinstance(value, bool) and value >= 0)
                if integer
                else is_number(value)
            )
            if not ok:
                self._bad(argument, f"must be {want} or None; {got(value)}")
        if low is None and high is None:
            self._bad("min", "and 'max' are both None; give at least one bound")
        if low is not None and high is not None and cast(float, low) > cast(float, high):
            self._bad("min", f"must not exceed max; got min={low!r}, max={high!r}")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (``kind`` plus every field) that :meth:`from_dict` reads back."""
        out: dict[str, Any] = {"kind": self.kind}
        for spec in fields(self):
            out[spec.name] = self._dump(spec.name, getattr(self, spec.name))
        return out

    def _dump(self, name: str, value: Any) -> Any:
        if isinstance(value, enum.Enum):
            return value.value
        if isinstance(value, tuple | list):
            return list(value)
        return value

    @classmethod
    def _load(cls, name: str, value: Any) -> Any:
        return value

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> Expectation:
        """Rebuild one expectation from :meth:`to_dict` output (arguments are not checked).

        Raises:
            ValidationError: no or an unknown ``kind``, or a key that kind does not have.
        """
        if not isinstance(data, Mapping):
            raise ValidationError(f"an expectation must be a mapping; {got(data)}")
        kind = data.get("kind")
        cls = _KINDS.get(kind) if isinstance(kind, str) else None
        if cls is None:
            raise ValidationError(
                f"expectation 'kind' must be one of {', '.join(sorted(_KINDS))}; {got(kind)}"
            )
        names = {spec.name for spec in fields(cls)}
        unknown = sorted(set(data) - names - {"kind"})
        if unknown:
            raise ValidationError(
                f"expectation of kind {kind!r} has unknown key(s) {', '.join(unknown)}; "
                f"expected some of {', '.join(sorted(names))}"
            )
        arguments = {k: cls._load(k, v) for k, v in data.items() if k != "kind"}
        try:
            return cls(**arguments)
        except TypeError as exc:
            raise ValidationError(f"expectation of kind {kind!r}: {exc}") from exc
