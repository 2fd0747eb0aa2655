"""The loop: policies and the controller that retrains, canaries, promotes and rolls back.

from loopml.loop import LoopController, load_policies

with LoopController(settings) as controller:     # policies from [loop.*] in loopml.toml
    report = controller.tick()                    # one pass; run() is the daemon
    controller.history("churn-api")               # decisions with their evidence
"""

from loopml.loop._controller import SERVICE_NAME, LoopController, TickReport
from loopml.loop._lock import Lease, LeaseHolder, LeaseLostError
from loopml.loop._monitor_source import MonitorSamples
from loopml.loop._policy import (
    METRICS,
    CanaryStep,
    Evaluation,
    Guardrails,
    LoopPolicy,
    Rollout,
    Triggers,
)
from loopml.loop._policy_load import load_policies, parse_duration, policy_from_dict
from loopml.loop._records import KINDS, STATES, Decision, LoopState
from loopml.loop._triggers import Fired, Sample, SampleSource, check_triggers

__all__ = [
    "KINDS",
    "METRICS",
    "SERVICE_NAME",
    "STATES",
    "CanaryStep",
    "Decision",
    "Evaluation",
    "Fired",
    "Guardrails",
    "Lease",
    "LeaseHolder",
    "LeaseLostError",
    "LoopController",
    "LoopPolicy",
    "LoopState",
    "MonitorSamples",
    "Rollout",
    "Sample",
    "SampleSource",
    "TickReport",
    "Triggers",
    "check_triggers",
    "load_policies",
    "parse_duration",
    "policy_from_dict",
]
