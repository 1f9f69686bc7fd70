"""Conversion between ONNX protobuf and the IR; streaming, atomic saves with automatic external data."""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from typing import BinaryIO, Callable, Iterator, Sequence

import onnx
from onnx import AttributeProto, GraphProto, ModelProto, NodeProto, TensorProto, TypeProto

from onnxopt.errors import ModelLoadError, OutputPathError
from onnxopt.ir.graph import Graph, gc_paused
from onnxopt.ir.model import Model
from onnxopt.ir.node import Node
from onnxopt.ir.tensor import Tensor, encode_varint
from onnxopt.ir.value import Value

PROTOBUF_LIMIT = 2**31 - 1
# Initializers smaller than this are serialized at once (cheaper than keeping each as a part of its own).
_SMALL_TENSOR_BYTES = 2**16
# NodeProto fields kept only through the loaded proto (the newer ones exist only in newer onnx releases).
_UNMODELLED_NODE_FIELDS = [f for f in ("metadata_props", "device_configurations") if f in NodeProto.DESCRIPTOR.fields_by_name]
# Above this many bytes of initializers a save switches to external data (leaves room for the graph itself).
EXTERNAL_DATA_THRESHOLD = 2**31 - 2**26

_Scope = list[dict[str, Value]]


# ---- loading ---------------------------------------------------------------------------------
def load(path: str | os.PathLike) -> Model:
    """Read an .onnx file into the IR; weights stay undecoded and external data is memory-mapped on use."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ModelLoadError(f"{path}: no such file; check the path")
    if os.path.isdir(path):
        raise ModelLoadError(f"{path} is a directory; give the path of an .onnx file")
    if os.path.getsize(path) == 0:
        raise ModelLoadError(f"{path} is empty; re-export the model")
    with open(path, "rb") as f:
        data = f.read()
    try:
        proto = ModelProto.FromString(data)
    except Exception as exc:  # protobuf raises DecodeError and sometimes RuntimeError
        raise ModelLoadError(f"{path} is not an ONNX model (protobuf parse failed: {exc}); re-export it") from None
    del data
    if not proto.HasField("graph") or not proto.opset_import:
        raise ModelLoadError(f"{path} parses as protobuf but is not an ONNX model (no graph or opset); re-export it")
    base_dir = os.path.dirname(os.path.abspath(path))
    model = from_proto(proto, base_dir)
    if model.external_data:
        _check_external_files(model.graph, base_dir, path)
    return model


def _check_external_files(graph: Graph, base_dir: str, path: str) -> None:
    checked: set[str] = set()
    for name, value in graph.initializers.items():
        location = value.const_value.external_location
        if location is None or location in checked:
            continue
        if not os.path.isfile(os.path.join(base_dir, location)):
            raise ModelLoadError(
                f"{path}: external data file {location!r} (tensor {name!r}) is missing; "
                f"put it beside the model in {base_dir}"
            )
        checked.add(location)


def stored_bytes(model: Model | ModelProto, path: str | os.PathLike) -> int:
    """Bytes on disk of a model loaded from `path` (into the IR, or by onnx without its external data): the file
    and every external data file its weights are read from."""
    if isinstance(model, Model):
        values = (v.const_value for g in model.graph.all_graphs() for v in g.initializers.values())
        locations = {tensor.external_location for tensor in values} - {None}
    else:
        locations = {entry.value for graph in graph_protos(model.graph) for tensor in graph.initializer
                     if tensor.data_location == TensorProto.EXTERNAL for entry in tensor.external_data
                     if entry.key == "location"}
    base_dir = os.path.dirname(os.path.abspath(path))
    return os.path.getsize(path) + sum(os.path.getsize(os.path.join(base_dir, loc)) for loc in locations)


def graph_protos(graph: GraphProto) -> Iterator[GraphProto]:
    """A GraphProto and every subgraph nested in its nodes' attributes, outer graphs first."""
    yield graph
    for node in graph.node:
        for attr in node.attribute:
            for sub in ([attr.g] if attr.type == AttributeProto.GRAPH else attr.graphs):
                yield from graph_protos(sub)


