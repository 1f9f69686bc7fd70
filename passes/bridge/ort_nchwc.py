"""Bridge: ONNX Runtime's NCHWc layout transformer as a pass, for models that run on ORT's CPU provider only."""
from __future__ import annotations

import collections
import functools
import os
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

from onnxopt.ir import Model, Node, from_proto, save
from onnxopt.passes.bridge.canonical import canonicalize
from onnxopt.passmanager import Pass, PassResult, register_pass

NCHWC_DOMAIN = "com.microsoft.nchwc"
BLOCK_KEY = "onnxopt.nchwc_block"
# the transformer starts from 2-D convolutions with constant float weights; all else it converts hangs off them
_SEEDS = {("", "Conv"), ("ai.onnx", "Conv"), ("com.microsoft", "FusedConv")}
# every other ORT graph optimizer, by the name `disabled_optimizers` takes (unknown names are ignored)
_OTHER_OPTIMIZERS = (
    "AttentionFusion", "Avx2WeightS8ToU8Transformer", "BiasDropoutFusion", "BiasGeluFusion",
    "BiasSkipLayerNormFusion", "BiasSoftmaxFusion", "CastChainElimination", "CastElimination",
    "CastFloat16Transformer", "ClipQuantFusion", "CommonSubexpressionElimination", "ConcatSliceElimination",
    "ConstantFolding", "ConstantFoldingDQ", "ConstantSharing", "ConvActivationFusion", "ConvAddActivationFusion",
    "ConvAddFusion", "ConvBNFusion", "ConvMulFusion", "DQMatMulNBitsFusion", "DivMulFusion", "DoubleQDQPairsRemover",
    "DynamicQuantizeMatMulFusion", "EmbedLayerNormFusion", "EnsureUniqueDQForNodeUnit", "ExpandElimination",
    "FastGeluFusion", "FreeDimensionOverrideTransformer", "FuseFp16InitializerToFp32NodeTransformer",
    "FuseInitializersTransformer", "GatherSliceToSplitFusion", "GatherToSliceFusion", "GeluApproximation",
    "GeluFusion", "GeluFusionL1", "GeluFusionL2", "GemmActivationFusion", "GemmSumFusion", "GemmTransposeFusion",
    "GqaValueLayoutTransformer", "GroupQueryAttentionFusion", "GroupQueryAttentionPreNormFusion",
    "LabelEncoderFusion", "LayerNormFusion", "LayerNormFusionL1", "LayerNormFusionL2", "Level1_RuleBasedTransformer",
    "Level2_RuleBasedTransformer", "MatMulActivationFusion", "MatMulAddFusion", "MatMulIntegerToFloatFusion",
    "MatMulNBitsFusion", "MatMulNBitsMlpFusion", "MatMulNBitsQLoRAFusion", "MatMulNBitsQkvFusion",
    "MatMulScaleFusion", "MatmulBNFusion", "MatmulTransposeFusion", "MemcpyTransformer", "NhwcTransformer",
    "NoopElimination", "NotWhereFusion", "PadFusion", "PreShapeNodeElimination", "QDQFinalCleanupTransformer",
    "QDQPropagationTransformer", "QDQS8ToU8Transformer", "QDQSelectorActionTransformer", "QuickGeluFusion",
    "ReluQuantFusion", "RemoveDuplicateCastTransformer", "ReshapeFusion", "SimplifiedLayerNormFusion",
    "SkipLayerNormFusion", "SliceConcatToSpaceToDepthFusion", "SwiGluFusion", "TransposeOptimizer",
    "UnsqueezeElimination",
)


@register_pass
class OrtNchwcLayout(Pass):
    """Conv, pools, Resize, BN in NCHW → ORT's blocked-layout kernels (com.microsoft.nchwc), by ORT's NchwcTransformer."""

    name = "ort_nchwc_layout"

    def call(self, model: Model) -> PassResult:
        if not any(_is_seed(node) for graph in model.graph.all_graphs() for node in graph):
            return PassResult(model, False)
        with tempfile.TemporaryDirectory(prefix="onnxopt-nchwc-") as work:
            source, target = os.path.join(work, "in.onnx"), os.path.join(work, "out.onnx")
            save(model, source)
            run_nchwc_transformer(source, target)
            transformed = onnx.load(target)
        # ORT emits nodes in hash-map order and numbers its made-up names in that order: settle both
        canonicalize(transformed.graph, _names(model), "nchwc")
        rebuilt = from_proto(transformed, model.base_dir)
        after = _histogram(rebuilt)
        if after == _histogram(model):
            return PassResult(model, False)
        model.graph, model.opset_imports = rebuilt.graph, rebuilt.opset_imports
        model.metadata_props[BLOCK_KEY] = str(nchwc_block_size())
        return PassResult(model, True, {"nchwc_nodes": sum(n for (domain, _), n in after.items() if domain == NCHWC_DOMAIN)})


def run_nchwc_transformer(source: str, target: str) -> None:
    """Write to `target` what ORT's NchwcTransformer alone (every other ORT optimizer disabled) makes of `source`."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.optimized_model_filepath = target
    options.log_severity_level = 3  # ORT warns that the layout is specific to this CPU: the pass says so itself
    options.add_session_config_entry("session.optimized_model_external_initializers_file_name", "out.weights")
    options.add_session_config_entry("session.optimized_model_external_initializers_min_size_in_bytes", "1048576")
    ort.InferenceSession(source, options, providers=["CPUExecutionProvider"],
                         disabled_optimizers=list(_OTHER_OPTIMIZERS))


@functools.cache
def nchwc_block_size() -> int:
    """The channel block ORT's NCHWc kernels use on this CPU (16 with AVX-512, 8 with AVX2), read off a probe."""
    weight = helper.make_tensor("w", TensorProto.FLOAT, [1, 1, 1, 1], np.ones(1, np.float32))
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"])], "probe",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [weight])
    probe = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    with tempfile.TemporaryDirectory(prefix="onnxopt-nchwc-") as work:
        source, target = os.path.join(work, "probe.onnx"), os.path.join(work, "out.onnx")
        onnx.save(probe, source)
        run_nchwc_transformer(source, target)
        laid_out = onnx.load(target)
    return max((int(t.dims[0]) for t in laid_out.graph.initializer), default=1)


def _is_seed(node: Node) -> bool:
    weight = node.inputs[1] if len(node.inputs) > 1 else None
    return ((node.domain, node.op_type) in _SEEDS and weight is not None and weight.is_constant()
            and weight.dtype == TensorProto.FLOAT and len(weight.shape) == 4)


def _names(model: Model) -> set[str]:
    """Every node and value name in the model, subgraphs included."""
    names: set[str] = set()
    for graph in model.graph.all_graphs():
        names.update(v.name for v in graph.inputs)
        names.update(graph.initializers)
        for node in graph:
            names.add(node.name)
            names.update(v.name for v in node.outputs)
    return names


def _histogram(model: Model) -> collections.Counter:
    return collections.Counter((node.domain, node.op_type) for graph in model.graph.all_graphs() for node in graph)
