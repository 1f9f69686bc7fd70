"""onnxopt's quantizer against onnxruntime.quantization on the suite's real models.

For every model (benchmarks/suite.py) each quantizer runs in its own process on the same synthetic
calibration images (smooth backgrounds and shapes, with words rendered in Pillow's default font for the
PP-OCR models, made here from a seed, scaled to the model's input range), at each --samples count: quantization wall time and the process's peak RSS
are recorded (a run above --rss-limit-gb is stopped and reported as such). ONNX Runtime's quantizer
gets what its documentation asks for: quant_pre_process first, then quantize_static in QDQ format,
per-channel, U8 activations × S8 weights, with MinMax or Entropy calibration; quantize_dynamic with S8
weights. onnxopt runs with its defaults (fold/fuse prepare, U8×S8 per-channel QDQ).

Every result is then scored on held-out synthetic inputs (other seeds): SQNR of the first output against
fp32 and, for classifiers/recognizers, argmax agreement over the last axis; and timed in ONNX Runtime CPU
at ORT_ENABLE_ALL with 1 and 2 intra-op threads, all variants of a model interleaved round-robin in one
process, as the median latency ratio to fp32 over the same rounds.

    python benchmarks/compare_quantizers.py                     # default models → results/quantizers.md
    python benchmarks/compare_quantizers.py --quick             # ppocr_cls, 20/100 samples (development)
    python benchmarks/compare_quantizers.py --models yolov8n --samples 100,1000 --tools onnxopt-minmax,ort-minmax
"""
from __future__ import annotations

import argparse
import datetime
import gc
import json
import math
import os
import platform
import shlex
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

from _measure import emit_result, peak_rss_mb, run_child  # noqa: E402
from suite import SuiteModel, cache_dir, suite_models  # noqa: E402

STATIC_TOOLS = ("onnxopt-minmax", "onnxopt-entropy", "ort-minmax", "ort-entropy")
ONCE_TOOLS = ("onnxopt-latency", "onnxopt-sqnr30")  # run at the smallest sample count only
DYNAMIC_TOOLS = ("onnxopt-dynamic", "ort-dynamic")
TOOLS = STATIC_TOOLS + ONCE_TOOLS + DYNAMIC_TOOLS
DEFAULT_MODELS = ("ppocr_cls", "ppocr_rec", "ppocr_det", "yolov8n")
DYNAMIC_MODELS = {"ppocr_rec"}  # models with MatMul-heavy parts, where dynamic int8 is a candidate
TOP1_MODELS = {"ppocr_cls", "ppocr_rec"}  # argmax over the last axis is meaningful (classes / characters)
CONV_NETS = {"ppocr_cls", "ppocr_det", "yolov8n"}
HOLDOUT_SEED = 1_000_000
RESULTS = Path(__file__).resolve().parent / "results" / "quantizers.md"


# ---------------------------------------------------------------------------------------------- data
WORDS = ("invoice total amount date 2024 13.50 receipt model runtime quick brown fox jumps over the lazy dog "
         "order number paid cash card tax sum 0.99 street city phone").split()
TEXT_MODELS = ("ppocr_",)  # models that read text: their samples carry rendered text


def scene(shape: tuple[int, ...], rng: np.random.Generator, text: bool = False) -> np.ndarray:
    """One synthetic RGB image in [0, 1], NCHW: a gradient background, filled rectangles and ellipses; with
    `text`, words rendered in Pillow's scalable default font (a line filling a short wide input, upside down
    half the time as the direction classifier expects; lines of several sizes on a page); mild sensor noise."""
    _, channels, height, width = shape
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    top, bottom = rng.uniform(0.2, 1.0, channels), rng.uniform(0.0, 0.9, channels)
    t = (yy / max(height - 1, 1))[None]
    image = top[:, None, None] * (1 - t) + bottom[:, None, None] * t
    for _ in range(int(rng.integers(3, 10))):
        color = rng.uniform(0, 1, channels)[:, None, None]
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        ry, rx = rng.uniform(0.05, 0.4) * height, rng.uniform(0.05, 0.4) * width
        if rng.random() < 0.5:
            mask = (np.abs(yy - cy) < ry) & (np.abs(xx - cx) < rx)
        else:
            mask = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 < 1
        image = np.where(mask[None], color, image)
    if text:
        image = 0.6 + 0.4 * image  # text sits on light paper
        ink = _rendered_text(height, width, rng)
        image = image * (1 - ink[None]) + rng.uniform(0, 0.35, channels)[:, None, None] * ink[None]
    image = image + rng.normal(0, 0.02, image.shape)
    return np.clip(image, 0, 1)[None].astype(np.float32)


