"""Static QDQ: apply a plan with calibrated ranges to a copy of the prepared float model."""
from __future__ import annotations

from typing import Mapping, Sequence

from onnxopt.ir import Model
from onnxopt.passmanager import PassManager
from onnxopt.quantization.config import QuantConfig
from onnxopt.quantization.insert import InsertQDQ
from onnxopt.quantization.plan import QuantPlan, activation_qparams
from onnxopt.quantization.qparams import QParams
from onnxopt.quantization.report import TensorRecord

CLEANUP = ("remove_redundant_requantize", "remove_unfusable_qdq", "read_shape_of_quantized")


def quantize_static(
    model: Model, plan: QuantPlan, ranges: Mapping[str, tuple[float, float]], config: QuantConfig,
    aliases: Mapping[str, str] | None = None, then: Sequence[str] = (),
) -> tuple[Model, dict[str, QParams]]:
    """A QDQ copy of `model` (left unchanged) and the activation parameters used (see activation_qparams
    for `aliases`); the passes named in `then` run with the clean-ups."""
    import onnxopt.passes  # noqa: F401  (registers the clean-up passes)

    params = activation_qparams(plan, dict(ranges), config, model, dict(aliases or {}))
    result = model.clone()
    InsertQDQ(plan, params, config).call(result)
    PassManager([*CLEANUP, *then], max_iterations=2, transactional=False).run(result)
    return result, params


def tensor_records(
    plan: QuantPlan, params: Mapping[str, QParams], ranges: Mapping[str, tuple[float, float]], config: QuantConfig,
    aliases: Mapping[str, str] | None = None,
) -> list[TensorRecord]:
    """One record per quantized activation tensor, in plan order (constants: range of their data)."""
    records = []
    for name, tensor in plan.tensors.items():
        qp = params[name]
        source = tensor.source if tensor.source in ranges else (aliases or {}).get(tensor.source, tensor.source)
        lo, hi = ranges.get(source, (float("nan"), float("nan")))
        if tensor.constant:
            lo, hi = _range_from_params(qp, config)
        records.append(TensorRecord(name, float(lo), float(hi), float(qp.scale), int(qp.zero_point), config.activation_type))
    return records


def _range_from_params(qp: QParams, config: QuantConfig) -> tuple[float, float]:
    from onnxopt.quantization.qparams import qrange

    qmin, qmax = qrange(config.activation_type, config.symmetric_activations)
    scale, zp = float(qp.scale), int(qp.zero_point)
    return (qmin - zp) * scale, (qmax - zp) * scale
