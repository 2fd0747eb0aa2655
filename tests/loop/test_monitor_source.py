"""With no sample source given, the controller asks the monitor itself: traffic that has
drifted from the training data fires the drift trigger, calm traffic does not."""

from __future__ import annotations

import pytest

from loopml.core import ConfigError
from loopml.loop import LoopController, Triggers
from tests.loop.conftest import World
from tests.loop.helpers import rows, serve


def _tick_kinds(world: World, triggers: Triggers) -> list[str]:
    policy = world.policy(triggers=triggers)
    with LoopController(world.settings, policies=[policy], clock=world.clock) as controller:
        return [d.kind for d in controller.tick().decisions]


def test_calm_traffic_fires_nothing(world: World) -> None:
    serve(world.settings, world.deployment, rows(400, rule="a", seed=20))
    assert _tick_kinds(world, Triggers(drift_share=0.4, window="1000rows")) == []


def test_drifted_traffic_retrains_through_the_monitor(world: World) -> None:
    frame = rows(400, rule="a", seed=21)
    frame["a"] = frame["a"] + 3.0  # feature a moves far from what churn@1 trained on
    serve(world.settings, world.deployment, frame)
    assert _tick_kinds(world, Triggers(drift_share=0.4, window="1000rows")) == ["retrain"]
    with LoopController(world.settings, policies=[world.policy()]) as controller:
        [retrain] = controller.history()
    assert retrain.evidence["drift"]["drifted_features"] == ["a"]


@pytest.mark.parametrize("window", ["soon", 5])
def test_a_bad_window_names_the_key(window: object) -> None:
    with pytest.raises(ConfigError, match=r"triggers\.window"):
        Triggers(drift_share=0.4, window=window)  # type: ignore[arg-type]
