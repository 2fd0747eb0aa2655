"""Deployments as data: what is served, changed only through authorized, audited revisions."""

from __future__ import annotations

import builtins
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import orjson
from sqlalchemy import Connection, insert, select, update

from loopml.core import (
    NotFoundError,
    ValidationError,
    new_id,
    now_ms,
)
from loopml.governance import StoreService, append_audit, authorize
from loopml.registry import ModelRegistry
from loopml.serving._routing import DeploymentSpec, check_deployment_name
from loopml.store import schema

__all__ = ["Deployment", "DeploymentRevision", "Deployments"]

D = schema.deployments
R = schema.deployment_revisions
ACTION = "deployment.change"


@dataclass(frozen=True)
class Deployment:
    """A deployment's current state; ``revision`` moves on every change."""

    name: str
    strategy: str
    spec: DeploymentSpec
    revision: int
    updated_ms: int
    updated_by: str


@dataclass(frozen=True)
class DeploymentRevision:
    """One state a deployment has been in, and who put it there and why."""

    revision: int
    strategy: str
    spec: DeploymentSpec
    actor: str
    reason: str | None
    ts_ms: int


def _dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _deployment(row: Any) -> Deployment:
    return Deployment(
        name=row.name,
        strategy=row.strategy,
        spec=DeploymentSpec.from_dict(orjson.loads(row.spec)),
        revision=row.revision,
        updated_ms=row.updated_ms,
        updated_by=row.updated_by,
    )


def _state(found: Deployment | None) -> dict[str, Any] | None:
    return None if found is None else {"revision": found.revision, "spec": found.spec.to_dict()}


