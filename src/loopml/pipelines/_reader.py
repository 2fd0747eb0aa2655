"""Reading pipeline runs back: list, show, logs and stored outputs."""

from __future__ import annotations

from typing import Any

from loopml.core import NotFoundError
from loopml.governance import StoreService
from loopml.pipelines import _records as records
from loopml.pipelines._records import PipelineRunRecord
from loopml.pipelines._values import load_value

__all__ = ["PipelineRuns"]


class PipelineRuns(StoreService):
    """The pipeline runs recorded in the store that ``settings`` names."""

    def pipelines(self) -> list[tuple[str, int, PipelineRunRecord]]:
        """Every pipeline that has run: name, number of runs, newest run."""
        with self.store.read() as conn:
            return records.list_pipelines(conn)

    def runs(self, pipeline: str | None = None, limit: int = 50) -> list[PipelineRunRecord]:
        """Runs, newest first (without their steps)."""
        with self.store.read() as conn:
            return records.list_pipeline_runs(conn, pipeline, limit)

    def get(self, run_id: str) -> PipelineRunRecord:
        """One run with its steps; ``run_id`` may be a unique prefix of 6+ characters."""
        with self.store.read() as conn:
            return records.get_pipeline_run(conn, run_id)

    def logs(self, run_id: str, step: str) -> str:
        """What a step printed and logged (empty when it printed nothing)."""
        found = self.get(run_id).step(step)
        if found.logs is None:
            return ""
        return self.artifacts.get_bytes(found.logs).decode()

    def output(self, run_id: str, step: str, output: str = "output") -> Any:
        """A step's stored output, loaded back into Python."""
        found = self.get(run_id).step(step)
        ref = found.outputs.get(output)
        if ref is None:
            have = ", ".join(found.outputs) or "none"
            raise NotFoundError(f"step {step!r} of run {run_id} has no output {output!r} ({have})")
        data = self.artifacts.get_bytes(ref.digest)
        return load_value(data, ref.kind)
