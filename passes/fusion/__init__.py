"""Fusion rules into standard ONNX ops, each its own pass in group `fuse`; the list order is the run order.

BatchNormalizations sharing an input rebase onto the first of them before it folds into the producer.
Mul before Add: an exporter's decomposed BatchNorm, Add(Mul(Conv(x), s), t), folds into the Conv in one round.
Transposes reach MatMul/Gemm weights before MatMul + Add becomes Gemm, and that before Gemm + BatchNormalization.
"""
from __future__ import annotations

from onnxopt.passes.fusion.bn_affine import FuseAddIntoBatchNorm, FuseMulIntoBatchNorm
from onnxopt.passes.fusion.bn_sibling import RebaseBnOnSibling
from onnxopt.passes.fusion.conv_add import FuseAddIntoConv
from onnxopt.passes.fusion.conv_bn import FuseBnIntoConv
from onnxopt.passes.fusion.conv_mul import FuseMulIntoConv
from onnxopt.passes.fusion.conv_transpose_bn import FuseBnIntoConvTranspose
from onnxopt.passes.fusion.gemm_bn import FuseBnIntoGemm
from onnxopt.passes.fusion.matmul_add_gemm import FuseMatmulAddIntoGemm
from onnxopt.passes.fusion.pad_conv import FusePadIntoConv
from onnxopt.passes.fusion.pad_pool import FusePadIntoPool
from onnxopt.passes.fusion.transpose_gemm import FuseTransposeIntoGemm
from onnxopt.passes.fusion.transpose_matmul import FuseTransposeIntoMatmulWeight
from onnxopt.rewrite import rule_pass

FUSION_RULES = (
    FusePadIntoConv,
    FusePadIntoPool,
    RebaseBnOnSibling,
    FuseBnIntoConv,
    FuseBnIntoConvTranspose,
    FuseMulIntoConv,
    FuseAddIntoConv,
    FuseMulIntoBatchNorm,
    FuseAddIntoBatchNorm,
    FuseTransposeIntoMatmulWeight,
    FuseTransposeIntoGemm,
    FuseMatmulAddIntoGemm,
    FuseBnIntoGemm,
)

for _rule in FUSION_RULES:
    rule_pass(_rule, groups=("fuse",))
from onnxopt.passes.fusion import fuse_layer_norm  # noqa: F401,E402  (registers fuse_layer_norm)
from onnxopt.passes.fusion import fuse_rms_norm  # noqa: F401,E402  (registers fuse_rms_norm)
from onnxopt.passes.fusion import fuse_skip_layer_norm  # noqa: F401,E402  (registers fuse_skip_layer_norm)
from onnxopt.passes.fusion import fuse_gelu  # noqa: F401,E402  (registers fuse_gelu, fuse_bias_gelu)
from onnxopt.passes.fusion import fuse_hard_swish  # noqa: F401,E402  (registers fuse_hard_swish)
from onnxopt.passes.fusion import fuse_hard_sigmoid  # noqa: F401,E402  (registers fuse_hard_sigmoid)
from onnxopt.passes.fusion import regroup_hard_swish  # noqa: F401,E402  (registers regroup_hard_swish)
from onnxopt.passes.fusion import fuse_silu  # noqa: F401,E402  (registers fuse_silu)
from onnxopt.passes.fusion import fuse_mish  # noqa: F401,E402  (registers fuse_mish)
from onnxopt.passes.fusion import decompose_lrn  # noqa: F401,E402  (registers decompose_lrn)
from onnxopt.passes.fusion import fuse_conv_activation  # noqa: F401,E402  (registers fuse_conv_activation)
from onnxopt.passes.fusion import fuse_attention  # noqa: F401,E402  (registers fuse_attention)
