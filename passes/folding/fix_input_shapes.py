"""fix_input_shapes: the user's `--input-shape NAME=1,3,640,640` replaces the dynamic dims of main-graph inputs."""
from __future__ import annotations

from onnxopt.errors import OnnxoptError
from onnxopt.ir import Model, Value
from onnxopt.passmanager import Pass, PassResult, register_pass


@register_pass
class FixInputShapes(Pass):
    """input x: [batch, 3, H, W] → input x: [1, 3, 640, 640] as given; main graph only (subgraph inputs are not fed)."""

    name = "fix_input_shapes"
    groups = ("fold",)

    def call(self, model: Model) -> PassResult:
        wanted = self.context.input_shapes
        if not wanted:
            return PassResult(model, False)
        graph = model.graph
        inputs = {v.name: v for v in graph.inputs if not v.is_constant()}
        unknown = sorted(set(wanted) - set(inputs))
        if unknown:
            raise OnnxoptError(
                f"--input-shape names {', '.join(unknown)}, which the model has no input of; "
                f"its inputs are: {', '.join(inputs) or '(none)'}"
            )
        changed = 0
        for name, dims in wanted.items():
            changed += _fix(inputs[name], tuple(dims))
        if changed:
            graph.inferred_types = None  # types inferred from the dynamic dims are not settled any more
        return PassResult(model, changed > 0, counters={"inputs_fixed": changed} if changed else {})


def _fix(value: Value, dims: tuple[int | None, ...]) -> bool:
    """Give `value` the static dims in `dims` (None or a negative number keeps a dim as it is)."""
    shape, elem_type = value.shape, value.dtype
    if elem_type is None:
        raise OnnxoptError(f"input {value.name!r} is not a tensor; --input-shape applies to tensor inputs only")
    if shape is not None and len(shape) != len(dims):
        raise OnnxoptError(
            f"--input-shape {value.name}={','.join(map(str, dims))} has rank {len(dims)}, but the input has "
            f"rank {len(shape)} ({_show(shape)}); give {len(shape)} dims"
        )
    current = shape if shape is not None else (None,) * len(dims)
    new = []
    for have, want in zip(current, dims):
        if want is None or want < 0:
            new.append(have)
        elif isinstance(have, int) and have > 0 and have != want:  # -1 and 0 mark dynamic dims (Paddle exports)
            raise OnnxoptError(
                f"--input-shape {value.name}: dim {len(new)} is fixed at {have} in the model, not {want}; "
                f"only dynamic dims ({_show(current)}) can be set"
            )
        else:
            new.append(want)
    if tuple(new) == tuple(current) and shape is not None:
        return False
    value.set_type(elem_type, tuple(new))
    return True


def _show(shape: tuple) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"
