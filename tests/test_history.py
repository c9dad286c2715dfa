"""``python -m pytest_mlperf.history``: list, compare and trend over stored sessions."""

from __future__ import annotations

import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from pytest_mlperf.core.record import BenchmarkRecord, Device, Figures, Run, System, Verdict
from pytest_mlperf.gate import storage

CPU = Device(cpu="AMD EPYC 7B13", cpu_cores=2)


def _record(tokens: float, nodeid: str = "b.py::t[Offline-performance]") -> BenchmarkRecord:
    return BenchmarkRecord(benchmark="llama3.1-8b", scenario="Offline", mode="performance", profile="quick",
                           system=System(backend="hf", model="m", device=CPU), run=Run(outdir="o", validity="VALID"),
                           verdict=Verdict(True), figures=Figures(tokens_per_second=tokens), nodeid=nodeid)


def _history(tmp_path: Path) -> Path:
    root = tmp_path / "store"
    for tokens, commit in ((1000.0, "aaa"), (1010.0, "aaa"), (900.0, "bbb")):
        storage.save(root, [_record(tokens), _record(tokens / 2, "b.py::t[Server-performance]")], commit=commit)
    return root


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest_mlperf.history", *args], capture_output=True, text=True,
                          check=False)


def test_list_shows_every_session_per_machine(tmp_path: Path) -> None:
    out = _cli("--storage", str(_history(tmp_path)), "list")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert re.match(r"cpu-epyc-7b13-2c-\w+ \(3 sessions\)", lines[0])
    assert re.match(r"\s+no\s+file\s+saved\s+commit\s+tests\s+passed", lines[1])
    assert [line.split()[1] for line in lines[2:5]] == ["0001_aaa.json", "0002_aaa.json", "0003_bbb.json"]


def test_compare_any_two_gives_ratio_and_change_per_figure(tmp_path: Path) -> None:
    out = _cli("--storage", str(_history(tmp_path)), "compare", "1", "3")
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "old: cpu-epyc-7b13-2c-" in text and "0001_aaa.json" in text and "0003_bbb.json" in text
    assert re.search(r"b.py::t\[Offline-performance\]\n\s+figure\s+old\s+new\s+ratio\s+change\n"
                     r"\s+tokens_per_second\s+1,000\s+900\s+0.900\s+-10.0% worse", text), text
    assert re.search(r"tokens_per_second\s+500\s+450\s+0.900", text)
    bad = _cli("--storage", str(_history(tmp_path)), "compare", "1", "nosuch")
    assert bad.returncode == 2 and "no stored session 'nosuch'" in bad.stderr


def test_trend_page_draws_each_figure_with_band_and_commit_marks(tmp_path: Path) -> None:
    page = tmp_path / "h" / "history.html"
    out = _cli("--storage", str(_history(tmp_path)), "trend", "--html", str(page), "--band", "5")
    assert out.returncode == 0, out.stderr
    text = page.read_text()
    svgs = re.findall(r"<svg.*?</svg>", text)
    assert len(svgs) == 2  # one figure (tokens_per_second) for each of the two tests
    chart = ET.fromstring(svgs[0])
    ns = "{http://www.w3.org/2000/svg}"
    assert len(chart.findall(f"{ns}circle")) == 3
    assert chart.find(f"{ns}rect/{ns}title").text == "gate band +-5%"
    (mark,) = chart.findall(f"{ns}line")  # the commit changed once: aaa -> bbb
    assert mark.find(f"{ns}title").text == "commit bbb"
