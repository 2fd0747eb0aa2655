"""Deployment specs and routing: which model version answers a request. Pure, no I/O."""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from loopml.core import ValidationError

__all__ = [
    "STRATEGIES",
    "DeploymentSpec",
    "Fallback",
    "Route",
    "RouteDecision",
    "key_fraction",
    "route",
]

STRATEGIES = ("single", "ab", "canary", "shadow", "bluegreen")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_TOLERANCE = 1e-6
MAX_TIMEOUT_MS = 600_000

# which optional fields each strategy takes (``routes`` is for single and ab)
_FIELDS = {
    "single": {"routes"},
    "ab": {"routes", "sticky_key"},
    "canary": {"primary", "canary", "canary_weight", "sticky_key"},
    "shadow": {"primary", "shadow"},
    "bluegreen": {"blue", "green", "live"},
}
_COMMON = {"strategy", "fallback", "timeout_ms", "onnx", "pinned"}
_ALL = set().union(*_FIELDS.values()) | _COMMON


def check_deployment_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValidationError(
            f"deployment name {name!r} is not valid: letters, digits, '_', '.', '-', starting "
            "with a letter or digit, at most 128 characters"
        )
    return name


def _check_ref(field_name: str, ref: object) -> str:
    if not isinstance(ref, str) or not ref.strip() or ref.count("@") > 1:
        raise ValidationError(f"{field_name}: {ref!r} is not a model reference (NAME@VERSION)")
    return ref.strip()


