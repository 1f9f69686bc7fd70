"""The ONNX specification's node test cases: `fold` must agree with them, the default pipeline must keep them.

A fixed sample (every 20th case by name) runs in the normal suite; the `slow` test runs all ~1,900.
Known failures are listed with the pass (or IR piece) at fault; one that starts passing fails the test, so the
list stays true. `python benchmarks/conformance.py` writes the full counts to benchmarks/results/conformance.md.
"""
from __future__ import annotations

import pytest

from spec_cases import FAIL, check_case, load_cases, sample

LINT_EMPTY_OUTPUT = "ir lint: an omitted optional output (name '') is rejected as 'has no name'"
TENSOR_EMPTY = "ir Tensor.serialized_parts: a zero-element array cannot be serialized (memoryview.cast)"
FOLD_FLOAT8 = "fold_constants (evaluate): a FLOAT8E4M3FN result from ORT is stored as a UINT8 initializer"

# (case, check) → why it fails. Each names the pass or IR piece at fault (see the minimal repros in
# test_conformance_regressions.py).
KNOWN_FAILURES: dict[tuple[str, str], str] = {
    **{(f"test_{name}", "pipeline"): LINT_EMPTY_OUTPUT for name in (
        "attention_23_fullymasked_qk_matmul_output_mode3_zero", "attention_24_fullymasked_qk_matmul_output_mode3_zero",
        "attention_24_qk_matmul_output_mode3_softmax_precision", "attention_4d_with_qk_matmul",
        "attention_4d_with_qk_matmul_bias", "attention_4d_with_qk_matmul_softcap",
        "attention_4d_with_qk_matmul_softmax", "attention_local_window_gqa_rank4_mask", "gru_defaults",
        "gru_seq_length", "gru_with_initial_bias", "lstm_bidirectional", "lstm_defaults", "lstm_reverse",
        "lstm_with_initial_bias", "lstm_with_peepholes", "rnn_seq_length", "simple_rnn_bidirectional",
        "simple_rnn_defaults", "simple_rnn_reverse", "simple_rnn_with_initial_bias",
    )},
    ("test_causal_conv_with_state_kernel_size_one_expanded", "pipeline"): TENSOR_EMPTY,
    **{(f"test_{name}", "fold"): FOLD_FLOAT8 for name in (
        "cast_FLOAT16_to_FLOAT8E4M3FN", "cast_FLOAT_to_FLOAT8E4M3FN", "cast_no_saturate_FLOAT16_to_FLOAT8E4M3FN",
        "cast_no_saturate_FLOAT_to_FLOAT8E4M3FN", "castlike_FLOAT16_to_FLOAT8E4M3FN",
        "castlike_FLOAT16_to_FLOAT8E4M3FN_expanded", "castlike_FLOAT_to_FLOAT8E4M3FN",
        "castlike_FLOAT_to_FLOAT8E4M3FN_expanded", "castlike_no_saturate_FLOAT16_to_FLOAT8E4M3FN",
        "castlike_no_saturate_FLOAT16_to_FLOAT8E4M3FN_expanded", "castlike_no_saturate_FLOAT_to_FLOAT8E4M3FN",
        "castlike_no_saturate_FLOAT_to_FLOAT8E4M3FN_expanded",
    )},
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