def from_proto(proto: ModelProto, base_dir: str = "") -> Model:
    """Wrap a ModelProto (it must stay alive: undecoded tensors refer to it)."""
    graph = Graph()
    graph.legacy_initializer_inputs = proto.ir_version < 4
    with gc_paused():
        _fill_graph(graph, proto.graph, [], base_dir)
    graph.root()._names.update(f.name for f in proto.functions)
    model = Model(
        graph=graph,
        opset_imports={op.domain: op.version for op in proto.opset_import},
        ir_version=proto.ir_version,
        producer_name=proto.producer_name,
        producer_version=proto.producer_version,
        domain=proto.domain,
        model_version=proto.model_version,
        doc_string=proto.doc_string,
        metadata_props={p.key: p.value for p in proto.metadata_props},
        functions=list(proto.functions),
        training_info=list(proto.training_info),
        configuration=list(proto.configuration) if hasattr(proto, "configuration") else [],
        base_dir=base_dir,
        external_data=any(v.const_value.external_location is not None for v in graph.initializers.values()),
    )
    return model


def _fill_graph(graph: Graph, proto: GraphProto, outer: _Scope, base_dir: str) -> None:
    graph.name = proto.name
    graph.doc_string = proto.doc_string
    scope: dict[str, Value] = {}
    chain = [scope, *outer]
    names = graph.root()._names
    dangling: set[str] = set()

    def lookup(name: str) -> Value:
        for table in chain:
            value = table.get(name)
            if value is not None:
                return value
        # An undefined name: keep it as a dangling value so a round trip stays lossless and lint can name it.
        value = Value(name)
        scope[name] = value
        dangling.add(name)
        return value

    for tensor in proto.initializer:
        value = Value(tensor.name, const_value=Tensor.from_proto(tensor, base_dir))
        value.graph = graph
        graph.initializers[value.name] = value
        scope[value.name] = value
    for sparse in proto.sparse_initializer:
        graph.sparse_initializers.append(sparse)
        name = sparse.values.name
        value = Value(name)
        value.graph = graph
        scope[name] = value
    inputs = []
    for info in proto.input:
        value = scope.get(info.name) or Value(info.name)
        value.type, value.doc_string = _declared_type(info), info.doc_string
        value.graph = graph
        scope[info.name] = value
        inputs.append(value)
    graph._inputs = inputs
    graph.input_set = set(inputs)
    infos = {info.name: info for info in proto.value_info}
    get = scope.get
    node_list: list[Node] = []
    for node_proto in proto.node:
        # the loop is the load hot path: upb field reads cost more than building the objects, so read each once
        inputs = [(get(name) or lookup(name)) if name else None for name in node_proto.input]
        outputs = []
        for name in node_proto.output:
            if dangling and name in dangling:
                # read before it is produced (graph out of order): reuse the placeholder so use-def stays whole
                dangling.discard(name)
                value = scope[name]
            else:
                value = Value(name)
                scope[name] = value
            value.graph = graph
            if infos:
                info = infos.pop(name, None)
                if info is not None:
                    value.type, value.doc_string = _declared_type(info), info.doc_string
            outputs.append(value)
        node = Node(node_proto.op_type, inputs, outputs, domain=node_proto.domain, name=node_proto.name)
        node._overload = node_proto.overload
        node._doc_string = node_proto.doc_string
        node._source = node_proto
        if node_proto.attribute:
            _read_attributes(node, node_proto, graph, chain, base_dir)
        else:
            node.proto = node_proto
        node_list.append(node)
    _link(graph, node_list)
    names.update(scope)
    names.update([n.name for n in node_list])
    outputs = []
    for info in proto.output:
        value = lookup(info.name)
        value.type, value.doc_string = _declared_type(info), info.doc_string
        outputs.append(value)
    graph.set_outputs(outputs)
    graph.orphan_value_info = list(infos.values())
    graph.quantization_annotation = list(proto.quantization_annotation)
    graph.metadata_props = list(proto.metadata_props)


def _declared_type(info: onnx.ValueInfoProto) -> onnx.TypeProto | None:
    """The declared type, or None when there is none (reading `info.type` would give an empty TypeProto)."""
    return info.type if info.HasField("type") else None


def _link(graph: Graph, nodes: list[Node]) -> None:
    prev = None
    for node in nodes:
        node.graph = graph
        node._prev = prev
        if prev is not None:
            prev._next = node
        prev = node
    graph._first = nodes[0] if nodes else None
    graph._last = prev
    graph._count = len(nodes)
    graph._subgraph_holders = sum(1 for node in nodes if node.subgraphs())