class Deployments(StoreService):
    """The deployments in the store that ``settings`` names, changed as ``identity``.

    Every change needs ``deployment.change`` (approver and up), writes a new row in
    ``deployment_revisions`` and an audit entry with the state before and after, all in
    one transaction. Servers poll :meth:`get` and switch when ``revision`` moves.
    """

    # -- reading ------------------------------------------------------------------

    def _check_reader(self) -> None:
        if self.settings.auth:
            _ = self.identity

    def get(self, name: str) -> Deployment:
        self._check_reader()
        with self.store.read() as conn:
            found = _find(conn, name)
        if found is None:
            raise NotFoundError(f"no deployment {name!r}")
        return found

    def revision(self, name: str) -> int:
        """The current revision number of ``name``: one small query, for servers that poll
        for changes (twice a second) and load the whole deployment only when it moved."""
        self._check_reader()
        with self.store.read() as conn:
            found = conn.scalar(select(D.c.revision).where(D.c.name == name))
        if found is None:
            raise NotFoundError(f"no deployment {name!r}")
        return int(found)

    def list(self) -> builtins.list[Deployment]:
        self._check_reader()
        with self.store.read() as conn:
            rows = conn.execute(select(D).order_by(D.c.name)).all()
        return [_deployment(row) for row in rows]

    def history(self, name: str) -> builtins.list[DeploymentRevision]:
        """Every revision of ``name``, oldest first."""
        self._check_reader()
        with self.store.read() as conn:
            return _history(conn, name)

    # -- changing -----------------------------------------------------------------

    def deploy(self, name: str, spec: DeploymentSpec, *, reason: str | None = None) -> Deployment:
        """Create ``name`` or replace its spec; every model reference is pinned first.

        Each reference (``churn@champion``, ``churn``) is resolved through the registry to
        the version it names now; the spec stored serves that version until the next
        deploy, and records the original reference in ``pinned``.

        Raises:
            ValidationError: the spec is invalid, or ``onnx`` is on and a version has no
                ONNX export.
            NotFoundError: a model or version does not exist.
            PermissionDeniedError: the identity may not change deployments.
        """
        check_deployment_name(name)
        authorize(self.identity, ACTION)
        pinned = self._resolve(spec)
        return self._commit(name, lambda _conn, _current: pinned, "deployment.deploy", reason)

    def _resolve(self, spec: DeploymentSpec) -> DeploymentSpec:
        resolved: dict[str, str] = {}
        with ModelRegistry(self.settings, identity=self._identity) as registry:
            for ref in spec.refs():
                if ref in resolved:
                    continue
                version = registry.get(ref)
                if spec.onnx and not isinstance(version.extra.get("onnx"), dict):
                    raise ValidationError(
                        f"onnx: {version.ref} has no ONNX export; run "
                        f"`loopml models export-onnx {version.ref}` or deploy without --onnx"
                    )
                resolved[ref] = version.ref
        return spec.with_refs(resolved)

    def rollback(
        self, name: str, *, to_revision: int | None = None, reason: str | None = None
    ) -> Deployment:
        """Serve an earlier revision's spec again, written as a new revision.

        Without ``to_revision``, the one before the current revision.
        """
        authorize(self.identity, ACTION)

        def build(conn: Connection, current: Deployment | None) -> DeploymentSpec:
            if current is None:
                raise NotFoundError(f"no deployment {name!r}")
            target = current.revision - 1 if to_revision is None else to_revision
            if to_revision is None and target < 1:
                raise ValidationError(
                    f"deployment {name!r} has only revision {current.revision}: "
                    "nothing to roll back to"
                )
            if target == current.revision:
                raise ValidationError(f"deployment {name!r} is at revision {target} already")
            for past in _history(conn, name):
                if past.revision == target:
                    return past.spec
            raise NotFoundError(
                f"deployment {name!r} has no revision {target} (revisions 1..{current.revision})"
            )

        return self._commit(name, build, "deployment.rollback", reason)

    def set_canary_weight(
        self, name: str, weight: float, *, reason: str | None = None
    ) -> Deployment:
        """Step a canary deployment's ``canary_weight`` (a fraction in [0, 1])."""
        authorize(self.identity, ACTION)

        def build(_conn: Connection, current: Deployment | None) -> DeploymentSpec:
            spec = _require(name, current).spec
            if spec.strategy != "canary":
                raise ValidationError(
                    f"deployment {name!r} is {spec.strategy}, not canary: it has no canary weight"
                )
            return replace(spec, canary_weight=weight)

        return self._commit(name, build, "deployment.weight", reason)

    def switch(self, name: str, *, reason: str | None = None) -> Deployment:
        """Flip a blue/green deployment's ``live`` side."""
        authorize(self.identity, ACTION)

        def build(_conn: Connection, current: Deployment | None) -> DeploymentSpec:
            spec = _require(name, current).spec
            if spec.strategy != "bluegreen":
                raise ValidationError(
                    f"deployment {name!r} is {spec.strategy}, not bluegreen: nothing to switch"
                )
            return replace(spec, live="green" if spec.live == "blue" else "blue")

        return self._commit(name, build, "deployment.switch", reason)

    def _commit(
        self,
        name: str,
        build: Callable[[Connection, Deployment | None], DeploymentSpec],
        action: str,
        reason: str | None,
    ) -> Deployment:
        """In one transaction: lock the row, build the new spec from the current state,
        write the deployment, its revision and the audit entry."""
        actor = self.identity.name

        def work(conn: Connection) -> Deployment:
            row = conn.execute(select(D).where(D.c.name == name).with_for_update()).first()
            current = None if row is None else _deployment(row)
            spec = build(conn, current)
            ts = now_ms()
            values = {
                "strategy": spec.strategy,
                "spec": _dumps(spec.to_dict()),
                "updated_ms": ts,
                "updated_by": actor,
            }
            if row is None:
                deployment_id, revision = new_id(), 1
                conn.execute(
                    insert(D),
                    [{"id": deployment_id, "name": name, "revision": revision, **values}],
                )
            else:
                deployment_id, revision = row.id, row.revision + 1
                conn.execute(
                    update(D).where(D.c.id == deployment_id).values(revision=revision, **values)
                )
            conn.execute(
                insert(R),
                [
                    {
                        "deployment_id": deployment_id,
                        "revision": revision,
                        "strategy": spec.strategy,
                        "spec": values["spec"],
                        "actor": actor,
                        "reason": reason,
                        "ts_ms": ts,
                    }
                ],
            )
            after = Deployment(name, spec.strategy, spec, revision, ts, actor)
            append_audit(
                conn,
                actor=actor,
                action=action,
                target=f"deployment:{name}",
                before=_state(current),
                after=_state(after),
                reason=reason,
            )
            return after

        return self.store.transact(work)


def _find(conn: Connection, name: str) -> Deployment | None:
    row = conn.execute(select(D).where(D.c.name == name)).first()
    return None if row is None else _deployment(row)


def _require(name: str, current: Deployment | None) -> Deployment:
    if current is None:
        raise NotFoundError(f"no deployment {name!r}")
    return current


def _history(conn: Connection, name: str) -> list[DeploymentRevision]:
    row = conn.execute(select(D.c.id).where(D.c.name == name)).first()
    if row is None:
        raise NotFoundError(f"no deployment {name!r}")
    rows = conn.execute(select(R).where(R.c.deployment_id == row.id).order_by(R.c.revision)).all()
    return [
        DeploymentRevision(
            revision=r.revision,
            strategy=r.strategy,
            spec=DeploymentSpec.from_dict(orjson.loads(r.spec)),
            actor=r.actor,
            reason=r.reason,
            ts_ms=r.ts_ms,
        )
        for r in rows
    ]
