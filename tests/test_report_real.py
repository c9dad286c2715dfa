"""The reports of one real run: the embedded model on the transformers (hf) backend, the
project's own benchmark file, 8 samples, Offline in both modes."""

from __future__ import annotations

import ast
import hashlib
import html
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.xdist_once import once

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The session (once per run, also under xdist)."""
    pytest.importorskip("transformers")
    pytest.importorskip("pytest_html")

    def make(folder: Path) -> dict:
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", str(REPO / "benchmarks" / "test_llama3_1_8b.py"), "-p", "no:cacheprovider",
             f"--rootdir={folder}", "--mlperf-scenario=Offline", "--mlperf-total-samples=8",
             "--mlperf-output=out", "--html=report.html", "--self-contained-html", "--mlperf-json=results.json"],
            capture_output=True, text=True, cwd=folder, timeout=900, check=False,
        )
        return {"folder": str(folder), "returncode": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr}

    made = once(tmp_path_factory, "real", make)
    assert made["returncode"] == 0, made["stdout"][-4000:] + made["stderr"][-2000:]
    folder = Path(made["folder"])
    records = json.loads((folder / "results.json").read_text())["records"]
    return {"folder": folder, "stdout": made["stdout"], "records": {r["mode"]: r for r in records}}


def test_record_and_table_of_a_real_run(run: dict) -> None:
    perf, acc = run["records"]["performance"], run["records"]["accuracy"]
    assert perf["system"]["backend"] == "hf" and perf["run"]["validity"] == "VALID"
    versions = perf["system"]["versions"]
    assert {"torch", "transformers", "mlcommons-loadgen", "pytest-mlperf"} <= set(versions)
    lines = run["stdout"].splitlines()
    row = next(x for x in lines if re.match(r"llama3\.1-8b\s+Offline\s+perf\s+PASS VALID", x))
    tps = perf["figures"]["tokens_per_second"]
    assert (f"{tps:,.2f}" if tps < 100 else f"{tps:,.1f}") in row.split()
    start = next(i for i, x in enumerate(lines) if "MLPerf results" in x)
    assert all(len(x) <= 120 for x in lines[start:])
    assert acc["accuracy"]["gen_num"] == 8


def test_accuracy_txt_of_a_real_run(run: dict) -> None:
    acc = run["records"]["accuracy"]
    folder = Path(acc["run"]["outdir"])
    text = (folder / "accuracy.txt").read_text()
    scores = ast.literal_eval(next(x for x in text.splitlines() if x.startswith("{")))
    assert scores == {k: f"{acc['accuracy'][k]}" for k in ("rouge1", "rouge2", "rougeL", "rougeLsum")} | {
        "gen_len": acc["accuracy"]["gen_len"], "gen_num": 8}
    digest = hashlib.sha256((folder / "mlperf_log_accuracy.json").read_bytes()).hexdigest()
    assert text.endswith(f"\n\nhash={digest}\n")


def test_html_samples_are_the_models_words(run: dict) -> None:
    """The page's first sample is what the accuracy log holds, decoded by the model's own
    tokenizer, and escaped."""
    from transformers import AutoTokenizer

    from pytest_mlperf import embedded

    acc = run["records"]["accuracy"]
    entries = json.loads((Path(acc["run"]["outdir"]) / "mlperf_log_accuracy.json").read_text())
    first = entries[0]
    ids = list(memoryview(bytes.fromhex(first["data"])).cast("i"))
    text = AutoTokenizer.from_pretrained(embedded.MODEL_DIR).decode(ids, skip_special_tokens=True)
    blob = re.search(r'data-jsonblob="([^"]*)"', (run["folder"] / "report.html").read_text()).group(1)
    tests = json.loads(html.unescape(blob))["tests"]
    panels = {nodeid: next(e["content"] for e in runs[0]["extras"] if e["format_type"] == "html")
              for nodeid, runs in tests.items()}
    panel = panels[acc["nodeid"]]
    assert text.strip() and f'<td class="sample">{html.escape(text)}</td>' in panel
    assert f"<tr><td>{first['qsl_idx']}</td>" in panel
    assert sum(p.count('class="mlperf-plot"') for p in panels.values()) == 3  # percentiles, 2 timelines
