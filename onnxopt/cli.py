"""The `onnxopt` command line: parses arguments, calls the public API, prints. No logic of its own."""
from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
from typing import Sequence

from onnxopt.errors import OnnxoptError


def _shape_arg(text: str) -> tuple[str, tuple[int, ...]]:
    name, sep, dims = text.rpartition("=")
    try:
        if not sep or not name:
            raise ValueError
        return name, tuple(int(d) for d in dims.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected NAME=D1,D2,... (e.g. input=1,3,224,224), got {text!r}") from None


def _add_optimize(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("optimize", help="optimize a model with a pass pipeline")
    p.add_argument("model", help="input .onnx file (never modified unless -o names it)")
    p.add_argument("-o", "--output", required=True, help="output .onnx file (written atomically)")
    p.add_argument("--passes", default="fold,cleanup,fuse", help="comma-separated passes and groups (see `onnxopt passes`)")
    p.add_argument("--target", choices=("onnx", "ort", "ort-cpu"), default="onnx",
                   help="onnx: standard ops only (default); ort: also ONNX Runtime contrib ops; ort-cpu: also ORT's "
                        "CPU blocked (NCHWc) layout, for CPUs with this one's vector width")
    p.add_argument("--target-opset", type=int, help="convert to this opset first (onnx.version_converter)")
    p.add_argument("--input-shape", type=_shape_arg, action="append", default=[], metavar="NAME=D1,D2,..",
                   help="fix a dynamic input shape before folding (repeatable)")
    p.add_argument("--fold-max-bytes", type=int, default=4 * 1024 * 1024,
                   help="largest constant the folder materializes (weights are exempt)")
    p.add_argument("--explain", action="append", default=[], metavar="RULE",
                   help="list where RULE's root op occurs and why it did not fire (a pass name: all its rules; repeatable)")
    p.add_argument("--stats", action="store_true", help="print per-pass statistics")
    p.add_argument("--verify", action="store_true",
                   help="compare outputs with the original in ONNX Runtime; on a mismatch name the pass that caused it")
    p.add_argument("--verify-samples", type=int, default=3, metavar="N", help="input samples for --verify (default 3)")
    p.add_argument("--data", metavar="DIR", help="real inputs for --verify (a calibration directory)")
    p.add_argument("--safe", action="store_true", help="with --verify: drop the culprit pass and write that result")
    p.add_argument("--report", metavar="FILE",
                   help="benchmark input vs output and write it with the pass statistics (.md, .json, .html, .txt)")
    p.add_argument("--dim", type=_key_value, action="append", default=[], metavar="NAME=N",
                   help="a dynamic dim's size for the --report benchmark, e.g. batch=8 (repeatable; --data and "
                        "--input-shape also size it)")
    p.add_argument("--external-data", action="store_true", default=None, help="store weights in a .data file beside the output")
    p.add_argument("--no-check", action="store_true", help="skip onnx.checker on the input (optimize a model it rejects)")
    p.set_defaults(run=_run_optimize)


def _run_optimize(args: argparse.Namespace) -> int:
    from onnxopt import optimize, save
    from onnxopt.bench.report import check_report_path
    from onnxopt.ir.serde import check_output_path
    from onnxopt.summary import (
        check_report_inputs, format_pass_stats, format_size_change, pass_stats_section, write_before_after_report,
    )

    check_output_path(args.output)  # before the work, not after it
    if args.report:
        check_report_path(args.report)
        if not args.data:
            check_report_inputs(args.model, dict(args.input_shape), dict(args.dim),
                                "size them for --report with --dim NAME=N, or fix the input with --input-shape")
    result = optimize(
        args.model, args.passes, target=args.target, target_opset=args.target_opset,
        fold_max_bytes=args.fold_max_bytes, input_shapes=dict(args.input_shape), explain=args.explain,
        verify=args.verify or args.safe, verify_samples=args.verify_samples, data=args.data, safe=args.safe,
        check=not args.no_check,
    )
    written = save(result.model, args.output, external_data=args.external_data)
    for line in result.explanations:
        print(line)
    if args.stats:
        print(format_pass_stats(result))
    if not args.quiet:
        print(format_size_change(args.model, written, result))
        if result.verification is not None:
            print(result.verification.summary())
        for name in result.excluded_passes:
            print(f"--safe: left out {name}, which changed the outputs")
    if args.report:
        bench = write_before_after_report(args.report, args.model, args.output, pass_stats_section(result),
                                          progress=False if args.quiet else None, shapes=dict(args.input_shape),
                                          dims=dict(args.dim), data=args.data)
        if not args.quiet:
            print(dataclasses.replace(bench, sections=[]).to_table(), end="")
    return 0


def _add_passes(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("passes", help="list every pass and group")
    p.set_defaults(run=_run_passes)


def _run_passes(args: argparse.Namespace) -> int:
    from onnxopt.summary import format_pass_list

    print(format_pass_list())
    return 0


def _add_inspect(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("inspect", help="show a model's interface, opsets, ops and parameters")
    p.add_argument("model")
    p.add_argument("--graph", metavar="FILE", help="also write the graph as .dot or .graphml")
    p.set_defaults(run=_run_inspect)


def _run_inspect(args: argparse.Namespace) -> int:
    from onnxopt.inspect import summarize
    from onnxopt.ir import load
    from onnxopt.ir.export import write_graph

    model = load(args.model)
    if args.graph:
        write_graph(model.graph, args.graph)
    print(summarize(model, args.model).to_text())
    return 0


def _key_value(text: str) -> tuple[str, int]:
    name, sep, value = text.partition("=")
    try:
        if not sep or not name:
            raise ValueError
        return name, int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected NAME=N (e.g. batch=8), got {text!r}") from None


def _int_list(text: str) -> list[int]:
    try:
        return [int(t) for t in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _add_bench(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="time models interleaved on ONNX Runtime providers; the first is the baseline")
    p.add_argument("models", nargs="+", metavar="MODEL")
    p.add_argument("--providers", default="cpu", help="comma-separated: cpu, cuda, tensorrt, openvino, dml, coreml, rocm")
    p.add_argument("--threads", type=_int_list, default=[1], help="intra-op thread counts, e.g. 1,2 (0: ORT default)")
    p.add_argument("--shape", type=_shape_arg, action="append", default=[], metavar="NAME=D1,D2,..")
    p.add_argument("--dim", type=_key_value, action="append", default=[], metavar="NAME=N",
                   help="value of a symbolic dim, e.g. batch=8 (repeatable)")
    p.add_argument("--runs", type=int, default=100)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--duration", type=float, help="seconds per provider and thread count instead of --runs")
    p.add_argument("--data", metavar="DIR", help="real inputs (a calibration directory) instead of random ones")
    p.add_argument("--provider-option", action="append", default=[], metavar="PROVIDER:KEY=VALUE")
    p.add_argument("--no-io-binding", action="store_true", help="copy inputs/outputs through the host on GPUs")
    p.add_argument("--spin", action="store_true", help="let ORT's intra-op threads spin-wait")
    p.add_argument("--min-sqnr", type=float, default=20.0, metavar="DB", help="flag outputs below this SQNR vs the baseline")
    p.add_argument("--report", action="append", default=[], metavar="FILE", help="write .json, .md, .html or .txt (repeatable)")
    p.set_defaults(run=_run_bench)


def _run_bench(args: argparse.Namespace) -> int:
    from onnxopt.bench import benchmark
    from onnxopt.bench.report import check_report_path

    for path in args.report:
        check_report_path(path)  # before the work, not after it

    result = benchmark(
        args.models, providers=args.providers.split(","), threads=args.threads, shapes=dict(args.shape),
        dims=dict(args.dim), runs=args.runs, warmup=args.warmup, duration=args.duration, data=args.data,
        io_binding=not args.no_io_binding, provider_options=args.provider_option,
        progress=False if args.quiet else None, min_sqnr_db=args.min_sqnr, spinning=args.spin,
    )
    print(result.to_table())
    for path in args.report:
        result.save(path)
    if result.mismatches:
        print(f"onnxopt: {len(result.mismatches)} measurement(s) differ from the baseline's outputs", file=sys.stderr)
        return 3
    return 0


def _add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="optimize, verify and benchmark the model-zoo ResNet-50 (offline)")
    p.add_argument("--out-dir", default="onnxopt-demo", help="where to write the models (default ./onnxopt-demo)")
    p.add_argument("--runs", type=int, default=30, help="timed runs per model (default 30)")
    p.set_defaults(run=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    from onnxopt.demo import run_demo

    print(run_demo(args.out_dir, runs=args.runs, progress=False if args.quiet else None).to_text())
    return 0


def _add_quantize(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("quantize", help="quantize to int8: static QDQ from calibration data, or dynamic")
    p.add_argument("model", help="input .onnx file (never modified unless -o names it)")
    p.add_argument("-o", "--output", required=True, help="output .onnx file (written atomically)")
    p.add_argument("--mode", choices=("static", "dynamic"), default="static",
                   help="static: calibrated QDQ (needs --data); dynamic: int8 MatMul/Gemm weights, activations at run time")
    p.add_argument("--data", metavar="DIR", help="calibration samples: *.npy, *.npz, test_data_set_*/ or images")
    p.add_argument("--method", choices=("minmax", "entropy", "percentile", "mse"), default="minmax",
                   help="how activation ranges are calibrated (default minmax)")
    p.add_argument("--samples", type=int, metavar="N", help="use at most N calibration samples (default: all)")
    p.add_argument("--holdout", type=int, metavar="N",
                   help="held-out samples for the accuracy report and --target-sqnr (default 8; 64 with --target-sqnr)")
    p.add_argument("--per-tensor", action="store_true", help="one scale per weight tensor instead of per channel")
    p.add_argument("--activation-type", choices=("uint8", "int8"), default="uint8",
                   help="activation type (default uint8: the fast U8×S8 path on x86)")
    p.add_argument("--symmetric-activations", action="store_true", help="zero point at the centre of the activation range")
    p.add_argument("--reduce-range", action="store_true", help="7-bit weights, for CPUs without VNNI")
    p.add_argument("--exclude-nodes", metavar="A,B", help="node names to keep float")
    p.add_argument("--exclude-ops", metavar="OP,..", help="op types to keep float")
    p.add_argument("--include-ops", metavar="OP,..", help="quantize only these op types")
    p.add_argument("--target-sqnr", type=float, metavar="DB",
                   help="keep the most sensitive nodes float until the output SQNR reaches DB")
    p.add_argument("--optimize-for", choices=("latency",), help="keep node groups float where int8 is not faster")
    p.add_argument("--no-latency-check", action="store_true", help="skip the final fp32 vs int8 timing")
    p.add_argument("--threads", type=int, default=1, help="intra-op threads for the latency measurements (0: ORT default)")
    p.add_argument("--provider", default="cpu",
                   help="execution provider the latency check and --optimize-for latency measure on (default cpu)")
    p.add_argument("--no-prepare", action="store_true", help="do not fold/clean up/fuse before quantizing")
    p.add_argument("--report", metavar="FILE",
                   help="benchmark input vs output and write it with the quantization report (.md, .json, .html, .txt)")
    p.add_argument("--dim", type=_key_value, action="append", default=[], metavar="NAME=N",
                   help="a dynamic dim's size where timing runs on generated inputs (the latency check and "
                        "--optimize-for latency without held-out data, and --report), e.g. seq=128 (repeatable)")
    p.add_argument("--external-data", action="store_true", default=None, help="store weights in a .data file beside the output")
    images = p.add_argument_group("image preprocessing (image directories; overrides preprocess.toml)")
    images.add_argument("--size", metavar="H,W", help="resize to HEIGHT,WIDTH (default: the model's input size)")
    images.add_argument("--layout", choices=("NCHW", "NHWC"), help="default: guessed from the model input")
    images.add_argument("--channel-order", choices=("RGB", "BGR"))
    images.add_argument("--scale", metavar="S", help="pixel multiplier before mean/std, e.g. 1/255")
    images.add_argument("--mean", metavar="M,..", help="per-channel mean subtracted after scaling")
    images.add_argument("--std", metavar="S,..", help="per-channel std divided by after the mean")
    p.set_defaults(run=_run_quantize)


def _run_quantize(args: argparse.Namespace) -> int:
    from onnxopt import quantize, save
    from onnxopt.bench import ReportSection
    from onnxopt.bench.report import check_report_path
    from onnxopt.calibration.images import Preprocess
    from onnxopt.ir.serde import check_output_path
    from onnxopt.summary import check_report_inputs, write_before_after_report

    check_output_path(args.output)  # before the work, not after it
    if args.report:
        check_report_path(args.report)
        check_report_inputs(args.model, {}, dict(args.dim), "size them for --report with --dim NAME=N")

    image_flags = {"size": args.size, "layout": args.layout, "channel_order": args.channel_order, "scale": args.scale,
                   "mean": args.mean, "std": args.std}
    preprocess = None
    if args.data and any(v is not None for v in image_flags.values()):
        preprocess = Preprocess.for_directory(args.data).with_values(**image_flags)
    model, report = quantize(
        args.model, args.data, preprocess=preprocess, mode=args.mode, method=args.method, samples=args.samples,
        holdout=args.holdout, per_channel=not args.per_tensor, activation_type=args.activation_type,
        symmetric_activations=args.symmetric_activations, reduce_range=args.reduce_range,
        exclude_nodes=args.exclude_nodes or (), exclude_ops=args.exclude_ops or (), include_ops=args.include_ops,
        target_sqnr=args.target_sqnr, optimize_for=args.optimize_for, latency_check=not args.no_latency_check,
        threads=args.threads, provider=args.provider, prepare=not args.no_prepare, progress=False if args.quiet else None,
        dims=tuple(args.dim),
    )
    save(model, args.output, external_data=args.external_data)
    if not args.quiet:
        print(report.to_text(max_tensors=0))
    if args.report:
        section = ReportSection("Quantization", report.to_text(max_tensors=len(report.tensors)), report.to_dict())
        bench = write_before_after_report(args.report, args.model, args.output, section,
                                          progress=False if args.quiet else None, dims=dict(args.dim))
        if not args.quiet:
            print(dataclasses.replace(bench, sections=[]).to_table(), end="")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    from onnxopt import __version__

    parser = argparse.ArgumentParser(prog="onnxopt", description="Optimize, quantize and benchmark ONNX models.")
    parser.add_argument("--version", action="version", version=f"onnxopt {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars or summaries")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_optimize, _add_passes, _add_inspect, _add_bench, _add_demo, _add_quantize):
        add(sub)
    for subparser in sub.choices.values():  # the global flags also work after the subcommand
        subparser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        subparser.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                               help="no progress bars or summaries")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: exit 0 on success, 2 on a user error, 130 on Ctrl-C, 141 when stdout's reader left, 1 on an
    internal error."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING, format="onnxopt: %(message)s")
    try:
        return args.run(args)
    except OnnxoptError as exc:
        if args.debug:
            raise
        print(f"onnxopt: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("onnxopt: interrupted; nothing was written", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader of stdout left early (onnxopt … | head): not an error of onnxopt's
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # else the flush at exit fails again
        return 141  # what a process killed by SIGPIPE reports
    except Exception as exc:  # an internal failure: one line, the traceback only with --debug
        if args.debug:
            raise
        print(f"onnxopt: internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
