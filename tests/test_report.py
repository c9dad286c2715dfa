"""The terminal's summary table, the results JSON (the table's figures; the same records with
and without xdist), and the CI files (Markdown summary, OpenMetrics). Real loadgen, test-double
engines (tests/fake_world.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pytest_mlperf.core.record import (
    Accuracy,
    BenchmarkRecord,
    DatasetInfo,
    Distribution,
    Figures,
    Run,
    System,
    Target,
    Verdict,
)
from pytest_mlperf.report.terminal import summary_lines
from tests.fake_world import setup

WIDTH = 120
#: Server runs at 100 queries/s: the quick profile's 838 queries (840 in whole passes of 12 samples), 8 s
SERVER_CONF = "llama3_1-8b.Server.target_qps = 100\nllama3_1-8b.Server.min_duration = 5000\n"


def server_conf(pytester: pytest.Pytester) -> str:
    path = pytester.path / "server.conf"
    path.write_text(SERVER_CONF)
    return f"--mlperf-user-conf={path}"


def _section(lines: list[str]) -> list[str]:
    """The lines of the "MLPerf results" section of pytest's output."""
    start = next(i for i, x in enumerate(lines) if "MLPerf results" in x)
    end = next((i for i, x in enumerate(lines[start + 1:], start + 1) if x.startswith(("===", "---"))), len(lines))
    section = lines[start + 1:end]
    while section and not section[0]:
        section.pop(0)
    return section


def rate(value: float) -> str:
    """How the table writes a rate: 2 decimals below 100, 1 below 100,000, none above."""
    return f"{value:,.2f}" if value < 100 else f"{value:,.1f}" if value < 100_000 else f"{value:,.0f}"


def latency(ns: float) -> str:
    ms = ns / 1e6
    return f"{ms / 1000:,.1f} s" if ms >= 10_000 else f"{ms:,.1f} ms" if ms >= 10 else f"{ms:,.2f} ms"


def _rows(section: list[str]) -> dict[tuple[str, str], list[str]]:
    """(scenario, mode) -> the cells of its table row (cells are 2+ spaces apart)."""
    header = next(i for i, x in enumerate(section) if x.startswith("benchmark "))
    rows = {}
    for line in section[header + 1:]:
        if line.startswith("llama"):
            cells = re.split(r"\s{2,}", line.strip())
            rows[(cells[1], cells[2])] = cells
    return rows


def test_table_holds_the_json_figures(pytester: pytest.Pytester) -> None:
    args = [*setup(pytester), server_conf(pytester)]
    result = pytester.runpytest("--mlperf-backend=copy", "--mlperf-scenario=Offline,Server",
                                "--mlperf-json=out/results.json", *args)
    result.assert_outcomes(passed=4)
    section = _section(result.outlines)
    assert all(len(x) <= WIDTH for x in section), max(section, key=len)
    assert section[0].startswith("reproduce: pytest --mlperf-scenario=Offline,Server --mlperf-mode=both")
    data = json.loads((pytester.path / "out" / "results.json").read_text())
    assert data["format"] == "pytest-mlperf-results" and data["passed"] == 4
    records = [BenchmarkRecord.from_json(r) for r in data["records"]]
    assert [r.nodeid for r in records] == sorted(r.nodeid for r in records)
    rows = _rows(section)
    assert len(rows) == 4
    for record in records:
        cells = rows[(record.scenario, {"performance": "perf", "accuracy": "acc"}[record.mode])]
        if record.mode == "performance":
            f = record.figures
            assert cells[3] == "PASS VALID" and record.run.validity == "VALID"
            assert cells[4] == rate(f.tokens_per_second) and cells[5] == rate(f.samples_per_second)
            if record.scenario == "Server":
                assert cells[6] == latency(f.ttft_ns.p99) and cells[7] == latency(f.tpot_ns.p99)
        else:
            acc = record.accuracy
            percents = [100 * getattr(acc, k) / getattr(acc.target, k) for k in ("rouge1", "rouge2", "rougeL", "rougeLsum")]
            assert cells[-1] == " ".join(f"{p:.1f}" for p in percents)
        # the run folder, relative to the current directory, on the line below its row
        folder = section[section.index(next(x for x in section if x.startswith("llama") and x.split()[1:3] == cells[1:3])) + 1]
        assert folder.strip() == "└ " + str(Path(record.run.outdir).relative_to(pytester.path))
        assert Path(record.run.outdir).is_dir()


def test_failures_say_why_under_the_table(pytester: pytest.Pytester) -> None:
    args = setup(pytester)
    result = pytester.runpytest("--mlperf-backend=garble", "--mlperf-mode=accuracy", *args)
    result.assert_outcomes(failed=1)
    section = _section(result.outlines)
    row = _rows(section)[("Offline", "acc")]
    assert row[3].startswith("FAIL rouge1 6.25 <")  # the first reason, cut to the column
    failure = section.index("FAIL llama3.1-8b Offline accuracy: test_bench.py::test_bench[Offline-accuracy]")
    assert section[failure + 1].startswith("    accuracy below baseline")
    assert all(len(x) <= WIDTH for x in section)


def _record(**changes) -> BenchmarkRecord:
    base = dict(
        benchmark="llama3.1-8b-edge", scenario="SingleStream", mode="performance", profile="official",
        system=System(backend="a-backend-with-a-long-name", model="/models/" + "m" * 200),
        run=Run(outdir="/far/away/" + "x" * 300 + "/run_1/performance", validity="INVALID",
                invalid_reason="Reduce target QPS to improve latency. " * 5),
        verdict=Verdict(False, ("loadgen says INVALID: " + "Reduce target QPS to improve latency. " * 5,
                                "p99 TTFT 123456.7 ms > max_ttft_ms 2000")),
        figures=Figures(tokens_per_second=123456789.5, samples_per_second=987654.321,
                        ttft_ns=Distribution(p99=123456.7e6), tpot_ns=Distribution(p99=98765.4e6)),
        dataset=DatasetInfo(path="d", samples=13368), nodeid="benchmarks/test_" + "y" * 150 + "[SingleStream-performance]",
    )
    base.update(changes)
    return BenchmarkRecord(**base)  # type: ignore[arg-type]


