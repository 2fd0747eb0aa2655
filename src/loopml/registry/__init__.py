"""Registry: model versions with signatures and lineage, aliases, gates, approvals, cards, ONNX.

``ModelRegistry`` is the one entry point. A version is registered from a tracking run
that logged a model (``loopml.training.fit`` does), keeps the artifact's digest and
everything it came from, and becomes ``champion`` only through :meth:`promote`, which
requires every declared gate passed and, where the model asks for it, an approval.
"""

from typing import TYPE_CHECKING

from loopml.core import lazy_exports as _lazy_exports

if TYPE_CHECKING:
    from loopml.registry._card import ModelCard, build_card, render_html, render_markdown
    from loopml.registry._card_fields import (
        CARD_FIELDS,
        load_card_file,
        merge_card,
        parse_card_settings,
    )
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
    from loopml.registry._importance import FeatureImportance
    from loopml.registry._lineage import model_lineage, render_lineage
    from loopml.registry._onnx import OnnxExport, export_onnx, input_layout, onnx_inputs
    from loopml.registry._registry import ModelRegistry

# Names load on first use (PEP 562): loading a model to serve it needs the registry, not
# model cards, feature importance or ONNX export, which pull in more libraries.
_LAZY = {
    "ModelCard": "_card",
    "build_card": "_card",
    "render_html": "_card",
    "render_markdown": "_card",
    "CARD_FIELDS": "_card_fields",
    "load_card_file": "_card_fields",
    "merge_card": "_card_fields",
    "parse_card_settings": "_card_fields",
    "CHALLENGER": "_entities",
    "CHAMPION": "_entities",
    "AliasMove": "_entities",
    "Approval": "_entities",
    "GateOutcome": "_entities",
    "GateReport": "_entities",
    "ModelVersion": "_entities",
    "RegisteredModel": "_entities",
    "parse_model_ref": "_entities",
    "LibraryVersionWarning": "_flavors",
    "GATE_KINDS": "_gates",
    "load_gates_file": "_gates",
    "parse_gates": "_gates",
    "FeatureImportance": "_importance",
    "model_lineage": "_lineage",
    "render_lineage": "_lineage",
    "OnnxExport": "_onnx",
    "export_onnx": "_onnx",
    "input_layout": "_onnx",
    "onnx_inputs": "_onnx",
    "ModelRegistry": "_registry",
}


__getattr__ = _lazy_exports(__name__, _LAZY, globals())


__all__ = [
    "CARD_FIELDS",
    "CHALLENGER",
    "CHAMPION",
    "GATE_KINDS",
    "AliasMove",
    "Approval",
    "FeatureImportance",
    "GateOutcome",
    "GateReport",
    "LibraryVersionWarning",
    "ModelCard",
    "ModelRegistry",
    "ModelVersion",
    "OnnxExport",
    "RegisteredModel",
    "build_card",
    "export_onnx",
    "input_layout",
    "load_card_file",
    "load_gates_file",
    "merge_card",
    "model_lineage",
    "onnx_inputs",
    "parse_card_settings",
    "parse_gates",
    "parse_model_ref",
    "render_html",
    "render_lineage",
    "render_markdown",
]
