"""Report files parse: JSON against its documented schema, Markdown table shape, self-contained HTML."""
from __future__ import annotations

import dataclasses
import json
import re
import xml.etree.ElementTree as ET

import onnx.parser
import pytest

from onnxopt.bench import BenchResult, benchmark, report
from onnxopt.errors import OutputPathError

NUM = (int, float)
OPT_NUM = (int, float, type(None))
SCHEMA = {
    "schema_version": int, "command": str, "baseline": str, "ok": bool,
    "environment": {"onnxruntime": str, "onnxruntime_providers": list, "onnxruntime_device": str, "onnx": str,
                    "numpy": str, "onnxopt": str, "python": str, "platform": str, "cpu": str, "cpu_count": int,
                    "executable": str, "timestamp": str},
    "settings": {"providers": list, "threads": list, "runs": int, "warmup": int, "duration": OPT_NUM,
                 "io_binding": bool, "spinning": bool, "provider_options": dict, "min_sqnr_db": NUM, "data": (str, type(None)),
                 "inputs": dict},
    "models": [{"name": str, "path": (str, type(None)), "file_size_bytes": int, "node_count": int}],
    "results": [{
        "model": str, "provider": str, "threads": int, "runs": int,
        "latency_ms": {k: NUM for k in ("mean", "median", "p90", "p99", "std", "min", "max")},
        "throughput_per_s": OPT_NUM, "session_create_s": NUM, "peak_rss_bytes": OPT_NUM,
        "device_memory_bytes": OPT_NUM, "kernels_by_provider": dict, "cpu_fallback": bool,
        "ratio": (dict, type(None)), "outputs": (dict, type(None)), "latencies_ms": list,
    }],
    "sections": list,
}


def check(doc: object, schema: object, where: str = "$") -> None:
    if isinstance(schema, dict):
        assert isinstance(doc, dict), where
        assert set(doc) == set(schema), f"{where}: keys {sorted(doc)} != {sorted(schema)}"
        for key, sub in schema.items():
            check(doc[key], sub, f"{where}.{key}")
    elif isinstance(schema, list):
        assert isinstance(doc, list) and doc, where
        for i, item in enumerate(doc):
            check(item, schema[0], f"{where}[{i}]")
    else:
        assert isinstance(doc, schema) and not (schema is int and isinstance(doc, bool)), f"{where}: {doc!r}"


@pytest.fixture(scope="module")
def result() -> BenchResult:
    def model(op: str) -> onnx.ModelProto:
        return onnx.parser.parse_model(f"""
        <ir_version: 8, opset_import: ["" : 17]>
        g (float[N, 8] x) => (float[N, 8] y) {{ y = {op}(x) }}
        """)
    return benchmark({"fp32": model("Relu"), "opt": model("Relu"), "wrong|model": model("Neg")},
                     threads=(1, 0), dims={"N": 2}, runs=12, warmup=1, progress=False)


def test_json_follows_documented_schema(result: BenchResult) -> None:
    doc = json.loads(result.to_json())
    check(doc, SCHEMA)
    assert doc["schema_version"] == report.SCHEMA_VERSION and doc["ok"] is False
    first, second, wrong = doc["results"][:3]
    assert first["ratio"] is None and first["outputs"] is None
    assert set(second["ratio"]) == {"median", "min", "max"}
    assert second["outputs"] == {"max_abs_diff": 0.0, "sqnr_db": None, "ok": True, "detail": ""}
    assert wrong["outputs"]["ok"] is False and isinstance(wrong["outputs"]["sqnr_db"], float)
    assert len(first["latencies_ms"]) == first["runs"] == 12
    documented = report.__doc__ or ""
    for key in [*SCHEMA, *SCHEMA["environment"], *SCHEMA["settings"], *SCHEMA["results"][0],
                *SCHEMA["models"][0]]:
        assert re.search(rf"\b{key}\b", documented), f"key {key} is not documented in onnxopt.bench.report"


def test_markdown_table_shape(result: BenchResult) -> None:
    lines = result.to_markdown().splitlines()
    table = [line for line in lines if line.startswith("|")]
    cells = [len(re.split(r"(?<!\\)\|", line)) - 2 for line in table]
    assert cells == [len(report.HEADERS)] * (2 + len(result.measurements))
    assert set(table[1].strip("|").split("|")) == {"---"}
    assert "wrong\\|model" in table[4] and "MISMATCH" in table[4]
    assert any(line.startswith("- onnxruntime: ") for line in lines)
    assert "**Command**" in lines


def test_html_is_self_contained_with_chart(result: BenchResult) -> None:
    page = result.to_html()
    assert "http" not in page.lower() and "<script" not in page and "src=" not in page
    svg = page[page.index("<svg"): page.index("</svg>") + len("</svg>")]
    root = ET.fromstring(svg)
    assert len(root.findall(".//rect")) == len(result.measurements)
    assert page.count("<tr class=bad>") == 2
    assert "wrong|model · cpu ×default" in page


def test_table_is_aligned(result: BenchResult) -> None:
    lines = result.to_table().splitlines()
    rows = lines[: 1 + len(result.measurements)]
    median_col = rows[0].index("median ms") + len("median ms")
    assert all(len(r) >= median_col and r[median_col - 1] != " " for r in rows)
    assert any(line.startswith("MISMATCH: wrong|model on cpu ×1") for line in lines)


@pytest.mark.parametrize("suffix, marker", [(".json", '"schema_version"'), (".md", "| model |"),
                                            (".html", "<svg"), (".txt", "median ms")])
def test_save_by_suffix_atomically(result: BenchResult, tmp_path, suffix: str, marker: str) -> None:
    target = tmp_path / f"report{suffix}"
    target.write_text("old")
    result.save(target)
    assert marker in target.read_text(encoding="utf-8")
    assert [p.name for p in tmp_path.iterdir()] == [target.name]


def test_save_errors(result: BenchResult, tmp_path) -> None:
    with pytest.raises(OutputPathError, match="report format"):
        result.save(tmp_path / "report.pdf")
    with pytest.raises(OutputPathError, match="does not exist"):
        result.save(tmp_path / "missing" / "report.json")


def test_cpu_fallback_is_reported(result: BenchResult) -> None:
    m = result.measurements[0]
    fell_back = dataclasses.replace(m, provider="cuda", kernels={"cpu": 2, "cuda": 40})
    assert fell_back.fell_back and not m.fell_back
    partial = dataclasses.replace(result, measurements=[fell_back])
    assert "fallback: fp32 on cuda ×1 ran kernels 2 on cpu, 40 on cuda" in partial.to_table()
    assert json.loads(partial.to_json())["results"][0]["cpu_fallback"] is True


def test_sections_appear_in_every_format(result):
    from onnxopt.bench import ReportSection

    extended = dataclasses.replace(result, sections=[ReportSection("Optimization", "fold_constants  3 runs", {"nodes": 7})])
    assert json.loads(extended.to_json())["sections"] == [
        {"title": "Optimization", "text": "fold_constants  3 runs", "data": {"nodes": 7}}
    ]
    for text in (extended.to_table(), extended.to_markdown(), extended.to_html()):
        assert "Optimization" in text and "fold_constants  3 runs" in text