def _read_attributes(node: Node, proto: NodeProto, graph: Graph, chain: _Scope, base_dir: str) -> None:
    """Keep attributes as protos; subgraph attributes become Graphs (and the node no longer reuses its proto)."""
    has_graph = False
    for attr in proto.attribute:
        kind = attr.type
        if kind == AttributeProto.GRAPH:
            node.attrs[attr.name] = _subgraph(attr.g, node, graph, chain, base_dir)
            has_graph = True
        elif kind == AttributeProto.GRAPHS:
            node.attrs[attr.name] = tuple(_subgraph(g, node, graph, chain, base_dir) for g in attr.graphs)
            has_graph = True
        else:
            node.attrs[attr.name] = attr
    node.proto = None if has_graph else proto


def _subgraph(proto: GraphProto, node: Node, graph: Graph, chain: _Scope, base_dir: str) -> Graph:
    sub = Graph()
    sub.parent = node
    sub.legacy_initializer_inputs = graph.legacy_initializer_inputs
    node.graph = graph  # so the subgraph finds the model's name table through its parent
    _fill_graph(sub, proto, chain, base_dir)
    return sub


# ---- saving ----------------------------------------------------------------------------------
Part = bytes | memoryview | TensorProto


def _part_len(part: Part) -> int:
    if isinstance(part, bytes):
        return len(part)
    if isinstance(part, memoryview):
        return part.nbytes
    return part.ByteSize()


def _part_bytes(part: Part) -> bytes | memoryview:
    return part.SerializeToString() if isinstance(part, TensorProto) else part


@dataclass(frozen=True)
class WriteView:
    """Edits serialize() applies while writing instead of to a copy of the model (shape inference's skeleton):
    every value is written with the type `type_of` gives, and the initializers in `weights` (of any graph) as typed
    inputs of the main graph."""

    type_of: Callable[[Value], TypeProto | None]
    weights: dict[Value, None]


def serialize(model: Model, view: WriteView | None = None) -> bytes:
    """The model as protobuf bytes, all data inline (for sessions and small models), as `view` shows it if given."""
    with gc_paused():
        return b"".join(_part_bytes(part) for part in _model_parts(model, None, "", view=view))


def to_proto(model: Model) -> ModelProto:
    """The model as a ModelProto, all data inline."""
    return ModelProto.FromString(serialize(model))


