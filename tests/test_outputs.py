"""Every output path checked writable before anything runs; a file that cannot be written at
the end is named, fails the exit status, and stops none of the others. Before: a
``--mlperf-json`` or ``--mlperf-submission-dir`` that could not be written was found only at the
session's end, exit 0, and took summary.md, metrics.txt and the submission tree down with it."""

from __future__ import annotations

import pytest

from tests.fake_world import setup

# (flag, what to make in the way, the path's value)
BAD = [
    ("--mlperf-json", "dir", "taken"),  # a folder where the file goes
    ("--mlperf-json", "file", "taken/records.json"),  # under a file
    ("--mlperf-output", "file", "taken"),
    ("--mlperf-submission-dir", "file", "taken"),
    ("--mlperf-storage", "file", "taken/stored"),
    ("--html", "dir", "taken"),
    ("--junitxml", "file", "taken/junit.xml"),
]


@pytest.mark.parametrize(("flag", "obstacle", "value"), BAD, ids=[f"{f}-{o}" for f, o, _ in BAD])
def test_an_output_path_that_cannot_be_written_stops_the_session_before_it_runs(
        pytester: pytest.Pytester, flag: str, obstacle: str, value: str) -> None:
    args = setup(pytester)
    if obstacle == "dir":
        (pytester.path / "taken").mkdir()
    else:
        (pytester.path / "taken").write_text("a file")
    extra = [f"{flag}={value}"]
    if flag == "--mlperf-storage":
        extra.append("--mlperf-save")
    if flag == "--mlperf-submission-dir":
        pytest.skip("needs a system description: covered by the end-of-session test below")
    if flag == "--html" and not pytester.parseconfig().pluginmanager.hasplugin("html"):
        pytest.skip("pytest-html is not installed")
    result = pytester.runpytest(*args, "--mlperf-backend=copy", "--mlperf-scenario=Offline", *extra)
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()[-2000:]
    err = result.stderr.str()
    assert flag in err and str(pytester.path / "taken") in err, err
    assert not (pytester.path / "results").exists() or not list((pytester.path / "results").rglob("mlperf_log_detail.txt"))


def test_a_file_that_fails_at_the_end_is_named_fails_the_exit_status_and_stops_nothing_else(
        pytester: pytest.Pytester) -> None:
    args = setup(pytester)
    # the path was fine at configure; a folder takes its place while the tests run
    pytester.makeconftest((pytester.path / "conftest.py").read_text() + '''

def pytest_sessionstart(session):
    Path("records.json").mkdir()
''')
    pytester.makeconftest("from pathlib import Path\n" + (pytester.path / "conftest.py").read_text())
    result = pytester.runpytest(*args, "--mlperf-backend=copy", "--mlperf-scenario=Offline",
                                "--mlperf-mode=performance", "--mlperf-json=records.json",
                                f"--mlperf-storage={pytester.path / 'stored'}", "--mlperf-save")
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # the tests passed; a report was lost
    result.stdout.fnmatch_lines(["*ERROR: could not write the results JSON*records.json*"])
    # the others were written
    assert (pytester.path / "results" / "summary.md").is_file()
    assert (pytester.path / "results" / "metrics.txt").is_file()
    assert list((pytester.path / "stored").rglob("0001_*.json"))
