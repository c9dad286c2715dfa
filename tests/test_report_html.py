"""pytest-html: sortable figure columns, the per-benchmark panel (figures, plots, samples, system,
loadgen summary, relative links), Environment entries, model text escaped; and the page as
headless Chromium draws it (scripts/check_report.py). Real loadgen, test-double engines."""

from __future__ import annotations

import base64
import html
import io
import json
import os
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from tests.fake_world import setup
from tests.xdist_once import once

CHECK = Path(__file__).resolve().parents[1] / "scripts" / "check_report.py"
#: Model text that is markup: the page must show it and never run it (an unescaped <img> would
#: run its onerror, which the browser check sees as a console error).
HOSTILE = '''

class HostileTokenizer(WordTokenizer):
    def batch_decode(self, batch, skip_special_tokens=True):
        return ["<img src=x onerror=\\"console.error('xss')\\"> & " + text
                for text in super().batch_decode(batch, skip_special_tokens)]


@pytest.fixture(scope="session")
def mlperf_tokenizer():
    return HostileTokenizer()
'''
MARKUP = "<img src=x onerror=\"console.error('xss')\"> &"


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One session, Offline and Server in both modes, with --html and --mlperf-json (once per
    run, also under xdist)."""
    pytest.importorskip("pytest_html")
    from tests.fake_world import BENCHMARK, CONFTEST

    def make(folder: Path) -> dict:
        (folder / "conftest.py").write_text(CONFTEST + HOSTILE)
        (folder / "test_bench.py").write_text(
            BENCHMARK.replace("{SETTINGS}", "{}")
            .replace("{SCENARIOS}", '("Offline", "Server")'))
        namespace: dict = {}
        exec(CONFTEST, namespace)
        data_path = namespace["make_dataset"](folder / "data.json", 12)
        data = json.loads(data_path.read_text())
        for record in data:  # the article and the reference are markup too
            record["input"] = "<script>console.error('prompt')</script> " + record["input"]
            record["output"] = MARKUP + " " + record["output"]
        data_path.write_text(json.dumps(data))
        server_conf = folder / "server.conf"  # 5 s Server runs: 500 queries at 100/s
        server_conf.write_text("llama3_1-8b.Server.target_qps = 100\nllama3_1-8b.Server.min_duration = 5000\n")
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--mlperf-backend=copy",
             "--mlperf-scenario=Offline,Server", f"--mlperf-dataset={data_path}", "--mlperf-output=results",
             f"--mlperf-user-conf={server_conf}",
             "--html=report/report.html", "--self-contained-html", "--mlperf-json=results.json"],
            capture_output=True, text=True, cwd=folder, timeout=600, check=False)
        return {"folder": str(folder), "returncode": proc.returncode, "out": proc.stdout[-3000:] + proc.stderr[-2000:]}

    made = once(tmp_path_factory, "html", make)
    assert made["returncode"] == 0 and "4 passed" in made["out"], made["out"]
    folder = Path(made["folder"])
    return {"folder": folder, "page": folder / "report" / "report.html"}


def _blob(page: Path) -> dict:
    text = page.read_text()
    match = re.search(r'data-jsonblob="([^"]*)"', text)
    assert match, "no pytest-html data in the page"
    return json.loads(html.unescape(match.group(1)))


def _panel(test: dict) -> str:
    return next(e["content"] for e in test["extras"] if e["format_type"] == "html")


def test_page_has_sortable_figures_panels_and_environment(page: dict) -> None:
    folder, page = page["folder"], page["page"]
    blob = _blob(page)
    records = {r["nodeid"]: r for r in json.loads((folder / "results.json").read_text())["records"]}
    head = page.read_text()
    for column in ("validity", "tokens", "ttft", "tpot", "rouge"):
        assert f'class="sortable" data-column-type="{column}"' in head
    tests = {nodeid: runs[0] for nodeid, runs in blob["tests"].items()}
    assert set(tests) == set(records)

    # Sorting: pytest-html compares the cells' text; ours lead with a hidden key in number order.
    perf = [n for n, r in records.items() if r["mode"] == "performance"]
    by_key = sorted(perf, key=lambda n: tests[n]["tokens"])
    assert by_key == sorted(perf, key=lambda n: records[n]["figures"]["tokens_per_second"])
    assert len({records[n]["figures"]["tokens_per_second"] for n in perf}) == 2
    server = next(n for n in perf if "Server" in n)
    assert tests[server]["validity"].endswith("VALID")
    assert f"{records[server]['figures']['ttft_ns']['p99'] / 1e6:,.1f}" in tests[server]["ttft"]

    pngs = 0
    for nodeid, test in tests.items():
        panel, record = _panel(test), records[nodeid]
        assert MARKUP not in panel and "<script>" not in panel  # markup from the run is text
        if record["mode"] == "accuracy":
            assert html.escape(MARKUP) in panel and html.escape("<script>console.error('prompt')</script>") in panel
            assert panel.count("<td class=\"sample\">") == 9  # 3 samples: prompt, prediction, reference
        else:
            summary = (Path(record["run"]["outdir"]) / "mlperf_log_summary.txt").read_text()
            assert html.escape(summary) in panel  # loadgen's own summary, verbatim
        assert f">{record['system']['versions']['mlcommons-loadgen']}<" in panel
        # MLPerf or not, with every reason (a subset of the data set, the quick profile)
        assert html.escape("not MLPerf: " + "; ".join(record["conformance"]["reasons"])) in panel
        hrefs = [unquote(h) for h in re.findall(r'href="([^"]+)"', panel)]
        assert hrefs and all(not os.path.isabs(h) for h in hrefs)
        for href in hrefs:  # relative to the page's folder, as a browser resolves them
            assert (page.parent / href).exists(), href
        for uri in re.findall(r'<img class="mlperf-plot"[^>]* src="data:image/png;base64,([^"]+)"', panel):
            from PIL import Image

            image = Image.open(io.BytesIO(base64.b64decode(uri)))
            assert image.format == "PNG" and image.size[0] > 300 and image.size[1] > 150
            pngs += 1
    # Offline: percentiles + timeline, its accuracy: timeline; Server: +TTFT/TPOT histograms
    assert pngs == 8
    environment = blob["environment"]
    assert environment["MLPerf mlcommons-loadgen"] == metadata.version("mlcommons-loadgen")
    assert environment["MLPerf backend"] == "copy" and "MLPerf GPUs" in environment
    # the summary table above the results, one row per benchmark test
    assert head.count("<tr><td class=\"text \">llama3.1-8b</td>") == 4


def test_no_html_no_panels(pytester: pytest.Pytester) -> None:
    """Without --html nothing draws plots (pytest-html being installed is not enough)."""
    args = setup(pytester)
    pytester.makeconftest((pytester.path / "conftest.py").read_text() + '''
def pytest_sessionfinish(session):
    import sys
    from pathlib import Path
    Path("mods.txt").write_text(" ".join(m for m in ("matplotlib",) if m in sys.modules))
''')
    pytester.runpytest_subprocess("--mlperf-backend=copy", *args).assert_outcomes(passed=2)
    assert (pytester.path / "mods.txt").read_text() == ""


def _chromium() -> str:
    sys.path.insert(0, str(CHECK.parent))
    try:
        from check_report import find_browser
    finally:
        sys.path.pop(0)
    browser = find_browser()
    if browser is None:
        pytest.skip("no Chromium (CI installs Debian's chromium)")
    return browser


def test_page_renders_in_chromium_with_its_plots(page: dict) -> None:
    _chromium()
    shot = page["folder"] / "report.png"
    proc = subprocess.run([sys.executable, str(CHECK), str(page["page"]), "--screenshot", str(shot), "--min-plots", "8"],
                          capture_output=True, text=True, timeout=300, check=False)
    found = json.loads(proc.stdout)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
    assert found["plots"] == 8 and found["panels"] >= 4 and found["problems"] == []
    from PIL import Image

    with Image.open(shot) as image:
        assert image.size[0] == 1400 and image.size[1] > 3000  # every panel opened, full page


def test_chromium_check_fails_a_broken_page(tmp_path: Path) -> None:
    """The check above can fail: a plot that does not decode and a console error are caught."""
    _chromium()
    page = tmp_path / "broken.html"
    page.write_text('<html><body><button id="show_all_details">x</button>'
                    '<img class="mlperf-plot" alt="broken plot" src="data:image/png;base64,AAAA">'
                    "<script>console.error('boom')</script></body></html>")
    proc = subprocess.run([sys.executable, str(CHECK), str(page), "--min-plots", "2"],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    failures = json.loads(proc.stdout)["failures"]
    assert "console.error: boom" in failures
    assert "plot not drawn: broken plot" in failures
    assert "1 plots on the page, expected at least 2" in failures


# -- what the plots draw, as a reader sees it --------------------------------------------------

MARKS = ("legend", "mean-line", "limit-ttft", "limit-tpot", "p50", "p99")


def test_plots_draw_limits_legends_and_the_reported_mean_in_chromium(page: dict) -> None:
    """The Server record's TTFT/TPOT limits are drawn on its latency plots, each histogram has
    its p50/p99 in a legend, the throughput plot draws the reported tokens/s as a line; each
    mark is looked for, by its colour inside its box, in the image Chromium decoded. The page's
    title names the session."""
    _chromium()
    session = json.loads((page["folder"] / "results" / "session.json").read_text())["id"]
    proc = subprocess.run([sys.executable, str(CHECK), str(page["page"]), "--min-plots", "8",
                           "--expect", ",".join(MARKS), "--title", f"(session {session})"],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
    found = json.loads(proc.stdout)
    assert found["title"].startswith("pytest-mlperf: llama3.1-8b Offline, Server"), found["title"]
    assert found["marks"]["missing"] == [] and set(MARKS) <= set(found["marks"]["drawn"])


def test_the_mark_check_can_fail(page: dict, tmp_path: Path) -> None:
    """A listed mark whose colour is not inside its box (moved to the image's blank corner) is
    caught, and so is an expected mark no plot draws."""
    _chromium()
    text = page["page"].read_text()
    at = text.index("mean-line")  # the first throughput plot's mean line (in pytest-html's blob)
    start = text.index("[", text.index("box", at))
    moved = text[:start] + "[1, 1, 4, 4]" + text[text.index("]", start) + 1:]
    assert moved != text
    broken = tmp_path / "moved.html"
    broken.write_text(moved)
    proc = subprocess.run([sys.executable, str(CHECK), str(broken), "--expect", "mean-line,nonesuch"],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    failures = json.loads(proc.stdout)["failures"]
    assert any(f.startswith("plot mark not drawn: Throughput over the run: mean-line") for f in failures), failures
    assert "no plot draws a nonesuch" in failures


def test_throughput_is_a_sliding_window_and_accuracy_runs_stand_apart() -> None:
    from pytest_mlperf.core.details import RunDetails
    from pytest_mlperf.report.plots import MIN_WINDOW_S, sliding_rates, timeline_plot

    # completions in bursts every 2 s (batch ends): per-sample rates swing 0 <-> 1000 tokens/s,
    # a 5 % window of a 100 s run (5 s) sees the steady 500 tokens/s
    timeline = [(float(t), 100, t // 2, 1000 * (t // 2)) for t in range(0, 101)]
    window, rates = sliding_rates(timeline)
    assert window == 5.0 and window >= MIN_WINDOW_S
    assert all(400 <= r <= 600 for r in rates[10:]), rates[10:]
    short = [(0.0, 1, 0, 0), (0.5, 1, 0, 0), (1.0, 1, 1, 40)]
    assert sliding_rates(short) == (1.0, [0.0, 0.0, 40.0])

    details = RunDetails(timeline=tuple(timeline))
    performance = _record("performance", tokens_per_second=500.0)
    accuracy = _record("accuracy", tokens_per_second=None)
    made = timeline_plot(details, performance)
    assert made is not None and made.title == "Throughput over the run"
    assert {e.name for e in made.elements} == {"mean-line", "legend"}
    apart = timeline_plot(details, accuracy)
    assert apart is not None and apart.title == "Accuracy run over time"
    assert {e.name for e in apart.elements} == {"legend"}  # no performance figure to draw


def _record(mode: str, tokens_per_second: float | None) -> Any:
    """What the throughput plot reads of a record (a double: the plot logic is under test)."""
    from types import SimpleNamespace

    return SimpleNamespace(mode=mode, figures=SimpleNamespace(tokens_per_second=tokens_per_second))