def _rendered_text(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """Ink coverage in [0, 1] of random words: one line for a text-line input, many lines on a page."""
    from PIL import Image, ImageDraw, ImageFont

    canvas = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    line = height <= 64
    y = 0.0 if line else rng.uniform(0, 0.05 * height)
    while y < height:
        size = int(height * rng.uniform(0.55, 0.8)) if line else int(rng.uniform(14, 42))
        words = " ".join(rng.choice(WORDS, int(rng.integers(2, 12 if line else 8))))
        x = rng.uniform(0, 0.1 * width if line else 0.4 * width)
        draw.text((x, (height - size) / 2 if line else y), words, fill=255, font=ImageFont.load_default(size=size))
        if line:
            break
        y += size * rng.uniform(1.4, 3.0)
    ink = np.asarray(canvas, np.float32) / 255.0
    return ink[::-1, ::-1] if line and rng.random() < 0.5 else ink


def synthetic(model: SuiteModel, seed: int) -> dict[str, np.ndarray]:
    """Feeds for one run: images from `scene` scaled to the input's range, the suite's random data otherwise."""
    rng = np.random.default_rng(seed)
    feeds = model.feeds(seed=seed)
    for name, shape in model.input_shapes.items():
        if name not in model.input_values and len(shape) == 4 and shape[1] == 3:
            low, high = model.input_ranges.get(name, (-1.0, 1.0))
            text = model.name.startswith(TEXT_MODELS)
            feeds[name] = (low + (high - low) * scene(shape, rng, text)).astype(np.float32)
    return feeds


def calibration(model: SuiteModel, count: int) -> Iterator[dict[str, np.ndarray]]:
    """`count` calibration samples, made lazily (seeds 0…count-1)."""
    return (synthetic(model, seed) for seed in range(count))


# ---------------------------------------------------------------------------------------------- processes
def session(path: str | os.PathLike, threads: int):
    """A CPU session at ORT_ENABLE_ALL (as deployed) with `threads` intra-op threads, no spinning."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(os.fspath(path), options, providers=["CPUExecutionProvider"])


def time_interleaved(calls: list, rounds: int, cpu_clock: bool, seed: int = 0) -> list[list[int]]:
    """Nanoseconds per call and round; each round runs every call once in a fresh random order. With
    `cpu_clock` this thread's CPU time is measured (with one intra-op thread ORT computes on the calling
    thread, so time other processes took the core away is not counted), else wall time."""
    clock = time.thread_time_ns if cpu_clock else time.perf_counter_ns
    rng = np.random.default_rng(seed)
    times = [[0] * rounds for _ in calls]
    enabled = gc.isenabled()
    gc.disable()
    try:
        for r in range(rounds):
            for i in rng.permutation(len(calls)):
                t0 = clock()
                calls[i]()
                times[i][r] = clock() - t0
    finally:
        if enabled:
            gc.enable()
    return times


# ---------------------------------------------------------------------------------------------- workers
def _rss_watchdog(limit_bytes: int) -> None:
    def watch() -> None:
        while True:
            with open("/proc/self/status", encoding="ascii") as f:
                rss = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:"))
            if rss > limit_bytes:
                print(f"RSS limit: {rss / 2**30:.1f} GB > {limit_bytes / 2**30:.0f} GB, stopped", flush=True)
                emit_result({"peak_rss_mb": peak_rss_mb()})
                os._exit(137)
            time.sleep(0.1)

    threading.Thread(target=watch, daemon=True).start()


def worker(args: argparse.Namespace) -> None:
    """Quantize one model with one tool; it reports its own peak RSS, the parent its wall and CPU time."""
    if args.rss_limit_gb:
        _rss_watchdog(int(args.rss_limit_gb * 2**30))
    (model,) = suite_models([args.model])
    out = Path(args.output).resolve()
    os.chdir(out.parent)  # ORT's quant_pre_process leaves temporary files in the working directory
    start = time.perf_counter()
    note = ""
    if args.worker == "ort-pre":
        import onnx
        from onnxruntime.quantization.shape_inference import quant_pre_process

        source = str(model.path)
        proto = onnx.load(source)
        opset = next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
        if opset < 13:  # ORT writes per-channel DequantizeLinear (axis) without upgrading: the model would not load
            source = str(out.with_suffix(".opset13.onnx"))
            onnx.save(onnx.version_converter.convert_version(proto, 13), source)
            note = f"opset {opset}→13 first (per-channel QDQ needs it; ORT does not upgrade)"
        try:
            quant_pre_process(source, str(out))
        except Exception as exc:  # ORT's symbolic shape inference asserts on some exports
            note += f"; quant_pre_process failed ({type(exc).__name__}), retried with skip_symbolic_shape"
            quant_pre_process(source, str(out), skip_symbolic_shape=True)
    elif args.worker.startswith("ort-"):
        from onnxruntime import quantization as q

        if args.worker == "ort-dynamic":
            q.quantize_dynamic(args.pre, str(out), weight_type=q.QuantType.QInt8)
        else:
            method = {"ort-minmax": q.CalibrationMethod.MinMax, "ort-entropy": q.CalibrationMethod.Entropy}[args.worker]

            class Reader(q.CalibrationDataReader):
                def __init__(self) -> None:
                    self.samples = calibration(model, args.samples)

                def get_next(self):
                    return next(self.samples, None)

            q.quantize_static(
                args.pre, str(out), Reader(), quant_format=q.QuantFormat.QDQ, per_channel=True,
                activation_type=q.QuantType.QUInt8, weight_type=q.QuantType.QInt8, calibrate_method=method,
            )
    else:
        import onnxopt

        options = {
            "onnxopt-minmax": {"method": "minmax"}, "onnxopt-entropy": {"method": "entropy"},
            "onnxopt-latency": {"method": "minmax", "optimize_for": "latency", "holdout": 4},
            "onnxopt-sqnr30": {"method": "minmax", "target_sqnr": 30.0, "holdout": 512},
            "onnxopt-dynamic": {"mode": "dynamic"},
        }[args.worker]
        held = [synthetic(model, HOLDOUT_SEED + 500 + i) for i in range(options.get("holdout", 0))]
        data = None if args.worker == "onnxopt-dynamic" else _chain(calibration(model, args.samples), held)
        samples = None if data is None else args.samples
        options = {"holdout": 0, **options}
        quantized, report = onnxopt.quantize(str(model.path), data, samples=samples, latency_check=False, progress=False,
                                             **options)
        onnxopt.save(quantized, out)
        searched = report.float_by_search("accuracy" if "sqnr" in args.worker else "latency")
        parts = []
        if searched:
            parts.append(f"{len(searched)} node(s) kept float by the {'accuracy' if 'sqnr' in args.worker else 'latency'} search")
        if report.target_sqnr is not None:
            low = min((o.sqnr_low_db for o in report.outputs), default=math.nan)
            parts.append(f"the search measured {report.sqnr_db:.1f} dB (lower bound {low:.1f} dB) on its own held-out set")
        note = "; ".join(parts)
    emit_result({"seconds": time.perf_counter() - start, "note": note, "peak_rss_mb": peak_rss_mb()})


def _chain(first: Iterator, rest: list) -> Iterator:
    yield from first
    yield from rest


# ---------------------------------------------------------------------------------------------- parent
@dataclass
class Run:
    """One quantizer run and what it produced."""

    model: str
    tool: str
    samples: int
    seconds: Optional[float] = None
    cpu_seconds: Optional[float] = None
    peak_rss_mb: Optional[float] = None
    error: str = ""
    note: str = ""
    path: str = ""
    sqnr_db: Optional[float] = None
    top1: Optional[float] = None
    ratio: dict[int, float] = field(default_factory=dict)


def quantize_all(models: list[SuiteModel], tools: list[str], counts: list[int], work: Path, args) -> list[Run]:
    runs: list[Run] = []
    for model in models:
        pre = work / f"{model.name}.pre.onnx"
        needs_ort = any(t.startswith("ort-") for t in tools)
        pre_note = ""
        if needs_ort and not pre.exists():
            child = _child(args, "ort-pre", model.name, 0, pre, "")
            pre_note = child.result.get("note", "") if child.result else f"quant_pre_process: {child.error}"
            print(f"{model.name}: quant_pre_process {child.seconds:.1f} s {pre_note}", flush=True)
        plan = [(t, n) for n in counts for t in tools if t in STATIC_TOOLS]
        plan += [(t, min(counts)) for t in tools if t in ONCE_TOOLS]
        if model.name in DYNAMIC_MODELS:
            plan += [(t, 0) for t in tools if t in DYNAMIC_TOOLS]
        for tool, count in plan:
            out = work / f"{model.name}.{tool}.{count}.onnx"
            child = _child(args, tool, model.name, count, out, str(pre))
            peak = child.result.get("peak_rss_mb") if child.result else None
            run = Run(model.name, tool, count, child.seconds, child.cpu_seconds, peak, child.error, path=str(out))
            if child.result:
                parts = (child.result.get("note", ""), pre_note if tool.startswith("ort-") else "")
                run.note = "; ".join(x.strip("; ") for x in parts if x.strip("; "))
            if child.timed_out:
                run.error = f"timed out after {args.timeout:.0f} s"
            if child.returncode == 137 and "RSS limit" in Path(work / "logs" / f"{out.stem}.log").read_text(errors="replace"):
                run.error = f"stopped above {args.rss_limit_gb:g} GB RSS"
            print(f"{model.name:<10} {tool:<16} {count:>5} samples: {_fmt(run.seconds, '.1f')} s ({_fmt(run.cpu_seconds, '.1f')} CPU s), "
                  f"{_fmt(run.peak_rss_mb, '.0f')} MB {run.error or run.note}", flush=True)
            runs.append(run)
    return runs


def _child(args, tool: str, model: str, count: int, out: Path, pre: str):
    argv = [sys.executable, __file__, "--worker", tool, "--model", model, "--samples", str(count), "--output", str(out),
            "--pre", pre, "--rss-limit-gb", str(args.rss_limit_gb)]
    return run_child(argv, out.parent / "logs" / f"{out.stem}.log", args.timeout)


def score(models: list[SuiteModel], runs: list[Run], holdout: int) -> None:
    """SQNR of the first output and argmax agreement against fp32 on held-out inputs (ORT_ENABLE_ALL), one
    held-out sample at a time (memory flat in their number)."""
    for model in models:
        reference = session(model.path, threads=0)
        scored: list[list] = []  # [run, session, noise, argmax hits] per candidate that still runs
        for run in runs:
            if run.model != model.name or run.error or not Path(run.path).exists():
                continue
            try:
                scored.append([run, session(run.path, threads=0), 0.0, 0])
            except Exception as exc:  # e.g. ORT's quantizer writing per-channel DequantizeLinear into opset 11
                run.error = f"result does not run in onnxruntime: {str(exc).splitlines()[0][:160]}"
        signal, rows = 0.0, 0
        for i in range(holdout):
            feeds = synthetic(model, HOLDOUT_SEED + i)
            want = reference.run(None, feeds)[0].astype(np.float64)
            signal += float(np.sum(np.square(want)))
            rows += want.size // want.shape[-1] if want.ndim else 1
            for entry in list(scored):
                try:
                    got = entry[1].run(None, feeds)[0]
                except Exception as exc:
                    entry[0].error = f"result does not run in onnxruntime: {str(exc).splitlines()[0][:160]}"
                    scored.remove(entry)
                    continue
                entry[2] += float(np.sum(np.square(want - got)))
                entry[3] += int(np.sum(np.argmax(want, -1) == np.argmax(got, -1)))
        for run, _, noise, hits in scored:
            run.sqnr_db = math.inf if noise == 0 else 10 * math.log10(signal / noise)
            if model.name in TOP1_MODELS:
                run.top1 = hits / rows


def time_all(models: list[SuiteModel], runs: list[Run], threads: list[int], seconds: float) -> None:
    """int8/fp32 median latency ratio per run, every variant of a model interleaved in the same rounds."""
    for model in models:
        chosen = _latency_runs([r for r in runs if r.model == model.name and not r.error and Path(r.path).exists()])
        if not chosen:
            continue
        feeds = synthetic(model, HOLDOUT_SEED)
        for n_threads in threads:
            sessions = [session(model.path, n_threads)] + [session(r.path, n_threads) for r in chosen]
            calls = [lambda s=s: s.run(None, feeds) for s in sessions]
            warm = time_interleaved(calls, 3, cpu_clock=False)
            per_round = sum(float(np.median(t)) for t in warm) / 1e9
            rounds = int(min(max(seconds / max(per_round, 1e-6), 10), 2000))
            times = time_interleaved(calls, rounds, cpu_clock=n_threads == 1)
            base = float(np.median(times[0]))
            for run, row in zip(chosen, times[1:]):
                run.ratio[n_threads] = float(np.median(row)) / base
            print(f"{model.name}: {n_threads} thread(s), {rounds} rounds, fp32 median {np.median(times[0]) / 1e6:.2f} ms",
                  flush=True)


def _latency_runs(runs: list[Run]) -> list[Run]:
    """One run per tool to time: the one with the most calibration samples."""
    best: dict[str, Run] = {}
    for run in runs:
        if run.tool not in best or run.samples > best[run.tool].samples:
            best[run.tool] = run
    return list(best.values())


# ---------------------------------------------------------------------------------------------- report
def _fmt(value: Optional[float], spec: str) -> str:
    if value is None:
        return "—"
    return "inf" if value == math.inf else format(value, spec)


def write_report(
    path: Path, runs: list[Run], models: list[SuiteModel], args, seconds: float, command: str | None = None,
    date: str | None = None, environment: str | None = None,
) -> None:
    threads = args.threads
    command = command or " ".join(shlex.quote(a) for a in ["python", "benchmarks/compare_quantizers.py", *sys.argv[1:]])
    date = date or str(datetime.date.today())
    environment = environment or (f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
                                  f"onnxruntime {_version('onnxruntime')}, onnx {_version('onnx')}")
    lines = [
        "# Quantizers: onnxopt vs onnxruntime.quantization",
        "",
        f"Generated by `{command}` on {date} ({environment}); {seconds:.0f} s in all.",
        "",
        "Calibration: synthetic images (gradients, shapes; rendered words for the PP-OCR models) in each model's input range, the same "
        f"seeds for every tool; held-out: {args.holdout} other seeds. SQNR of the first output vs fp32 in ONNX Runtime "
        "(ORT_ENABLE_ALL). Latency: int8 / fp32 median, all variants of a model interleaved in the same rounds, in a "
        f"random order each round (ORT_ENABLE_ALL, {', '.join(map(str, threads))} intra-op thread(s); CPU time of the "
        "calling thread with 1 thread, wall time otherwise), timed on the run with the most samples. "
        "Wall time, CPU time (user + system, all threads) and peak RSS are the quantizing process's own (a fresh Python "
        "process each run, imports included); on a shared machine the CPU time is the fairer cost.",
        "",
        "| model | quantizer | samples | wall s | CPU s | peak RSS MB | SQNR dB | top-1 | "
        + " | ".join(f"int8/fp32 {t}T" for t in threads) + " | notes |",
        "|---|---|---:|---:|---:|---:|---:|---:|" + "---:|" * len(threads) + "---|",
    ]
    for run in runs:
        ratios = " | ".join(_fmt(run.ratio.get(t), ".2f") for t in threads)
        top1 = "—" if run.top1 is None else f"{run.top1:.1%}"
        samples = "—" if run.tool.endswith("dynamic") else str(run.samples)
        lines.append(f"| {run.model} | {run.tool} | {samples} | {_fmt(run.seconds, '.1f')} | {_fmt(run.cpu_seconds, '.1f')} | "
                     f"{_fmt(run.peak_rss_mb, '.0f')} | "
                     f"{_fmt(run.sqnr_db, '.1f')} | {top1} | {ratios} | {run.error or run.note.strip('; ')} |")
    lines += ["", "## Targets", ""] + _targets(runs, models, args.counts) + [""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    saved = {"command": command, "seconds": seconds, "date": date, "environment": environment, "args": vars(args),
             "runs": [asdict(r) for r in runs]}
    path.with_suffix(".json").write_text(json.dumps(saved, indent=1, default=str), encoding="utf-8")


def _targets(runs: list[Run], models: list[SuiteModel], counts: list[int]) -> list[str]:
    out = []
    by = {(r.model, r.tool, r.samples): r for r in runs}
    low, high = min(counts), max(counts)
    for model in models:
        name = model.name
        checks = []
        for method in ("minmax", "entropy"):
            both = [n for n in sorted(counts, reverse=True)
                    if all(by.get((name, f"{t}-{method}", n)) and not by[(name, f"{t}-{method}", n)].error for t in ("onnxopt", "ort"))]
            if both:
                n = both[0]
                ours, theirs = by[(name, f"onnxopt-{method}", n)], by[(name, f"ort-{method}", n)]
                if ours.ratio.get(1) and theirs.ratio.get(1):
                    checks.append(f"{method} latency {ours.ratio[1]:.2f} vs ORT {theirs.ratio[1]:.2f}")
                checks.append(f"{method} SQNR {_fmt(ours.sqnr_db, '.1f')} vs ORT {_fmt(theirs.sqnr_db, '.1f')} dB at {n} samples")
                if ours.cpu_seconds and theirs.cpu_seconds:
                    checks.append(f"{method} CPU time {ours.cpu_seconds:.0f} s vs ORT {theirs.cpu_seconds:.0f} s at {n} samples")
            for tool in (f"onnxopt-{method}", f"ort-{method}"):
                a, b = by.get((name, tool, low)), by.get((name, tool, high))
                if b and b.error:
                    checks.append(f"{tool} at {high} samples: {b.error}")
                elif a and b and a.peak_rss_mb and b.peak_rss_mb and low != high:
                    checks.append(f"{tool} peak RSS {high}/{low} samples ×{b.peak_rss_mb / a.peak_rss_mb:.2f}")
        lat = by.get((name, "onnxopt-latency", low))
        if lat and lat.ratio.get(1):
            checks.append(f"--optimize-for latency {lat.ratio[1]:.2f}× fp32 (1T)")
        target = by.get((name, "onnxopt-sqnr30", low))
        if target and target.sqnr_db is not None:
            checks.append(f"--target-sqnr 30 → {target.sqnr_db:.1f} dB here ({target.note.strip('; ') or 'no node kept float'})")
        for tool in DYNAMIC_TOOLS:
            run = by.get((name, tool, 0))
            if run and run.sqnr_db is not None:
                checks.append(f"{tool} {run.sqnr_db:.1f} dB, {_fmt(run.ratio.get(1), '.2f')}× fp32")
        out.append(f"- **{name}**: " + "; ".join(checks))
    return out


def _version(package: str) -> str:
    try:
        return __import__(package).__version__
    except Exception:  # a missing package only blanks the header field
        return "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS))
    parser.add_argument("--tools", default=",".join(TOOLS))
    parser.add_argument("--samples", default="100,1000", help="calibration sample counts (default 100,1000)")
    parser.add_argument("--holdout", type=int, default=512,
                        help="held-out samples the SQNR is measured on (default 512: on the 2-class classifier one "
                             "image near the decision boundary carried most of the noise of 128)")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--latency-seconds", type=float, default=20.0, help="timing budget per model and thread count")
    parser.add_argument("--rss-limit-gb", type=float, default=12.0)
    parser.add_argument("--timeout", type=float, default=3600.0)
    parser.add_argument("--quick", action="store_true", help="ppocr_cls only, 20 and 100 samples, short timing")
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--work", default=str(cache_dir() / "quantizers"))
    parser.add_argument("--from-json", metavar="FILE", help="rewrite the report from a previous run's .json, measuring nothing")
    parser.add_argument("--worker", choices=(*TOOLS, "ort-pre"), help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    parser.add_argument("--pre", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.samples = int(args.samples) if args.worker else args.samples
    if args.worker:
        worker(args)
        return
    if args.quick:
        args.models, args.samples, args.latency_seconds = "ppocr_cls", "20,100", 5.0
    args.counts = [int(c) for c in args.samples.split(",")]
    args.threads = [int(t) for t in args.threads.split(",")]
    tools = [t for t in args.tools.split(",") if t]
    unknown = sorted(set(tools) - set(TOOLS))
    if unknown:
        parser.error(f"unknown tools {unknown}; choose from {', '.join(TOOLS)}")
    if args.from_json:
        saved = json.loads(Path(args.from_json).read_text(encoding="utf-8"))
        runs = [Run(**{**r, "ratio": {int(k): v for k, v in r["ratio"].items()}}) for r in saved["runs"]]
        old = argparse.Namespace(**saved["args"])
        models = suite_models(list(dict.fromkeys(r.model for r in runs)), fetch=False)
        write_report(Path(args.out), runs, models, old, saved["seconds"], saved["command"], saved["date"], saved["environment"])
        print(Path(args.out).read_text())
        return
    started = time.time()
    models = suite_models(args.models.split(","))
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    runs = quantize_all(models, tools, args.counts, work, args)
    score(models, runs, args.holdout)
    time_all(models, runs, args.threads, args.latency_seconds)
    write_report(Path(args.out), runs, models, args, time.time() - started)
    print(Path(args.out).read_text())


if __name__ == "__main__":
    main()