def check_output_path(path: str | os.PathLike) -> str:
    """The folder `path` would be saved in, after checking a model can be written there (OutputPathError if not)."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise OutputPathError(f"cannot write {path}: {directory} is a file, not a directory; choose another path")
    if not os.path.isdir(directory):
        raise OutputPathError(f"cannot write {path}: directory {directory} does not exist; create it first")
    if os.path.isdir(path):
        raise OutputPathError(f"cannot write {path}: it is a directory; give a file name")
    if os.path.exists(path) and not os.path.isfile(path):
        # replacing it would swap a device, pipe or socket for a regular file
        raise OutputPathError(f"cannot write {path}: it is not a regular file; give a file path")
    if not os.access(directory, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise OutputPathError(f"cannot write {path}: permission denied; choose another output path")
    return directory


def _new_file_mode() -> int:
    umask = os.umask(0)  # reading the umask means setting it: once, at import, before any thread writes files
    os.umask(umask)
    return 0o666 & ~umask


NEW_FILE_MODE = _new_file_mode()  # what open() gives a new file; mkstemp's is 0600


def _publish(tmp: str, path: str | os.PathLike) -> None:
    """Give a finished temporary file the mode a newly created file gets and move it to `path`."""
    os.chmod(tmp, NEW_FILE_MODE)
    os.replace(tmp, path)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write a text file through a temporary file in its folder and os.replace, so a failure leaves no partial file
    (OutputPathError when the folder is missing or not writable)."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise OutputPathError(f"cannot write '{os.fspath(path)}': folder '{directory}' does not exist")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", dir=directory)
    except OSError as exc:
        raise OutputPathError(f"cannot write '{os.fspath(path)}': {exc.strerror}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        _publish(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def save(
    model: Model, path: str | os.PathLike, external_data: bool | None = None, size_threshold: int = 1024
) -> list[str]:
    """Write atomically and return the files written (the model, then its data file if any).

    external_data=None keeps the input's choice and switches on past the 2 GB limit.
    """
    path = os.fspath(path)
    directory = check_output_path(path)
    if external_data is None:
        total = sum(v.const_value.nbytes for v in model.graph.initializers.values())
        external_data = model.external_data or total > EXTERNAL_DATA_THRESHOLD
    location = os.path.basename(path) + ".data"
    temps: list[str] = []
    data_stream = None
    try:
        if external_data:
            fd, data_tmp = tempfile.mkstemp(dir=directory, prefix=".onnxopt-", suffix=".data.tmp")
            temps.append(data_tmp)
            data_stream = os.fdopen(fd, "wb")
        fd, model_tmp = tempfile.mkstemp(dir=directory, prefix=".onnxopt-", suffix=".onnx.tmp")
        temps.append(model_tmp)
        with os.fdopen(fd, "wb") as out, gc_paused():
            parts = _model_parts(model, data_stream, location if external_data else "", size_threshold)
            for part in parts:
                out.write(_part_bytes(part))
        written = [path]
        if data_stream is not None:
            data_stream.close()
            written.append(os.path.join(directory, location))
            _publish(temps[0], written[1])
        _publish(model_tmp, path)
        temps.clear()
        return written
    except OSError as exc:
        if exc.filename is not None and os.path.dirname(os.path.abspath(exc.filename)) != directory:
            raise  # reading the model's own external data failed, not writing the output
        raise OutputPathError(f"cannot write {path}: {exc.strerror or exc}; choose another output path") from None
    finally:
        if data_stream is not None:
            data_stream.close()
        for tmp in temps:
            if os.path.exists(tmp):
                os.remove(tmp)


def _present(**fields: object) -> dict[str, object]:
    # proto2 records an explicitly set empty string as present; leave empty fields unset so round trips are exact
    return {key: value for key, value in fields.items() if value}


def _field(number: int, payload_len: int) -> bytes:
    """The tag and length that precede a length-delimited field (fast path: a small field of a small message)."""
    tag = (number << 3) | 2
    if tag < 0x80 and payload_len < 0x80:
        return bytes((tag, payload_len))
    return encode_varint(tag) + encode_varint(payload_len)


def _model_parts(
    model: Model, data_stream: BinaryIO | None, location: str, size_threshold: int = 1024,
    view: WriteView | None = None,
) -> Iterator[Part]:
    shell = ModelProto(
        **_present(
            ir_version=model.ir_version,
            producer_name=model.producer_name,
            producer_version=model.producer_version,
            domain=model.domain,
            model_version=model.model_version,
            doc_string=model.doc_string,
        )
    )
    for domain, version in model.opset_imports.items():
        shell.opset_import.add(domain=domain, version=version)
    shell.metadata_props.extend(model.metadata_entries())
    shell.functions.extend(model.functions)
    shell.training_info.extend(model.training_info)
    if model.configuration:
        shell.configuration.extend(model.configuration)
    yield shell.SerializeToString()
    graph_parts = list(_graph_parts(model.graph, data_stream, location, size_threshold, view))
    yield _field(7, sum(map(_part_len, graph_parts)))
    yield from graph_parts


def _graph_parts(
    graph: Graph, data_stream: BinaryIO | None, location: str, size_threshold: int, view: WriteView | None = None
) -> Iterator[Part]:
    """The main graph's parts (a view's weights join its inputs), or a standalone subgraph's."""
    weights = [w for w in view.weights if w not in graph.input_set] if view is not None else []
    yield _graph_shell_bytes(graph, view, weights)
    yield from _nodes_parts(graph, view)
    yield from _initializer_parts(graph, data_stream, location, size_threshold, view)


def _initializer_parts(
    graph: Graph, data_stream: BinaryIO | None, location: str, size_threshold: int, view: WriteView | None = None
) -> Iterator[Part]:
    small: list[bytes] = []  # consecutive small initializers, serialized now and written as one part
    for name, value in graph.initializers.items():
        if view is not None and value in view.weights:
            continue
        tensor = value.const_value
        nbytes = tensor.nbytes
        # string tensors have no raw byte form, so they cannot live in external data (onnx agrees)
        if data_stream is not None and nbytes >= size_threshold and tensor.dtype != TensorProto.STRING:
            parts = [tensor.write_external(name, data_stream, location).SerializeToString()]
        elif nbytes < _SMALL_TENSOR_BYTES:
            parts = [tensor.serialized(name)]
        else:
            parts = tensor.serialized_parts(name)
        if nbytes < _SMALL_TENSOR_BYTES:
            data = parts[0]  # one bytes object
            small += (_field(5, len(data)), data)
            continue
        if small:
            yield b"".join(small)
            small = []
        # large data stays unserialized until it is written, so only one tensor's copy exists at a time
        yield _field(5, sum(map(_part_len, parts)))
        yield from parts
    if small:
        yield b"".join(small)


