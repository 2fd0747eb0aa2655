"""Registry: model versions with signatures and lineage, aliases, gates, approvals, cards.

``ModelRegistry`` is the one entry point. A version is registered from a tracking run
that logged a model (``loopml.training.fit`` does), keeps the artifact's digest and
everything it came from, and becomes ``champion`` only through :meth:`promote`, which
requires every declared gate passed and, where the model asks for it, an approval.
"""

from loopml.registry._entities import (
    CHALLENGER,
    CHAMPION,
    AliasMove,
    Approval,
    GateOutcome,
    GateReport,
    ModelVersion,
    RegisteredModel,
    parse_model_ref,
)
from loopml.registry._flavors import LibraryVersionWarning
from loopml.registry._gates import GATE_KINDS, load_gates_file, parse_gates
from loopml.registry._lineage import model_lineage, render_lineage
from loopml.registry._registry import ModelRegistry

__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "GATE_KINDS",
    "AliasMove",
    "Approval",
    "GateOutcome",
    "GateReport",
    "LibraryVersionWarning",
    "ModelRegistry",
    "ModelVersion",
    "RegisteredModel",
    "load_gates_file",
    "model_lineage",
    "parse_gates",
    "parse_model_ref",
    "render_lineage",
]
