"""The model registry service: every change authorized, atomic and audited."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import orjson
from sqlalchemy import Connection

from loopml.core import (
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
    new_id,
    now_ms,
)
from loopml.governance import StoreService, append_audit, authorize
from loopml.registry import _repo as repo
from loopml.registry._entities import (
    CHAMPION,
    AliasMove,
    Approval,
    GateReport,
    ModelVersion,
    RegisteredModel,
    check_alias,
    check_model_name,
    parse_model_ref,
)
from loopml.registry._flavors import check_libraries, load_flavor

if TYPE_CHECKING:
    from loopml.registry._onnx import OnnxExport
    from loopml.registry._trees import CompiledBoosting

__all__ = ["ModelRegistry"]

T = TypeVar("T")
META_FILE = "meta.json"


class ModelRegistry(StoreService):
    """Registered models in the store that ``settings`` names, acting as ``identity``.

    ``identity`` defaults to who the settings say you are (``LOOPML_TOKEN`` with auth on,
    else the local user), resolved again for each change. Every change is checked
    against that identity's role and written in one transaction together with its
    audit record.
    """

    def _change(self, action: str, work: Callable[[Connection], T]) -> T:
        authorize(self.identity, action)
        return self.store.transact(work)

    def _audit(self, conn: Connection, action: str, target: str, **fields: Any) -> None:
        append_audit(conn, actor=self.identity.name, action=action, target=target, **fields)

    # -- models -------------------------------------------------------------------

    def create_model(
        self,
        name: str,
        *,
        description: str = "",
        requires_approval: bool = False,
        gates: list[dict[str, Any]] | None = None,
        card: dict[str, str] | None = None,
    ) -> RegisteredModel:
        """A new, empty model; ``gates`` as in :func:`loopml.registry.parse_gates`."""
        from loopml.registry._gates import parse_gates

        check_model_name(name)
        specs = parse_gates(gates or [])
        values = {
            "name": name,
            "description": description,
            "requires_approval": int(requires_approval),
            "gates": repo.dumps(specs),
            "card": repo.dumps(card or {}),
            "created_by": self.identity.name,
        }

        def work(conn: Connection) -> RegisteredModel:
            repo.insert_model(conn, values)
            self._audit(conn, "model.create", f"model:{name}", after=values)
            return repo.get_model(conn, name)

        return self._change("model.register", work)

    def update_model(
        self,
        name: str,
        *,
        description: str | None = None,
        requires_approval: bool | None = None,
        gates: list[dict[str, Any]] | None = None,
        card: dict[str, str] | None = None,
        reason: str | None = None,
    ) -> RegisteredModel:
        """Change a model's description, approval rule, gates or model-card fields."""
        from loopml.registry._gates import parse_gates

        changes: dict[str, Any] = {}
        if description is not None:
            changes["description"] = description
        if requires_approval is not None:
            changes["requires_approval"] = int(requires_approval)
        if gates is not None:
            changes["gates"] = repo.dumps(parse_gates(gates))
        if card is not None:
            changes["card"] = repo.dumps(card)

        if not changes:
            return self.get_model(name)

        def work(conn: Connection) -> RegisteredModel:
            model = repo.get_model(conn, name)
            before = {
                k: getattr(model, k) for k in ("description", "requires_approval", "gates", "card")
            }
            repo.update_model(conn, model.id, **changes)
            self._audit(
                conn, "model.update", f"model:{name}", before=before, after=changes, reason=reason
            )
            return repo.get_model(conn, name)

        return self._change("model.update", work)

    def _check_reader(self) -> None:
        """With auth on, reading needs a valid token too (resolving raises otherwise)."""
        if self.settings.auth:
            _ = self.identity

    def models(self) -> list[tuple[RegisteredModel, int]]:
        """Every model with its newest version number (0 when it has none)."""
        self._check_reader()
        with self.store.read() as conn:
            return repo.list_models(conn)

    def get_model(self, name: str) -> RegisteredModel:
        self._check_reader()
        with self.store.read() as conn:
            return repo.get_model(conn, name)

    # -- versions -----------------------------------------------------------------

    def register(
        self,
        name: str,
        *,
        run_id: str,
        artifact_path: str = "model",
        description: str = "",
    ) -> ModelVersion:
        """Register the model a run logged under ``artifact_path`` as a new version.

        The run must hold ``<artifact_path>/meta.json`` (written by
        :func:`loopml.training.fit`) and the model file it names. The version records
        the artifact's digest, signature, library versions, metrics, the dataset version
        and split it learned from, its data profile (the drift reference), the git
        commit and the pipeline run. The model is created on first registration.
        """
        from loopml.registry._lineage import describe_run
        from loopml.registry._trees import compile_registered

        check_model_name(name)
        authorize(self.identity, "model.register")
        source = describe_run(self.settings, run_id, artifact_path, self.artifacts)
        profile = self._store_profile(source["dataset"])
        compiled = compile_registered(source, self.artifacts)
        if compiled is not None:  # served without importing scikit-learn (see _trees)
            source["extra"] = {**source["extra"], "compiled": compiled}

        def work(conn: Connection) -> ModelVersion:
            model = repo.find_model(conn, name)
            if model is None:
                values = {
                    "name": name,
                    "description": "",
                    "requires_approval": 0,
                    "gates": "[]",
                    "card": "{}",
                    "created_by": self.identity.name,
                }
                repo.insert_model(conn, values)
                self._audit(conn, "model.create", f"model:{name}", after=values)
                model = repo.get_model(conn, name)
            number = repo.next_version(conn, model.id)
            row = {
                "id": new_id(),
                "model_id": model.id,
                "version": number,
                "run_id": source["run_id"],
                "pipeline_run_id": source["pipeline_run_id"],
                "flavor": source["flavor"],
                "artifact": source["artifact"],
                "signature": repo.dumps(source["signature"]),
                "libraries": repo.dumps(source["libraries"]),
                "dataset": source["dataset"],
                "split": repo.dumps(source["split"]) if source["split"] else None,
                "profile": profile,
                "metrics": repo.dumps(source["metrics"]),
                "extra": repo.dumps(source["extra"]),
                "code_version": source["code_version"],
                "description": description,
                "created_ms": now_ms(),
                "created_by": self.identity.name,
            }
            repo.insert_version(conn, row)
            self._audit(
                conn,
                "model.register",
                f"model:{name}@{number}",
                after={k: v for k, v in row.items() if k not in ("signature", "extra")},
            )
            return repo.get_version(conn, repo.get_model(conn, name), number)

        return self.store.transact(work)

    def _store_profile(self, dataset: str | None) -> str | None:
        """The training data's profile, stored as a blob: monitoring's drift reference."""
        if dataset is None:
            return None
        from loopml.data import DataCatalog

        with DataCatalog(self.settings, create_store=False) as catalog:
            try:
                profile = catalog.profile(dataset)
            except (NotFoundError, ValidationError):
                return None
        data = orjson.dumps(profile, default=lambda v: getattr(v, "__dict__", str(v)))
        return self.artifacts.put_bytes(data).digest

    def versions(self, name: str) -> list[ModelVersion]:
        self._check_reader()
        with self.store.read() as conn:
            return repo.list_versions(conn, repo.get_model(conn, name))

    def get(self, ref: str) -> ModelVersion:
        """``NAME@VERSION``, ``NAME@ALIAS`` or ``NAME`` (the newest version)."""
        self._check_reader()
        name, which = parse_model_ref(ref)
        with self.store.read() as conn:
            return repo.get_version(conn, repo.get_model(conn, name), which)

    def load(self, ref: str) -> Any:
        """The model object, loaded only after its bytes match the registered digest."""
        version = self.get(ref)
        data = self.artifacts.get_bytes(version.artifact)  # checks the digest
        check_libraries(version.libraries, version.ref)
        return load_flavor(version.flavor, data)

    # -- model cards and ONNX -------------------------------------------------------

    def card(self, ref: str, format: str = "markdown", *, importance: bool = True) -> str:
        """``ref``'s model card as ``"markdown"`` or self-contained ``"html"``."""
        from loopml.registry._card import build_card, render_html, render_markdown

        if format not in ("markdown", "html"):
            raise ValidationError(f"card format must be markdown or html; got {format!r}")
        card = build_card(self, ref, importance=importance)
        return render_html(card) if format == "html" else render_markdown(card)

    def export_onnx(
        self, ref: str, *, sample_rows: int = 200, tolerance: float = 1e-5
    ) -> OnnxExport:
        """Convert ``ref`` to ONNX, check parity, record it on the version (``OnnxExport``)."""
        from loopml.registry._onnx import export_onnx

        return export_onnx(self, ref, sample_rows=sample_rows, tolerance=tolerance)

    def record_onnx(self, version: ModelVersion, record: dict[str, Any]) -> ModelVersion:
        """Store an ONNX export's record in ``extra["onnx"]``, audited as model.export_onnx."""

        def work(conn: Connection) -> ModelVersion:
            model = repo.get_model(conn, version.model)
            current = repo.get_version(conn, model, version.version)
            before = current.extra.get("onnx")
            repo.update_version_extra(conn, current.id, {**current.extra, "onnx": record})
            self._audit(
                conn,
                "model.export_onnx",
                f"model:{version.ref}",
                before={"onnx": before} if before else None,
                after={"onnx": record},
            )
            return repo.get_version(conn, model, version.version)

        return self._change("model.export_onnx", work)

    def load_onnx(self, ref: str) -> Any:
        """An onnxruntime session on ``ref``'s ONNX export, after its digest is checked."""
        version = self.get(ref)
        record = version.extra.get("onnx")
        if not isinstance(record, dict):
            raise NotFoundError(
                f"{version.ref} has no ONNX export: run `loopml models export-onnx {version.ref}`"
            )
        data = self.artifacts.get_bytes(record["digest"])  # checks the digest
        return load_flavor("onnx", data)

    def load_compiled(self, ref: str) -> CompiledBoosting:
        """``ref``'s compiled GradientBoosting (made at registration), its digest checked."""
        from loopml.registry._trees import CompiledBoosting

        version = self.get(ref)
        record = version.extra.get("compiled")
        if not isinstance(record, dict):
            raise NotFoundError(f"{version.ref} has no compiled form")
        if record.get("kind") != "gradient_boosting" or not isinstance(record.get("digest"), str):
            raise ValidationError(f"{version.ref}: a compiled form this loopml does not read")
        # checks the digest, then that it answers here as scikit-learn did (ValidationError)
        return CompiledBoosting.from_bytes(self.artifacts.get_bytes(record["digest"]))

    # -- aliases, approval, promotion ------------------------------------------------

    def set_alias(self, ref: str, alias: str, *, reason: str | None = None) -> ModelVersion:
        """Point ``alias`` at the version ``ref`` names, atomically, with its history.

        ``champion`` goes through :meth:`promote`'s checks.
        """
        if check_alias(alias) == CHAMPION:
            return self.promote(ref, reason=reason)
        return self._move(ref, alias, "model.alias", reason)

    def remove_alias(self, name: str, alias: str, *, reason: str | None = None) -> None:
        check_alias(alias)
        action = "model.promote" if alias == CHAMPION else "model.alias"

        def work(conn: Connection) -> None:
            model = repo.get_model(conn, name)
            if alias not in model.aliases:
                raise NotFoundError(f"model {name!r} has no alias {alias!r}")
            before = repo.move_alias(conn, model, alias, None, self.identity.name, reason)
            self._audit(
                conn,
                "model.alias",
                f"model:{name}#{alias}",
                before={"version": before},
                after=None,
                reason=reason,
            )

        self._change(action, work)

    def _move(self, ref: str, alias: str, action: str, reason: str | None) -> ModelVersion:
        version = self.get(ref)

        def work(conn: Connection) -> ModelVersion:
            model = repo.get_model(conn, version.model)
            before = repo.move_alias(
                conn, model, alias, version.version, self.identity.name, reason
            )
            self._audit(
                conn,
                "model.alias",
                f"model:{version.model}#{alias}",
                before={"version": before},
                after={"version": version.version},
                reason=reason,
            )
            return repo.get_version(conn, repo.get_model(conn, version.model), version.version)

        return self._change(action, work)

    def promotion_blockers(self, ref: str) -> list[str]:
        """Why ``ref`` cannot become champion now; empty when it can."""
        version = self.get(ref)
        with self.store.read() as conn:
            return self._blockers(conn, version)

    @staticmethod
    def _blockers(conn: Connection, version: ModelVersion) -> list[str]:
        model = repo.get_model(conn, version.model)
        report = repo.latest_gate_report(conn, version, model.gates)
        decisions = repo.approvals(conn, version)
        blockers = []
        if model.gates:
            if report is None:
                blockers.append(
                    f"gates not evaluated against the current gates: run "
                    f"`loopml models evaluate {version.ref}` first"
                )
            elif not report.passed:
                blockers += [f"gate {o.name} failed: {o.message}" for o in report.failed]
        if model.requires_approval:
            if not decisions:
                blockers.append(f"approval required: no approver has approved {version.ref}")
            elif decisions[-1].decision != "approved":
                last = decisions[-1]
                blockers.append(f"approval required: {last.actor} rejected it: {last.comment}")
        return blockers

    def promote(self, ref: str, *, reason: str | None = None) -> ModelVersion:
        """Make ``ref`` the champion: every gate passed and, if required, approved.

        The checks run in the same transaction as the move, so a rejection or a gate
        change that commits meanwhile cannot slip past them.
        """
        version = self.get(ref)
        actor = self.identity

        def work(conn: Connection) -> ModelVersion:
            blockers = self._blockers(conn, version)
            if blockers:
                raise PermissionDeniedError(
                    f"{version.ref} cannot become {CHAMPION}: " + "; ".join(blockers)
                )
            model = repo.get_model(conn, version.model)
            before = repo.move_alias(conn, model, CHAMPION, version.version, actor.name, reason)
            append_audit(
                conn,
                actor=actor.name,
                action="model.alias",
                target=f"model:{version.model}#{CHAMPION}",
                before={"version": before},
                after={"version": version.version},
                reason=reason,
            )
            return repo.get_version(conn, repo.get_model(conn, version.model), version.version)

        authorize(actor, "model.promote")
        return self.store.transact(work)

    def _decide(self, ref: str, decision: str, comment: str) -> Approval:
        if not isinstance(comment, str) or not comment.strip():
            raise ValidationError(f"a {decision} needs a comment saying why")
        version = self.get(ref)
        approval = Approval(decision, self.identity.name, comment.strip(), now_ms())
        action = "model.approve" if decision == "approved" else "model.reject"

        def work(conn: Connection) -> Approval:
            repo.insert_approval(conn, version.id, approval)
            self._audit(
                conn, action, f"model:{version.ref}", after=approval.__dict__, reason=comment
            )
            return approval

        return self._change(action, work)

    def approve(self, ref: str, comment: str) -> Approval:
        """Approve ``ref`` for promotion (approver role or above)."""
        return self._decide(ref, "approved", comment)

    def reject(self, ref: str, comment: str) -> Approval:
        """Reject ``ref``; it cannot be promoted until approved again."""
        return self._decide(ref, "rejected", comment)

    def approvals(self, ref: str) -> list[Approval]:
        version = self.get(ref)
        with self.store.read() as conn:
            return repo.approvals(conn, version)

    def alias_history(self, name: str, alias: str | None = None) -> list[AliasMove]:
        with self.store.read() as conn:
            return repo.alias_history(conn, repo.get_model(conn, name), alias)

    def gate_report(self, ref: str) -> GateReport | None:
        """The latest gate evaluation of ``ref``, if any."""
        version = self.get(ref)
        with self.store.read() as conn:
            return repo.latest_gate_report(conn, version, repo.get_model(conn, version.model).gates)

    def evaluate_gates(self, ref: str) -> GateReport:
        """Run the model's gates on ``ref`` and store the result with its evidence."""
        from loopml.registry._gates import evaluate

        authorize(self.identity, "model.evaluate_gates")
        version = self.get(ref)
        gates = self.get_model(version.model).gates
        report = evaluate(self, version, gates)
        self._record_gates(version, report, gates)
        return report

    def _record_gates(
        self, version: ModelVersion, report: GateReport, gates: list[dict[str, Any]]
    ) -> None:
        """Store a result computed here, tied to the gates it was evaluated against."""

        def work(conn: Connection) -> None:
            repo.insert_gate_report(conn, version.id, report, gates)
            self._audit(
                conn,
                "model.evaluate_gates",
                f"model:{version.ref}",
                after={"passed": report.passed, "failed": [o.name for o in report.failed]},
            )

        self._change("model.evaluate_gates", work)