def graph_to_proto(graph: Graph) -> GraphProto:
    """A (sub)graph as a GraphProto, data inline."""
    return GraphProto.FromString(b"".join(_part_bytes(p) for p in _graph_parts(graph, None, "", 0)))


def _type(value: Value, view: WriteView | None) -> TypeProto | None:
    return value.type if view is None else view.type_of(value)


def _value_info(value: Value, view: WriteView | None) -> onnx.ValueInfoProto:
    info = onnx.ValueInfoProto(**_present(name=value.name, doc_string=value.doc_string))
    type_ = _type(value, view)
    if type_ is not None:
        info.type.CopyFrom(type_)
    return info


def _graph_shell_bytes(graph: Graph, view: WriteView | None = None, extra_inputs: Sequence[Value] = ()) -> bytes:
    """Everything in the GraphProto but nodes and initializers; value_info entries are encoded directly (hot path)."""
    return _graph_shell(graph, view, extra_inputs).SerializeToString() + _value_infos_bytes(graph, view)


def _value_infos_bytes(graph: Graph, view: WriteView | None) -> bytes:
    chunks = []
    interface = graph.input_set | graph.output_set
    for node in graph:
        for value in node.outputs:
            type_ = _type(value, view)
            if type_ is not None and value not in interface:
                chunks.append(_value_info_bytes(value, type_))
    for info in graph.orphan_value_info:
        data = info.SerializeToString()
        chunks += (_field(13, len(data)), data)
    return b"".join(chunks)


def _subgraph_parts(graph: Graph, view: WriteView | None) -> _Parts:
    """A subgraph's GraphProto bytes in parts, data inline, fields in number order (what serializing its GraphProto
    gives)."""
    middle = _graph_shell(graph, view)  # doc_string (10), input (11), output (12) once the rest is moved out
    head = GraphProto(**_present(name=middle.name))  # name (2)
    middle.ClearField("name")
    tail = GraphProto()  # quantization_annotation (14), sparse_initializer (15), metadata_props (16)
    for field in ("quantization_annotation", "sparse_initializer", "metadata_props"):
        getattr(tail, field).extend(getattr(middle, field))
        middle.ClearField(field)
    parts = _nodes_parts(graph, view)
    parts.add(head.SerializeToString(), *map(_part_bytes, _initializer_parts(graph, None, "", 0, view)),
              middle.SerializeToString(), _value_infos_bytes(graph, view), tail.SerializeToString())
    return parts


def _value_info_bytes(value: Value, type_: TypeProto) -> bytes:
    """GraphProto.value_info (field 13) entry: ValueInfoProto name (1), type (2), doc_string (3); kept on the value
    for the next call with the same type object, name and doc_string."""
    wire = value._wire
    if wire is not None and wire[0] is type_ and wire[1] == value.name and wire[2] == value.doc_string:
        return wire[3]
    body = b""
    if value.name:
        name = value.name.encode()
        body += _field(1, len(name)) + name
    data = type_.SerializeToString()
    body += _field(2, len(data)) + data
    if value.doc_string:
        doc = value.doc_string.encode()
        body += _field(3, len(doc)) + doc
    data = _field(13, len(body)) + body
    value._wire = (type_, value.name, value.doc_string, data)
    return data


def _graph_shell(graph: Graph, view: WriteView | None = None, extra_inputs: Sequence[Value] = ()) -> GraphProto:
    shell = GraphProto(**_present(name=graph.name, doc_string=graph.doc_string))
    shell.input.extend(_value_info(v, view) for v in (*graph.inputs, *extra_inputs))
    if graph.legacy_initializer_inputs:
        # IR < 4 requires every initializer to be a graph input too; new ones (folded weights) join the list
        for value in graph.initializers.values():
            if value not in graph.input_set and (view is None or value not in view.weights):
                info = shell.input.add(name=value.name)
                info.type.CopyFrom(onnx.helper.make_tensor_type_proto(value.const_value.dtype, value.const_value.shape))
    shell.output.extend(_value_info(v, view) for v in graph.outputs)
    shell.sparse_initializer.extend(graph.sparse_initializers)
    shell.quantization_annotation.extend(graph.quantization_annotation)
    shell.metadata_props.extend(graph.metadata_props)
    return shell