def test_table_fits_120_columns_whatever_the_figures() -> None:
    accuracy = Accuracy(rouge1=99.0, rouge2=15.0, rougeL=24.0, rougeLsum=35.0, gen_len=1, gen_num=1,
                        target=Target(name="t", ratio=0.99, rouge1=38.78, rouge2=15.9, rougeL=24.5, rougeLsum=35.8))
    records = [_record(), _record(mode="accuracy", scenario="Interactive", accuracy=accuracy,
                                  figures=Figures(), run=Run(outdir="short"), verdict=Verdict(True))]
    lines = summary_lines(records)
    assert max(len(x) for x in lines) <= WIDTH, "\n".join(lines)
    header = next(x for x in lines if x.startswith("benchmark"))
    assert all(h in header for h in ("verdict", "tokens/s", "samples/s", "p99 TTFT", "p99 TPOT", "ROUGE"))
    row = next(x for x in lines if x.startswith("llama3.1-8b-edge  SingleStream"))
    assert "123,456,790" in row and "987,654" in row and "123.5 s" in row and "98.8 s" in row
    assert "FAIL INVALID: R" in row
    assert next(x for x in lines if "Interactive" in x).endswith("255.3 94.3 98.0 97.8")
    # every reason in full below the table, cut at spaces into indented lines
    failure = lines[lines.index(next(x for x in lines if x.startswith("FAIL llama3.1-8b-edge"))):]
    assert all(x.startswith("  ") for x in failure[1:])
    text = " ".join(x.strip() for x in failure)
    assert "(INVALID): benchmarks/test_yyy" in text and "loadgen says INVALID: Reduce target QPS to improve latency." in text
    assert text.endswith("p99 TTFT 123456.7 ms > max_ttft_ms 2000")


def test_xdist_gives_the_same_json_records(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    args = [*setup(pytester), server_conf(pytester)]
    common = ("--mlperf-backend=copy", "--mlperf-scenario=Offline,Server", *args)
    pytester.runpytest("--mlperf-json=serial.json", *common).assert_outcomes(passed=4)
    pytester.runpytest("-n", "2", "--mlperf-json=parallel.json", *common).assert_outcomes(passed=4)

    def comparable(name: str) -> list[dict]:
        records = json.loads((pytester.path / name).read_text())["records"]
        for record in records:  # measured, or per process: times, rates, folders, the model's tmp dir
            for key in ("figures", "timings"):
                record.pop(key)
            record["run"].pop("outdir")
            record["system"].pop("model")
            record["system"].pop("devices", None)
            record.pop("worker")  # the xdist worker that ran it ("" without -n)
        return records

    serial, parallel = comparable("serial.json"), comparable("parallel.json")
    assert [r["nodeid"] for r in serial] == [r["nodeid"] for r in parallel] and len(serial) == 4
    assert serial == parallel


def test_ci_files_summary_and_openmetrics(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    parser = pytest.importorskip("prometheus_client.openmetrics.parser")
    step_summary = pytester.path / "step-summary.md"
    step_summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step_summary))
    args = [*setup(pytester), server_conf(pytester)]
    pytester.makepyfile(test_second=(pytester.path / "test_bench.py").read_text())
    result = pytester.runpytest("--mlperf-backend=garble", "--mlperf-scenario=Offline,Server",
                                "--mlperf-json=results.json", *args)
    result.assert_outcomes(passed=4, failed=4)
    records = [BenchmarkRecord.from_json(r) for r in json.loads((pytester.path / "results.json").read_text())["records"]]

    text = (pytester.path / "results" / "metrics.txt").read_text()
    families = {f.name: f for f in parser.text_string_to_metric_families(text)}  # strict: raises on bad syntax
    passed = {s.labels["test"]: s.value for s in families["mlperf_passed"].samples}
    assert passed == {r.nodeid: float(r.verdict.passed) for r in records}
    tps = {s.labels["test"]: s.value for s in families["mlperf_tokens_per_second"].samples}
    assert tps == {r.nodeid: r.figures.tokens_per_second for r in records if r.mode == "performance"}
    rouge = {(s.labels["test"], s.labels["metric"]): s.value for s in families["mlperf_rouge"].samples}
    assert rouge == {(r.nodeid, k): getattr(r.accuracy, k) for r in records if r.mode == "accuracy"
                     for k in ("rouge1", "rouge2", "rougeL", "rougeLsum")}
    ttft = {s.labels["test"]: s.value for s in families["mlperf_ttft_p99_seconds"].samples}
    assert ttft == {r.nodeid: r.figures.ttft_ns.p99 / 1e9 for r in records if r.figures.ttft_ns.p99 is not None}

    summary = (pytester.path / "results" / "summary.md").read_text()
    assert summary.startswith("### MLPerf results: 4 passed, 4 failed")
    table = [x for x in summary.splitlines() if x.startswith("| llama")]
    assert len(table) == 8 and all(x.count(" | ") == 10 for x in table)  # 11 cells: no stray pipe
    assert "**Failures**" in summary and "accuracy below baseline" in summary
    assert step_summary.read_text() == "earlier step\n" + summary  # appended, as GitHub wants
