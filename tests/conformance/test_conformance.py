"""The ONNX specification's node test cases: `fold` must agree with them, the default pipeline must keep them.

A fixed sample (every 20th case by name) runs in the normal suite; the `slow` test runs all ~1,900.
Known failures are listed with the pass (or IR piece) at fault; one that starts passing fails the test, so the
list stays true. `python benchmarks/conformance.py` writes the full counts to benchmarks/results/conformance.md.
"""
from __future__ import annotations

import pytest

from spec_cases import FAIL, check_case, load_cases, sample

# (case, check) → why it fails, naming the pass at fault, with a minimal repro in test_conformance_regressions.py.
# Empty: the failures found so far (omitted optional outputs in lint, empty tensors, float8 and bfloat16 folding,
# untyped If branches, Swish at opset >= 25, graph output types) are fixed and their repros guard the fixes.
KNOWN_FAILURES: dict[tuple[str, str], str] = {}


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