def _fraction(field_name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(f"{field_name} must be a number in [0, 1]; got {value!r}")
    number = float(value)
    if not math.isfinite(number) or not 0.0 <= number <= 1.0:
        raise ValidationError(f"{field_name} must be in [0, 1]; got {value!r}")
    return number


@dataclass(frozen=True)
class Route:
    """One arm of a single or A/B deployment: a model version and its share of traffic."""

    model: str
    weight: float = 1.0


@dataclass(frozen=True)
class Fallback:
    """What answers when the model fails or times out: another version, or a constant."""

    kind: str  # "version" | "constant"
    model: str | None = None
    value: Any = None

    def __post_init__(self) -> None:
        if self.kind == "version":
            _check_ref("fallback.model", self.model)
        elif self.kind != "constant":
            raise ValidationError(
                f"fallback.kind must be 'version' or 'constant'; got {self.kind!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        if self.kind == "version":
            return {"kind": "version", "model": self.model}
        return {"kind": "constant", "value": self.value}


@dataclass(frozen=True)
class DeploymentSpec:
    """The whole routing of a deployment, validated on construction.

    - ``single``: ``routes`` holds one route.
    - ``ab``: two or more ``routes`` of distinct models whose weights (fractions) sum
      to 1; ``sticky_key`` names the request field whose value pins a caller to an arm.
    - ``canary``: ``primary`` gets ``1 - canary_weight`` of traffic, ``canary`` the rest
      (sticky by ``sticky_key`` too when given).
    - ``shadow``: ``primary`` answers; ``shadow`` scores a copy; both are logged.
    - ``bluegreen``: ``blue`` and ``green``; ``live`` names the one that answers.

    ``fallback`` answers when the model call fails or passes ``timeout_ms``; ``onnx``
    serves the versions' ONNX exports. ``pinned`` maps each reference as given (an alias,
    say) to the version it was resolved to at deploy time.
    """

    strategy: str
    routes: tuple[Route, ...] = ()
    sticky_key: str | None = None
    primary: str | None = None
    canary: str | None = None
    canary_weight: float | None = None
    shadow: str | None = None
    blue: str | None = None
    green: str | None = None
    live: str | None = None
    fallback: Fallback | None = None
    timeout_ms: int = 1000
    onnx: bool = False
    pinned: tuple[tuple[str, str], ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        strategy = self.strategy
        if strategy not in STRATEGIES:
            raise ValidationError(
                f"strategy must be one of {', '.join(STRATEGIES)}; got {strategy!r}"
            )
        allowed = _FIELDS[strategy]
        for name in ("sticky_key", "primary", "canary", "canary_weight", "shadow"):
            if getattr(self, name) is not None and name not in allowed:
                raise ValidationError(f"{name} does not apply to a {strategy} deployment")
        for name in ("blue", "green", "live"):
            if getattr(self, name) is not None and name not in allowed:
                raise ValidationError(f"{name} does not apply to a {strategy} deployment")
        if self.routes and "routes" not in allowed:
            raise ValidationError(f"routes do not apply to a {strategy} deployment")
        getattr(self, f"_check_{strategy}")()
        if self.sticky_key is not None and (
            not isinstance(self.sticky_key, str) or not self.sticky_key.strip()
        ):
            raise ValidationError(f"sticky_key must name a request field; got {self.sticky_key!r}")
        if (
            isinstance(self.timeout_ms, bool)
            or not isinstance(self.timeout_ms, int)
            or not 0 < self.timeout_ms <= MAX_TIMEOUT_MS
        ):
            raise ValidationError(
                f"timeout_ms must be a whole number of milliseconds in 1..{MAX_TIMEOUT_MS}; "
                f"got {self.timeout_ms!r}"
            )
        if not isinstance(self.onnx, bool):
            raise ValidationError(f"onnx must be true or false; got {self.onnx!r}")
        if self.fallback is not None and not isinstance(self.fallback, Fallback):
            raise ValidationError("fallback must be a Fallback")

    def _check_single(self) -> None:
        if len(self.routes) != 1:
            raise ValidationError(
                f"routes: a single deployment serves exactly one model; got {len(self.routes)}"
            )
        _check_ref("routes[0].model", self.routes[0].model)
        if abs(self.routes[0].weight - 1.0) > _TOLERANCE:
            raise ValidationError("routes[0].weight: a single deployment's one route has weight 1")

    def _check_ab(self) -> None:
        if len(self.routes) < 2:
            raise ValidationError("routes: an ab deployment needs at least two routes")
        seen: set[str] = set()
        for i, arm in enumerate(self.routes):
            _check_ref(f"routes[{i}].model", arm.model)
            _fraction(f"routes[{i}].weight", arm.weight)
            if arm.model in seen:
                raise ValidationError(f"routes[{i}].model: {arm.model} appears twice")
            seen.add(arm.model)
        total = math.fsum(arm.weight for arm in self.routes)
        if abs(total - 1.0) > _TOLERANCE:
            raise ValidationError(
                f"routes: ab weights are fractions that must sum to 1; they sum to {total:g}"
            )

    def _check_canary(self) -> None:
        _check_ref("primary", self.primary)
        _check_ref("canary", self.canary)
        if self.canary_weight is None:
            raise ValidationError("canary_weight is required for a canary deployment")
        _fraction("canary_weight", self.canary_weight)
        if self.primary == self.canary:
            raise ValidationError("canary: must differ from primary")

    def _check_shadow(self) -> None:
        _check_ref("primary", self.primary)
        _check_ref("shadow", self.shadow)
        if self.primary == self.shadow:
            raise ValidationError("shadow: must differ from primary")

    def _check_bluegreen(self) -> None:
        _check_ref("blue", self.blue)
        _check_ref("green", self.green)
        if self.live not in ("blue", "green"):
            raise ValidationError(f"live must be 'blue' or 'green'; got {self.live!r}")

    # -- constructors -------------------------------------------------------------

    @classmethod
    def single(cls, model: str, **common: Any) -> DeploymentSpec:
        return cls("single", routes=(Route(model, 1.0),), **common)

    @classmethod
    def ab(
        cls, weights: dict[str, float], *, sticky_key: str | None = None, **common: Any
    ) -> DeploymentSpec:
        routes = tuple(Route(m, w) for m, w in weights.items())
        return cls("ab", routes=routes, sticky_key=sticky_key, **common)

    @classmethod
    def canary_of(cls, primary: str, canary: str, weight: float, **common: Any) -> DeploymentSpec:
        return cls("canary", primary=primary, canary=canary, canary_weight=weight, **common)

    @classmethod
    def shadow_of(cls, primary: str, shadow: str, **common: Any) -> DeploymentSpec:
        return cls("shadow", primary=primary, shadow=shadow, **common)

    @classmethod
    def bluegreen(
        cls, blue: str, green: str, *, live: str = "blue", **common: Any
    ) -> DeploymentSpec:
        return cls("bluegreen", blue=blue, green=green, live=live, **common)

    # -- the model references in it -------------------------------------------------

    def served(self) -> list[str]:
        """Every model reference that may score a request (fallback excluded), in order."""
        if self.strategy in ("single", "ab"):
            return [arm.model for arm in self.routes]
        if self.strategy == "canary":
            return [str(self.primary), str(self.canary)]
        if self.strategy == "shadow":
            return [str(self.primary), str(self.shadow)]
        return [str(self.blue), str(self.green)]

    def refs(self) -> list[str]:
        """Every model reference, the fallback version included."""
        extra = [self.fallback.model] if self.fallback and self.fallback.model else []
        return [*self.served(), *[str(m) for m in extra]]

    def with_refs(self, resolved: dict[str, str]) -> DeploymentSpec:
        """A copy with each reference replaced by ``resolved[ref]`` (and ``pinned`` set)."""

        def pin(ref: str | None) -> str | None:
            return None if ref is None else resolved.get(ref, ref)

        fallback = self.fallback
        if fallback is not None and fallback.model is not None:
            fallback = replace(fallback, model=pin(fallback.model))
        pinned = tuple(sorted((k, v) for k, v in resolved.items() if k != v))
        return replace(
            self,
            routes=tuple(replace(arm, model=str(pin(arm.model))) for arm in self.routes),
            primary=pin(self.primary),
            canary=pin(self.canary),
            shadow=pin(self.shadow),
            blue=pin(self.blue),
            green=pin(self.green),
            fallback=fallback,
            pinned=pinned or self.pinned,
        )

    # -- as data ------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The spec as JSON-ready data: only the fields its strategy uses."""
        out: dict[str, Any] = {"strategy": self.strategy}
        if self.routes:
            out["routes"] = [{"model": a.model, "weight": a.weight} for a in self.routes]
        for name in ("sticky_key", "primary", "canary", "canary_weight", "shadow"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        for name in ("blue", "green", "live"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        out["fallback"] = None if self.fallback is None else self.fallback.to_dict()
        out["timeout_ms"] = self.timeout_ms
        out["onnx"] = self.onnx
        if self.pinned:
            out["pinned"] = dict(self.pinned)
        return out

    @classmethod
    def from_dict(cls, data: Any) -> DeploymentSpec:
        """A spec from data as :meth:`to_dict` writes it (or a deploy file holds).

        A single deployment may say ``model = "name@version"`` instead of ``routes``.
        """
        if not isinstance(data, dict):
            raise ValidationError("a deployment spec is a table of fields")
        data = dict(data)
        if "model" in data:
            if "routes" in data:
                raise ValidationError("give either model or routes, not both")
            data["routes"] = [{"model": data.pop("model"), "weight": 1.0}]
        unknown = sorted(set(data) - _ALL)
        if unknown:
            raise ValidationError(f"unknown deployment field(s): {', '.join(unknown)}")
        if "strategy" not in data:
            raise ValidationError("strategy is required")
        routes = data.pop("routes", None) or []
        if not isinstance(routes, list):
            raise ValidationError("routes must be a list of {model, weight}")
        parsed: list[Route] = []
        for i, arm in enumerate(routes):
            if not isinstance(arm, dict) or "model" not in arm or set(arm) - {"model", "weight"}:
                raise ValidationError(f"routes[{i}] must be {{model, weight}}; got {arm!r}")
            weight = arm.get("weight", 1.0 if len(routes) == 1 else None)
            if weight is None:
                raise ValidationError(f"routes[{i}].weight is required")
            parsed.append(Route(arm["model"], _number(f"routes[{i}].weight", weight)))
        fallback = data.pop("fallback", None)
        pinned = data.pop("pinned", None) or {}
        if not isinstance(pinned, dict):
            raise ValidationError("pinned must map references to versions")
        if data.get("strategy") == "bluegreen":
            data.setdefault("live", "blue")
        if "canary_weight" in data and data["canary_weight"] is not None:
            data["canary_weight"] = _number("canary_weight", data["canary_weight"])
        return cls(
            routes=tuple(parsed),
            fallback=_parse_fallback(fallback),
            pinned=tuple(sorted((str(k), str(v)) for k, v in pinned.items())),
            **data,
        )


def _number(field_name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(f"{field_name} must be a number; got {value!r}")
    return float(value)


def _parse_fallback(value: Any) -> Fallback | None:
    if value is None:
        return None
    if not isinstance(value, dict) or "kind" not in value:
        raise ValidationError(
            "fallback must be {kind = 'version', model = ...} or {kind = 'constant', value = ...}"
        )
    extra = set(value) - {"kind", "model", "value"}
    if extra:
        raise ValidationError(f"unknown fallback field(s): {', '.join(sorted(extra))}")
    if value["kind"] == "constant" and "value" not in value:
        raise ValidationError("fallback.value is required for a constant fallback")
    return Fallback(value["kind"], value.get("model"), value.get("value"))


# -- routing --------------------------------------------------------------------------


class Random(Protocol):
    def random(self) -> float: ...


@dataclass(frozen=True)
class RouteDecision:
    """The version whose answer the caller gets, and those that score a copy."""

    primary: str
    shadows: tuple[str, ...] = ()


def key_fraction(key: str) -> float:
    """A request key's stable place in [0, 1): the same in every process and release."""
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def route(spec: DeploymentSpec, request_key: str | None, rng: Random) -> RouteDecision:
    """Pick the version that answers a request under ``spec``.

    With a ``request_key`` (the caller passes the value of the spec's ``sticky_key``
    field, or None when the spec has none or the request lacks it) the choice
    for ab and canary depends on the key alone, so a caller keeps its arm; a canary
    weight stepped up only moves more keys onto the canary, never back. Without one,
    ``rng.random()`` decides.
    """
    if spec.strategy == "single":
        return RouteDecision(spec.routes[0].model)
    if spec.strategy == "shadow":
        return RouteDecision(str(spec.primary), (str(spec.shadow),))
    if spec.strategy == "bluegreen":
        return RouteDecision(str(spec.blue if spec.live == "blue" else spec.green))
    point = rng.random() if request_key is None else key_fraction(request_key)
    if spec.strategy == "canary":
        hit = point < float(spec.canary_weight or 0.0)
        return RouteDecision(str(spec.canary if hit else spec.primary))
    cumulative = 0.0
    for arm in spec.routes:
        cumulative += arm.weight
        if point < cumulative:
            return RouteDecision(arm.model)
    live = [arm for arm in spec.routes if arm.weight > 0]
    return RouteDecision(live[-1].model)  # rounding left a sliver at the top
