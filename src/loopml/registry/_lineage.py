"""Where a model came from: the run that logged it, and the chain back to the data."""

from __future__ import annotations

from typing import Any

import orjson

from loopml.artifacts import ArtifactStore
from loopml.core import NotFoundError, Settings, ValidationError
from loopml.registry._entities import ModelVersion

__all__ = ["describe_run", "model_lineage", "render_lineage"]

PIPELINE_TAG = "loopml.pipeline.run_id"


def describe_run(
    settings: Settings, run_id: str, artifact_path: str, artifacts: ArtifactStore
) -> dict[str, Any]:
    """What a registered version records about the run that logged the model."""
    from loopml.tracking import Client

    client = Client(settings, create_store=False)
    try:
        run = client.get_run(run_id)
        refs = {ref.path: ref for ref in client.list_artifacts(run.id)}
        meta_path = f"{artifact_path}/meta.json"
        if meta_path not in refs:
            raise NotFoundError(
                f"run {run.id} has no {meta_path}: log the model with loopml.training.fit "
                f"(or under another path and pass artifact_path=...)"
            )
        meta = orjson.loads(artifacts.get_bytes(refs[meta_path].digest))
        model_path = f"{artifact_path}/{meta.get('file', 'model.joblib')}"
        if model_path not in refs:
            raise NotFoundError(f"run {run.id} names {model_path} in {meta_path} but lacks it")
        pipeline_run = run.tags.get(PIPELINE_TAG)
        if pipeline_run is None and run.parent_id is not None:
            pipeline_run = client.get_run(run.parent_id).tags.get(PIPELINE_TAG)
    finally:
        client.close()
    flavor = meta.get("flavor")
    if flavor not in ("sklearn", "onnx"):
        raise ValidationError(
            f"{meta_path} of run {run.id} names flavor {flavor!r}; expected sklearn"
        )
    split_name = meta.get("split") or run.tags.get("loopml.split")
    return {
        "run_id": run.id,
        "pipeline_run_id": pipeline_run,
        "flavor": flavor,
        "artifact": refs[model_path].digest,
        "signature": meta.get("signature", {}),
        "libraries": meta.get("libraries", {}),
        "dataset": meta.get("dataset") or run.tags.get("loopml.dataset"),
        "split": _split_record(split_name, meta.get("split_spec")),
        "metrics": {k: v for k, v in run.metrics.items() if not k.startswith("system/")},
        "code_version": run.tags.get("loopml.git.commit"),
        "extra": {
            "features": meta.get("features", []),
            "target": meta.get("target"),
            "task": meta.get("task"),
            "estimator": run.tags.get("loopml.estimator") or meta.get("estimator"),
        },
    }


def _split_record(name: str | None, spec: Any) -> dict[str, Any] | None:
    """The split a version learned on: a stored one by name, or an inline spec."""
    if not name:
        return None
    record: dict[str, Any] = {"name": name}
    if isinstance(spec, dict):  # "auto" and inline splits are not stored: keep their spec
        record["spec"] = spec
    return record


def model_lineage(settings: Settings, version: ModelVersion) -> dict[str, Any]:
    """The chain: model version -> run -> pipeline run -> dataset versions -> sources."""
    from loopml.data import DataCatalog
    from loopml.pipelines import PipelineRuns
    from loopml.tracking import Client

    chain: dict[str, Any] = {
        "model": {"ref": version.ref, "artifact": version.artifact, "flavor": version.flavor},
        "code_version": version.code_version,
        "run": None,
        "pipeline_run": None,
        "datasets": [],
    }
    if version.run_id:
        client = Client(settings, create_store=False)
        try:
            run = client.get_run(version.run_id)
            chain["run"] = {
                "id": run.id,
                "name": run.name,
                "status": run.status.value,
                "params": run.params,
            }
        finally:
            client.close()
    refs: list[str] = [version.dataset] if version.dataset else []
    if version.pipeline_run_id:
        with PipelineRuns(settings, create_store=False) as runs:
            pipe = runs.get(version.pipeline_run_id)
        chain["pipeline_run"] = {
            "id": pipe.id,
            "pipeline": pipe.pipeline,
            "status": pipe.status,
            "params": pipe.params,
            "steps": [s.name for s in pipe.steps],
        }
        chain["code_version"] = chain["code_version"] or pipe.code_version
        refs += [d for step in pipe.steps for d in step.datasets]
    with DataCatalog(settings, create_store=False) as catalog:
        for ref in dict.fromkeys(refs):
            found = catalog.get(ref)
            chain["datasets"].append(
                {
                    "ref": found.ref,
                    "digest": found.digest,
                    "source": found.source,
                    "lineage": found.lineage,
                    "rows": found.row_count,
                }
            )
    return chain


def render_lineage(chain: dict[str, Any]) -> str:
    """The chain as indented text, one link per line."""
    model = chain["model"]
    lines = [f"model {model['ref']} ({model['flavor']}, {model['artifact'][:19]}...)"]
    if chain["run"]:
        run = chain["run"]
        lines.append(f"└─ run {run['id'][:12]} {run['name']} ({run['status']})")
    if chain["pipeline_run"]:
        pipe = chain["pipeline_run"]
        lines.append(
            f"   └─ pipeline run {pipe['id'][:12]} of {pipe['pipeline']} ({pipe['status']})"
        )
    for data in chain["datasets"]:
        source = data["source"].get("path") or data["source"].get("kind") or data["source"]
        lines.append(f"      └─ dataset {data['ref']} ({data['rows']} rows) <- {source}")
    lines.append(f"git commit: {chain['code_version'] or 'unknown'}")
    return "\n".join(lines)
