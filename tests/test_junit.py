"""JUnit XML: valid under both junit_family values (xmllint against the schemas in
tests/data/junit), figures where each family allows them, and what GitLab shows of it."""

from __future__ import annotations

import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.fake_world import setup

SCHEMAS = Path(__file__).parent / "data" / "junit"
xmllint = pytest.mark.skipif(shutil.which("xmllint") is None,
                             reason="xmllint not installed (apt-get install libxml2-utils; .ci/run does)")


def _lint(path: Path, family: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["xmllint", "--noout", "--schema", str(SCHEMAS / f"{family}.xsd"), str(path)],
                          capture_output=True, text=True, check=False)


def _run(pytester: pytest.Pytester, family: str) -> Path:
    """An accuracy test that fails (garbled outputs) and a performance test that passes."""
    args = setup(pytester, scenarios='("Offline",)')
    result = pytester.runpytest("--mlperf-backend=garble", "--junitxml=junit.xml", "-o",
                                f"junit_family={family}", *args)
    result.assert_outcomes(passed=1, failed=1)
    return pytester.path / "junit.xml"


def _cases(path: Path) -> dict[str, ET.Element]:
    return {c.get("name", ""): c for c in ET.parse(path).iter("testcase")}


@xmllint
def test_xunit2_is_valid_with_figures_in_system_out(pytester: pytest.Pytester) -> None:
    path = _run(pytester, "xunit2")
    lint = _lint(path, "xunit2")
    assert lint.returncode == 0, lint.stderr
    cases = _cases(path)
    assert len(cases) == 2
    for case in cases.values():
        assert case.find("properties") is None
        (out,) = [o.text or "" for o in case.iter("system-out") if "mlperf figures:" in (o.text or "")]
        lines = {k.strip(): v.strip() for k, _, v in (line.partition("=") for line in out.splitlines()[1:])}
        assert lines["backend"] == "garble" and lines["scenario"] == "Offline"
    perf = next(c for n, c in cases.items() if "performance" in n)
    out = next(o.text or "" for o in perf.iter("system-out"))
    figures = {k.strip(): v.strip() for k, _, v in (line.partition("=") for line in out.splitlines()[1:])}
    assert figures["validity"] == "VALID" and float(figures["tokens_per_second"]) > 0


@xmllint
def test_xunit1_is_valid_with_figures_as_properties(pytester: pytest.Pytester) -> None:
    path = _run(pytester, "xunit1")
    assert _lint(path, "xunit1").returncode == 0, _lint(path, "xunit1").stderr
    # the same file breaks the xunit2 rules: the schemas tell the families apart
    assert "properties" in _lint(path, "xunit2").stderr
    for case in _cases(path).values():
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        assert props["mlperf.backend"] == "garble" and "mlperf.record" in props
        assert not any("mlperf figures:" in (o.text or "") for o in case.iter("system-out"))


def gitlab_view(path: Path) -> list[dict[str, str | None]]:
    """What GitLab's JUnit parser keeps of each test case (docs.gitlab.com, 'Unit test reports':
    name, classname, file, time; the status from failure/error/skipped; for a failed, erroring
    or skipped case that element's text as its output; system-out only for
    [[ATTACHMENT|path]]). Properties and a passing case's output are dropped."""
    view = []
    for case in ET.parse(path).iter("testcase"):
        status, output = "success", None
        for tag in ("failure", "error", "skipped"):
            found = case.find(tag)
            if found is not None:
                status = {"failure": "failed", "error": "error", "skipped": "skipped"}[tag]
                output = "\n".join(filter(None, [found.get("message"), found.text]))
                break
        view.append({"name": case.get("name"), "classname": case.get("classname"),
                     "file": case.get("file"), "time": case.get("time"), "status": status,
                     "output": output})
    return view


def test_gitlab_shows_every_figure_of_a_failing_benchmark(pytester: pytest.Pytester) -> None:
    view = gitlab_view(_run(pytester, "xunit2"))
    failed = next(c for c in view if c["status"] == "failed")
    assert "accuracy" in (failed["name"] or "")
    output = failed["output"] or ""
    assert "accuracy below baseline" in output
    for figure in ("verdict=failed", "scenario=Offline", "rouge1=6.25", "rouge2=0", "backend=garble"):
        assert figure in output, output


@xmllint
def test_xunit2_stays_valid_when_a_failed_benchmark_also_fails_its_teardown(pytester: pytest.Pytester) -> None:
    args = setup(pytester, scenarios='("Offline",)')
    pytester.makeconftest((pytester.path / "conftest.py").read_text() + '''

@pytest.fixture(autouse=True)
def broken_teardown():
    yield
    raise RuntimeError("teardown failed")
''')
    result = pytester.runpytest("--mlperf-backend=garble", "--mlperf-mode=accuracy", "--junitxml=junit.xml", *args)
    result.assert_outcomes(failed=1, errors=1)
    path = pytester.path / "junit.xml"
    lint = _lint(path, "xunit2")
    assert lint.returncode == 0, lint.stderr
    assert not list(ET.parse(path).iter("properties"))
