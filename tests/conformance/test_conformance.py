"""The ONNX specification's node test cases: `fold` must agree with them, the default pipeline must keep them.

A fixed sample (every 20th case by name) runs in the normal suite; the `slow` test runs all ~1,900.
Known failures are listed with the pass (or IR piece) at fault; one that starts passing fails the test, so the
list stays true. `python benchmarks/conformance.py` writes the full counts to benchmarks/results/conformance.md.
"""
from __future__ import annotations

import pytest

from spec_cases import FAIL, check_case, load_cases, sample

SWISH_OPSET_25 = ("fuse_silu: at opset >= 25 it emits Swish, which ONNX Runtime implements for opset 24 only, "
                  "so the optimized model no longer loads in ORT")
DEDUP_BFLOAT16 = ("deduplicate_initializers: fingerprinting a bfloat16 initializer raises 'cannot include dtype 'E' "
                  "in a buffer' when two of them have the same size")
OUTPUT_TYPE = ("Graph.replace_output (onnxopt/ir/graph.py), via eliminate_nop: a removed Identity's input takes over "
               "the graph output with its own shapeless type; onnx.checker rejects the output")

# (case, check) → why it fails, naming the pass at fault (minimal repros in test_conformance_regressions.py).
KNOWN_FAILURES: dict[tuple[str, str], str] = {
    **{(f"test_causal_conv_with_state_{name}", "pipeline"): SWISH_OPSET_25 for name in (
        "silu_expanded", "silu_fp16_expanded", "silu_with_past_state_expanded", "swish_alias_expanded",
    )},
    **{(f"test_{name}", "fold"): DEDUP_BFLOAT16 for name in (
        "attention_3d_causal_bf16", "attention_3d_causal_bf16_expanded", "attention_4d_attn_mask_causal_bf16",
        "attention_4d_attn_mask_causal_bf16_expanded", "attention_4d_causal_bf16", "attention_4d_causal_bf16_expanded",
        "attention_4d_causal_padded_kv_bf16", "attention_4d_causal_padded_kv_bf16_expanded",
        "attention_4d_padded_kv_bf16", "attention_4d_padded_kv_bf16_expanded", "range_bfloat16_type_positive_delta",
        "range_bfloat16_type_positive_delta_expanded",
    )},
    ("test_affine_grid_3d_expanded", "pipeline"): OUTPUT_TYPE,
    ("test_affine_grid_3d_align_corners_expanded", "pipeline"): OUTPUT_TYPE,
}


@pytest.fixture(scope="module")
def cases() -> list:
    return load_cases()


def _assert_matches_known(outcomes: list, names: set[str]) -> None:
    failures = {(o.case, o.check): o.detail for o in outcomes if o.status == FAIL}
    unexpected = {key: detail for key, detail in failures.items() if key not in KNOWN_FAILURES}
    fixed = sorted(key for key in KNOWN_FAILURES if key[0] in names and key not in failures)
    lines = [f"{case} [{check}]: {detail}" for (case, check), detail in sorted(unexpected.items())]
    lines += [f"{case} [{check}] passes now: remove it from KNOWN_FAILURES" for case, check in fixed]
    assert not lines, "\n".join(lines)


# The spec cases feed inf/NaN on purpose; onnx.reference (the folder's fallback) warns about them.
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


def test_sample_of_spec_cases_conforms(cases):
    chosen = sample(cases, 20)
    assert len(chosen) >= 90  # the sample must not silently shrink
    outcomes = [outcome for case in chosen for outcome in check_case(case)]
    _assert_matches_known(outcomes, {case.name for case in chosen})


@pytest.mark.slow
def test_every_spec_case_conforms(cases):
    assert len(cases) >= 1800
    outcomes = [outcome for case in cases for outcome in check_case(case)]
    _assert_matches_known(outcomes, {case.name for case in cases})
