"""A firing alert raises ``alert.<rule>``, and a pipeline trigger on it runs (real scheduler)."""

from __future__ import annotations

from pathlib import Path

from loopml.core import Settings
from loopml.monitoring import AlertRule, Alerts, event_name
from loopml.pipelines import Scheduler
from tests.monitoring.alert_helpers import drift

PIPES = """
from pathlib import Path

from loopml.pipelines import pipeline, step


@step
def retrain(marker: str) -> str:
    Path(marker).write_text("retrained")
    return marker


@pipeline
def on_alert(marker: str = ""):
    retrain(marker)
"""

RULE = AlertRule(
    name="drift_high", metric="loopml_drift_share", comparison=">=", threshold=0.5, for_s=10
)
NOW = 1_900_000_000_000


def test_a_firing_alert_fires_its_event_trigger_once(settings: Settings, tmp_path: Path) -> None:
    (tmp_path / "alert_pipes.py").write_text(PIPES)
    marker = tmp_path / "retrained.txt"
    with Scheduler(settings, name="test") as scheduler, Alerts(settings) as alerts:
        scheduler.add_trigger(
            "retrain-on-drift",
            f"{tmp_path / 'alert_pipes.py'}:on_alert",
            on_event=event_name("drift_high"),
            params={"marker": str(marker)},
        )
        pending = alerts.evaluate([RULE], [drift(0.7)], now=NOW)
        assert alerts.raise_events(pending) == []  # pending raises nothing
        assert scheduler.tick() == []

        fired = alerts.evaluate([RULE], [drift(0.7)], now=NOW + 10_000)
        (event,) = alerts.raise_events(fired)
        assert (event.name, event.error) == ("alert.drift_high", None)
        stored = scheduler.events("alert.drift_high")
        assert [(e.id, e.source) for e in stored] == [(event.event_id, "monitoring")]
        assert stored[0].payload["id"] == fired[0].alert.id
        assert stored[0].payload["labels"] == {"deployment": "churn"}
        assert stored[0].payload["value"] == 0.7

        fires = scheduler.tick()
        assert [(f.slot, f.status) for f in fires] == [(f"event:{event.event_id}", "succeeded")]
        assert marker.read_text() == "retrained"
        # still firing in later passes: no new event, so the trigger does not run again
        later = alerts.evaluate([RULE], [drift(0.9)], now=NOW + 20_000)
        assert alerts.raise_events(later) == []
        assert scheduler.tick() == []
        kinds = [t.kind for t in alerts.transitions(fired[0].alert.id)]
        assert kinds == ["pending", "firing", "event"]
