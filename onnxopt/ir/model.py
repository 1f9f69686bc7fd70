"""Model: the graph plus everything around it that a round trip must keep."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from onnx import FunctionProto, StringStringEntryProto, TrainingInfoProto

from onnxopt.ir.graph import Graph


@dataclass(eq=False)
class Model:
    """An ONNX model: graph, opset imports, IR version, producer, metadata, local functions."""

    graph: Graph
    opset_imports: dict[str, int] = field(default_factory=lambda: {"": 21})
    ir_version: int = 10
    producer_name: str = "onnxopt"
    producer_version: str = ""
    domain: str = ""
    model_version: int = 0
    doc_string: str = ""
    metadata_props: dict[str, str] = field(default_factory=dict)
    functions: list[FunctionProto] = field(default_factory=list)
    training_info: list[TrainingInfoProto] = field(default_factory=list)
    configuration: list = field(default_factory=list)
    base_dir: str = ""
    external_data: bool = False

    @property
    def opset(self) -> int:
        """The default-domain (ai.onnx) opset version."""
        return self.opset_imports.get("", self.opset_imports.get("ai.onnx", 1))

    def metadata_entries(self) -> list[StringStringEntryProto]:
        """metadata_props as protos, in insertion order."""
        return [StringStringEntryProto(key=k, value=v) for k, v in self.metadata_props.items()]

    def clone(self) -> Model:
        """A copy whose graph can be changed independently; tensors are shared (they are immutable)."""
        return dataclasses.replace(
            self, graph=self.graph.clone(), opset_imports=dict(self.opset_imports),
            metadata_props=dict(self.metadata_props), functions=list(self.functions),
        )

    def restore(self, snapshot: Model) -> None:
        """Make this model equal to an earlier clone of it, in place."""
        for f in dataclasses.fields(self):
            setattr(self, f.name, getattr(snapshot, f.name))

    def __repr__(self) -> str:
        return f"Model(opset={self.opset}, ir_version={self.ir_version}, {self.graph!r})"
