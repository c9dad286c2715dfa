"""Ctrl-C during a run, for real: pytest in a subprocess, SIGINT while a run waits on an engine
that never answers. The process ends within seconds with pytest's interrupt status (2), no
crash, the finished test in the JUnit XML and the summary, and the interrupted run's logs kept.
(Before the fix: a segmentation fault, no report at all.)"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest

from tests import fake_world
from tests.signalling import signal_pytest

pytestmark = pytest.mark.engine_faults  # once in CI, not under -n 2 (.ci/run)

STALL = r'''

class Stall(CopyBackend):
    """Answers the session's first run; from the second on, never answers (a wedged engine),
    and says so in the file 'stalled'."""
    name = "stall"
    runs = []

    def issue(self, queries, responder):
        if responder not in Stall.runs:
            Stall.runs.append(responder)
        if responder is Stall.runs[0]:
            return super().issue(queries, responder)
        Path("stalled").write_text("yes")


class StallAtStart(CopyBackend):
    name = "stall-at-start"

    def start(self):
        Path("stalled").write_text("yes")
        threading.Event().wait()


BACKENDS.update(stall=Stall, **{"stall-at-start": StallAtStart})
'''

BENCH = '''
import pytest

MARK = dict(benchmark="llama3.1-8b", scenarios=("Offline", "Server", "SingleStream", "Interactive"),
            baseline={"rouge1": 100.0, "rouge2": 100.0, "rougeL": 100.0, "rougeLsum": 100.0})


@pytest.mark.mlperf(**MARK, settings={"server_target_qps": 200})
def test_first(mlperf_result):
    pass


# Server/Interactive: 12 queries at 0.1 qps, a schedule of 2 minutes that a Ctrl-C cannot
# shorten (loadgen keeps issuing): the run is left behind and the process ends without it.
@pytest.mark.mlperf(**MARK, settings={"server_target_qps": 0.1})
def test_second(mlperf_result):
    pass
'''

CASES = [
    # (scenario, backend, extra flags)
    ("Offline", "stall", ()),
    ("Server", "stall", ()),  # Interactive is loadgen's Server: the same path
    ("SingleStream", "stall", ()),
    ("Offline", "stall-at-start", ()),
]


def _project(tmp_path: Path) -> list[str]:
    (tmp_path / "conftest.py").write_text("from pathlib import Path\n" + fake_world.CONFTEST + STALL)
    (tmp_path / "test_bench.py").write_text(BENCH)
    namespace: dict = {}
    exec(fake_world.CONFTEST, namespace)
    namespace["make_dataset"](tmp_path / "data.json", 12)
    return ["--mlperf-dataset=data.json", "--mlperf-output=results", "-p", "no:cacheprovider",
            "--junitxml=junit.xml"]


def _interrupt(tmp_path: Path, args: list[str], ready: Path | Callable[[], bool],
               patience_s: float = 60.0) -> tuple[int, float, str]:
    """Run pytest, send SIGINT half a second after ``ready`` exists (or says so): well inside
    the wait; (exit status, seconds from SIGINT to exit, output)."""
    return signal_pytest(tmp_path, args, ready, patience_s=patience_s)


@pytest.mark.parametrize(("scenario", "backend", "flags"), CASES, ids=[f"{s}-{b}" for s, b, _ in CASES])
def test_ctrl_c_during_a_run_exits_promptly_and_keeps_logs_and_reports(
        tmp_path: Path, scenario: str, backend: str, flags: tuple[str, ...]) -> None:
    args = _project(tmp_path) + [f"--mlperf-backend={backend}", f"--mlperf-scenario={scenario}",
                                 "--mlperf-mode=accuracy", *flags]
    status, took, output = _interrupt(tmp_path, args, tmp_path / "stalled")
    assert status == pytest.ExitCode.INTERRUPTED, output[-3000:]
    assert took < 30, (took, output[-3000:])  # 5 s of grace for loadgen, then the reports
    assert "Fatal Python error" not in output and "Segmentation fault" not in output, output[-3000:]
    assert "KeyboardInterrupt" in output
    # written, with what finished, and the interrupted test named as interrupted
    cases = [c for c in ET.parse(tmp_path / "junit.xml").iter("testcase") if c.get("name")]
    failed = {c.get("name"): f.get("message", "") for c in cases for f in c.iter("failure")}
    interrupted = "test_second" if backend == "stall" else "test_first"
    assert "interrupted by Ctrl-C" in failed.pop(f"{interrupted}[{scenario}-accuracy]"), failed
    assert failed == {}
    if backend == "stall":
        assert [c.get("name") for c in cases] == [f"test_first[{scenario}-accuracy]", f"test_second[{scenario}-accuracy]"]
        assert "MLPerf results" in output  # the summary of what finished
        run = next((tmp_path / "results").glob("test_bench.py_test_second*/run_1/accuracy"))
        assert (run / "mlperf_log_detail.txt").is_file()  # the interrupted run's logs, kept
        if scenario == "Server":
            assert "still running; exiting without waiting for it" in output
    else:
        assert [c.get("name") for c in cases] == [f"test_first[{scenario}-accuracy]"]


# The real transformers engine interrupted mid-generation, by Ctrl-C, a second Ctrl-C, SIGTERM
# and under -n 2: tests/test_shutdown.py.
