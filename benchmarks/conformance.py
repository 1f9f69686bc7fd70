"""Run every ONNX node test case through `fold` and the default pipeline; write benchmarks/results/conformance.md.

    python benchmarks/conformance.py [--every N] [--only SUBSTRING] [--out FILE]

The checks live in tests/conformance/spec_cases.py (shared with the test suite).
"""
from __future__ import annotations

import argparse
import collections
import importlib.util
import logging
import os
import platform
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SPEC_CASES = os.path.join(HERE, os.pardir, "tests", "conformance", "spec_cases.py")
DEFAULT_OUT = os.path.join(HERE, "results", "conformance.md")


def _load_checks():
    spec = importlib.util.spec_from_file_location("spec_cases", SPEC_CASES)
    module = importlib.util.module_from_spec(spec)
    sys.modules["spec_cases"] = module
    spec.loader.exec_module(module)
    return module


def render(outcomes: list, statuses: tuple[str, ...], total_cases: int, seconds: float) -> str:
    """The Markdown report: counts per check, then every failure, skip, unfolded and n/a case with its reason."""
    import onnx
    import onnxruntime

    import onnxopt

    by_check: dict[str, list] = collections.defaultdict(list)
    for outcome in outcomes:
        by_check[outcome.check].append(outcome)
    lines = [
        "# Conformance: the ONNX specification's node test cases",
        "",
        f"onnxopt {onnxopt.__version__}, onnx {onnx.__version__}, onnxruntime {onnxruntime.__version__}, "
        f"Python {platform.python_version()}; {total_cases} cases in {seconds:.0f} s on {os.cpu_count()} CPU(s).",
        "Produced by `python benchmarks/conformance.py`; the checks are in `tests/conformance/spec_cases.py`.",
        "",
        "- **fold**: the case's inputs become initializers and the `fold` group runs; every output must become a",
        "  constant equal to the expected output (rtol 1e-3, atol 1e-7; two ULPs for types coarser than float32).",
        "  *unfolded*: the folder left some outputs as nodes (by design, e.g. random or sequence ops), and the",
        "  remaining model still computes the expected outputs in ONNX Runtime. *n/a*: an input is a sequence or",
        "  optional, which an initializer cannot hold, or onnxopt refuses the model on purpose (opset < 7).",
        "- **pipeline**: the default pipeline (`fold,cleanup,fuse`) runs with the inputs left as inputs; ONNX",
        "  Runtime (its own optimizations off) must still give the expected outputs, and `onnx.checker` must accept",
        "  the result.",
        "- *skip*: ONNX Runtime cannot run the original. *ORT deviates*: ONNX Runtime's own output for the original",
        "  already differs from the spec, and ours equals ORT's (the folder evaluates with ORT).",
        "",
        "| check | pass | unfolded | fail | skip | ORT deviates | n/a |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for check in ("fold", "pipeline"):
        counts = collections.Counter(o.status for o in by_check[check])
        lines.append(f"| {check} | {' | '.join(str(counts[s]) for s in statuses)} |")
    for check in ("fold", "pipeline"):
        for status, title in (("fail", "Failures"), ("skip", "Skipped: ORT cannot run the original"),
                              ("ort-deviates", "Skipped: ORT deviates from the spec"),
                              ("unfolded", "Left unfolded"), ("n/a", "Not applicable")):
            items = [o for o in by_check[check] if o.status == status]
            if not items:
                continue
            lines += ["", f"## {check}: {title} ({len(items)})", ""]
            lines += [f"- `{o.case}`: {o.detail.replace('|', '/')}" for o in items]
    slowest = sorted(outcomes, key=lambda o: -o.seconds)[:10]
    lines += ["", "## Slowest checks", ""]
    lines += [f"- `{o.case}` {o.check}: {o.seconds:.2f} s" for o in slowest]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--every", type=int, default=1, help="run every N-th case only (default: all)")
    parser.add_argument("--only", help="run only cases whose name contains this")
    parser.add_argument("--out", default=DEFAULT_OUT, help="Markdown report path")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    checks = _load_checks()
    import onnxruntime

    onnxruntime.set_default_logger_severity(4)  # ORT's own error log would repeat every skip reason
    start = time.perf_counter()
    cases = checks.sample(checks.load_cases(), args.every)
    if args.only:
        cases = [c for c in cases if args.only in c.name]
    outcomes = []
    for i, case in enumerate(cases, 1):
        outcomes += checks.check_case(case)
        if i % 100 == 0:
            print(f"{i}/{len(cases)} cases, {time.perf_counter() - start:.0f} s", file=sys.stderr)
    report = render(outcomes, checks.STATUSES, len(cases), time.perf_counter() - start)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(report)
    print(report.split("\n## ")[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