class _Parts(list):
    """A message's bytes in pieces, with their total length kept as pieces are added.

    Nested graphs stay in pieces up to the file (or the one join of serialize): joining at every level would copy
    the weights of deeply nested subgraphs once per level."""

    def __init__(self) -> None:
        super().__init__()
        self.size = 0

    def add(self, *pieces: Part) -> None:
        """Append raw pieces."""
        for piece in pieces:
            self.append(piece)
            self.size += _part_len(piece)

    def add_message(self, number: int, message: _Parts) -> None:
        """Append field `number` holding `message`."""
        self.add(_field(number, message.size))
        self.extend(message)
        self.size += message.size


def _nodes_parts(graph: Graph, view: WriteView | None = None) -> _Parts:
    """GraphProto field 1 (node) for every node; unchanged nodes reuse their NodeProto (loaded or built before)."""
    parts = _Parts()
    plain: list[bytes] = []  # consecutive nodes without subgraphs, joined into one piece
    for node in graph:
        proto = node.proto
        if proto is None and node.subgraphs():
            parts.add(b"".join(plain))
            plain = []
            parts.add_message(1, _holder_parts(node, view))
            continue
        if proto is None:
            node.proto = proto = node_to_proto(node)  # valid until the node changes (see Node.proto)
        data = proto.SerializeToString()
        plain += (_field(1, len(data)), data)
    parts.add(b"".join(plain))
    return parts


def _holder_parts(node: Node, view: WriteView | None = None) -> _Parts:
    """node_to_proto(node).SerializeToString() in parts for a node holding subgraphs, with the subgraphs' parts in
    place: building them as protos copies each nested level several times (parse, attribute, append, serialize)."""
    head = NodeProto(
        input=[v.name if v is not None else "" for v in node.inputs],
        output=[v.name for v in node.outputs],
        **_present(op_type=node.op_type, name=node.name),
    )
    parts = _Parts()
    parts.add(head.SerializeToString())  # fields 1-4; attributes are field 5, the rest follow in field order
    for name, value in node.attrs.items():
        if isinstance(value, Graph):
            parts.add_message(5, _graph_attribute_parts(name, AttributeProto.GRAPH, 6, (value,), view))
        elif isinstance(value, tuple):
            parts.add_message(5, _graph_attribute_parts(name, AttributeProto.GRAPHS, 11, value, view))
        else:
            data = value.SerializeToString()
            parts.add(_field(5, len(data)), data)
    tail = NodeProto(**_present(domain=node.domain, doc_string=node.doc_string, overload=node.overload))
    if node._source is not None:
        for field in _UNMODELLED_NODE_FIELDS:
            getattr(tail, field).extend(getattr(node._source, field))
    parts.add(tail.SerializeToString())
    return parts


def _graph_attribute_parts(
    name: str, kind: int, number: int, graphs: tuple[Graph, ...], view: WriteView | None
) -> _Parts:
    """AttributeProto bytes in parts: name (field 1), each graph (field `number`: 6 for g, 11 for graphs), type
    (field 20)."""
    encoded = name.encode()
    parts = _Parts()
    parts.add(_field(1, len(encoded)), encoded)
    for graph in graphs:
        parts.add_message(number, _subgraph_parts(graph, view))
    parts.add(bytes((20 << 3, 1, kind)))  # field 20 as a varint (tag 160 takes two bytes); kind < 128
    return parts


def node_to_proto(node: Node) -> NodeProto:
    """A node as a NodeProto (subgraphs converted recursively)."""
    proto = NodeProto(
        input=[v.name if v is not None else "" for v in node.inputs],
        output=[v.name for v in node.outputs],
        attribute=[value if isinstance(value, AttributeProto) else _graph_attribute(name, value)
                   for name, value in node.attrs.items()],
        **_present(op_type=node.op_type, domain=node.domain, name=node.name, doc_string=node.doc_string,
                   overload=node.overload),
    )
    source = node._source
    if source is not None:  # fields the IR does not model are carried over from the loaded proto
        for field in _UNMODELLED_NODE_FIELDS:
            getattr(proto, field).extend(getattr(source, field))
    return proto


def _graph_attribute(name: str, value: Graph | tuple[Graph, ...]) -> AttributeProto:
    if isinstance(value, Graph):
        return onnx.helper.make_attribute(name, graph_to_proto(value))
    return onnx.helper.make_attribute(name, [graph_to_proto(g) for g in value])
