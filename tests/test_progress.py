"""Live progress: the status files, ``python -m pytest_mlperf.watch``, the terminal's live line
(on a real pseudo-terminal, replayed through a terminal emulator) and the lines in CI logs,
with and without xdist. Real loadgen; the fake world's slow backend (0.6 s a query)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from pytest_mlperf.core.vocabulary import Mode, Scenario
from pytest_mlperf.live import status as st
from pytest_mlperf.live.progress import Expectation, RunTracker
from pytest_mlperf.loadgen.sut import Progress
from tests.fake_world import setup

NODE = "test_bench.py::test_bench[Offline-performance]"


def _statuses(folder: Path) -> list[dict]:
    out = []
    for path in (folder / "status").glob("*.json"):
        try:
            out.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            pytest.fail(f"a status file was read half-written: {path}")
    return out


def _watch(folder: Path, columns: int = 200) -> str:
    proc = subprocess.run([sys.executable, "-m", "pytest_mlperf.live.watch", str(folder), "--once"],
                          capture_output=True, text=True, timeout=60, check=True,
                          env={**os.environ, "COLUMNS": str(columns)})
    return proc.stdout


def test_status_file_and_watch_show_a_running_benchmark(pytester: pytest.Pytester) -> None:
    args = setup(pytester)
    results = pytester.path / "results"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "--mlperf-backend=slow", "--mlperf-mode=performance",
         "--mlperf-progress-interval=0", *args],
        cwd=pytester.path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        running = None
        deadline = time.monotonic() + 120
        while running is None and time.monotonic() < deadline and proc.poll() is None:
            for status in _statuses(results):
                if status["state"] == "running" and 2 <= status["completed"] <= 9:
                    running = status
            time.sleep(0.2)
        assert running is not None, "no running status seen"
        shown = _watch(results)  # while the benchmark runs, from another process
        assert proc.poll() is None, "the run ended before watch looked"
    finally:
        out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out[-3000:]
    assert running["nodeid"] == NODE and running["expected"] == 12 and running["issued"] == 12
    assert running["pid"] == proc.pid and running["tokens_per_second"] > 0
    assert running["eta_s"] > 0 and running["elapsed_s"] > 1
    session = json.loads((results / "session.json").read_text())
    assert running["session"] == session["id"]
    line = next(x for x in shown.splitlines()[1:] if x.startswith("running"))
    assert line.split() == ["running", NODE]
    done = int(re.search(r"(\d+)/12 queries", shown).group(1))
    assert 2 <= done <= 12 and "left" in shown and "tokens/s" in shown

    final = _statuses(results)
    assert [(s["state"], s["completed"]) for s in final] == [("passed", 12)]
    after = _watch(results)
    assert "finished after" in after and "exit status 0" in after and f"passed  {NODE}" in after


def test_watch_says_when_there_is_nothing_to_watch(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "pytest_mlperf.live.watch", str(tmp_path), "--once"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 1 and "no pytest-mlperf session" in proc.stderr


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_logs_get_a_progress_line_every_interval(pytester: pytest.Pytester, xdist: list[str]) -> None:
    """Not a terminal (CI): a full line per running benchmark every --mlperf-progress-interval
    seconds; under xdist the controller prints what the workers' status files say."""
    if xdist:
        pytest.importorskip("xdist")
    args = setup(pytester)
    result = pytester.runpytest_subprocess("--mlperf-backend=slow", "--mlperf-mode=performance",
                                           "--mlperf-progress-interval=1", *xdist, *args)
    result.assert_outcomes(passed=1)
    pattern = re.compile(r"^\[mlperf\] " + re.escape(NODE) + r": (\d+)/12 queries \((\d+)%\), [\d,.]+ tokens/s, "
                         r"\d+:\d\d elapsed(, ~\d+:\d\d left)?$")
    counts = [int(m.group(1)) for m in map(pattern.match, result.outlines) if m]
    assert len(counts) >= 3, "\n".join(result.outlines)
    assert counts == sorted(counts) and counts[-1] > counts[0]
    # the first heartbeat already has the true total (the pattern's /12), and pytest's own
    # line is not repeated after each heartbeat
    module_lines = [x for x in result.outlines if x.startswith("test_bench.py")]
    assert len(module_lines) == (0 if xdist else 1), "\n".join(result.outlines)  # xdist: dots only


def test_progress_can_be_turned_off(pytester: pytest.Pytester) -> None:
    args = setup(pytester, n=4)  # 2.4 s: two lines at a 1 s interval, were it on
    result = pytester.runpytest_subprocess("--mlperf-backend=slow", "--mlperf-mode=performance",
                                           "--mlperf-progress-interval=0", *args)
    result.assert_outcomes(passed=1)
    assert not [x for x in result.outlines if x.startswith("[mlperf]")]
    assert list((pytester.path / "results" / "status").glob("*.json"))  # the files stay


def _on_a_terminal(pytester: pytest.Pytester, args: list[str], env: dict[str, str], columns: int,
                   set_size: bool = False) -> tuple[Any, list[str], bytes]:
    """pytest ``args`` on a pseudo-terminal, its bytes replayed through pyte: (the final
    screen, every ``[mlperf]`` line the screen showed on the way, the raw bytes). ``set_size``:
    the terminal itself is ``columns`` wide (the window size), not only the screen."""
    import fcntl
    import pty
    import struct
    import termios

    import pyte

    pid, fd = pty.fork()
    if pid == 0:  # the child: pytest on the pseudo-terminal
        if set_size:
            fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 200, columns, 0, 0))
        os.chdir(pytester.path)
        os.execve(sys.executable, [sys.executable, "-m", "pytest", "-p", "no:xdist", *args], env)
    screen = pyte.Screen(columns, 200)
    stream = pyte.ByteStream(screen)
    seen: list[str] = []
    raw = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        raw += chunk
        stream.feed(chunk)
        seen += [line.rstrip() for line in screen.display if line.startswith("[mlperf] ")]
    os.waitpid(pid, 0)
    return screen, seen, raw


def test_terminal_gets_one_live_line_that_leaves_pytests_output_intact(pytester: pytest.Pytester) -> None:
    """On a terminal: one line, redrawn in place while the run goes, erased before pytest
    writes, the cursor back where pytest left it. The bytes are replayed through a VT100
    emulator (pyte) to see the screen a user would see."""
    pytest.importorskip("pyte")
    args = setup(pytester)
    env = {**os.environ, "COLUMNS": "120", "LINES": "200", "TERM": "xterm"}
    env.pop("PYTEST_ADDOPTS", None)
    screen, live_seen, raw = _on_a_terminal(
        pytester, ["--mlperf-backend=slow", "--mlperf-mode=performance", *args], env, 120)
    lines = [line.rstrip() for line in screen.display]
    assert any(re.match(r"\[mlperf\] test_bench\[Offline-performance\]: \d+/12 queries \(\d+%\) · ", x)
               for x in live_seen), raw[-3000:]
    assert len({x for x in live_seen}) >= 3  # redrawn as the run went on
    assert raw.count(b"\n[mlperf]") <= 1  # one line, rewritten in place, not a line per update
    assert not [x for x in lines if "[mlperf]" in x], "\n".join(lines)  # erased at the end
    assert any(re.fullmatch(r"test_bench\.py \.\s+\[100%\]", x) for x in lines), "\n".join(lines)


# -- the tracker, without pytest ------------------------------------------------------------------

def _tracker(tmp_path: Path, scenario: Scenario, expected: Expectation, mode: Mode = Mode.PERFORMANCE) -> RunTracker:
    return RunTracker(output=tmp_path, session=st.SessionInfo.new("pytest x"), nodeid="t.py::t[x]",
                      benchmark="llama3.1-8b", scenario=scenario, mode=mode, outdir=tmp_path / "run",
                      expected=expected)


def test_offline_total_comes_from_the_first_issue(tmp_path: Path) -> None:
    tracker = _tracker(tmp_path, Scenario.OFFLINE, Expectation(min_queries=100, total_from_issue=True))
    tracker.update(Progress(issued=400, completed=100, output_tokens=5000, elapsed_s=10.0))
    status = st.read_statuses(tmp_path)[0]
    assert (status.expected, status.eta_s, status.tokens_per_second) == (400, 30.0, 500.0)
    assert status.ttft_p99_ms is None  # Offline measures no first tokens


def test_server_time_left_is_the_longer_of_queries_and_duration(tmp_path: Path) -> None:
    tracker = _tracker(tmp_path, Scenario.SERVER, Expectation(queries=600, min_queries=460, min_duration_s=60.0))
    ttft = tuple(i / 1000 for i in range(1, 101))  # 1..100 ms: p99 is 99 ms
    tracker.update(Progress(issued=110, completed=100, output_tokens=900, elapsed_s=10.0, ttft_s=ttft, tpot_s=ttft))
    status = st.read_statuses(tmp_path)[0]
    assert status.eta_s == 50.0  # 500 queries at 10/s
    assert status.ttft_p99_ms == pytest.approx(99.0) and status.tpot_p99_ms == pytest.approx(99.0)
    tracker.update(Progress(issued=590, completed=590, output_tokens=9000, elapsed_s=30.0))
    assert st.read_statuses(tmp_path)[0].eta_s == 30.0  # queries nearly done; 30 s of the minimum left
    tracker.run_done()
    assert st.read_statuses(tmp_path)[0].state == "scoring"
    tracker.finish(passed=False, reason="p99 TTFT 3000.0 ms > max_ttft_ms 2000", record=None)
    final = st.read_statuses(tmp_path)[0]
    assert (final.state, final.reason, final.eta_s) == ("failed", "p99 TTFT 3000.0 ms > max_ttft_ms 2000", None)
    details = tracker.details()
    assert [row[2] for row in details.timeline] == [0, 100, 590]
    assert details.ttft_ms is None  # the last update carried no per-query times


def test_expectation_follows_the_settings() -> None:
    from pytest_mlperf.core.vocabulary import Profile
    from pytest_mlperf.live.progress import expectation
    from pytest_mlperf.loadgen.settings import SettingsPlan

    def plan(scenario: Scenario, **cli) -> SettingsPlan:
        return SettingsPlan(benchmark="llama3.1-8b", scenario=scenario, profile=Profile.QUICK,
                            total_count=50, performance_count=50, cli_overrides=cli)

    assert expectation(plan(Scenario.SERVER, server_target_qps=100, min_duration_ms=20_000), Mode.PERFORMANCE) \
        == Expectation(queries=2000, min_queries=838, min_duration_s=20.0)
    assert expectation(plan(Scenario.SERVER, server_target_qps=1), Mode.ACCURACY).queries == 50
    assert expectation(plan(Scenario.OFFLINE), Mode.PERFORMANCE) == Expectation(min_queries=50, total_from_issue=True)
    # whole passes over the 50 samples (sample_concatenate_permutation): 838 -> 850, 64 -> 100
    assert expectation(plan(Scenario.SERVER, server_target_qps=16), Mode.PERFORMANCE).queries == 850
    single = expectation(plan(Scenario.SINGLE_STREAM), Mode.PERFORMANCE)
    assert (single.queries, single.min_queries, single.min_duration_s) == (100, 64, 0.0)
    assert expectation(plan(Scenario.SINGLE_STREAM, min_duration_ms=10_000), Mode.PERFORMANCE).queries == 1000


@pytest.mark.parametrize(("scenario", "cli"), [
    # a duration's worth above the quick profile's 838 queries: loadgen's random schedule decides
    (Scenario.SERVER, {"server_target_qps": 800, "min_duration_ms": 2000}),
    (Scenario.SINGLE_STREAM, {"min_duration_ms": 5000, "single_stream_expected_latency_ns": 1_000_000}),
])
def test_the_progress_total_is_what_loadgen_laid_out(tmp_path: Path, scenario: Scenario, cli: dict) -> None:
    """The settings' estimate misses loadgen's slack (a Server schedule is random; SingleStream
    lays out about twice min_duration's worth), so once the detail log says, the progress line's
    total is loadgen's generated_query_count (an instant SUT, paced by loadgen)."""
    from pytest_mlperf.backends.base import SystemSpec
    from pytest_mlperf.core.vocabulary import Profile
    from pytest_mlperf.live.progress import expectation
    from pytest_mlperf.loadgen.logs import read_detail
    from pytest_mlperf.loadgen.runner import run_loadgen
    from pytest_mlperf.loadgen.settings import SettingsPlan
    from tests.test_logs import Instant

    plan = SettingsPlan(benchmark="llama3.1-8b", scenario=scenario, profile=Profile.QUICK,
                        total_count=50, performance_count=50, cli_overrides=cli)
    tracker = _tracker(tmp_path, scenario, expectation(plan, Mode.PERFORMANCE))
    seen: list = []

    def on_progress(progress) -> None:
        seen.append(progress)
        tracker.update(progress)

    run_loadgen(plan=plan, mode=Mode.PERFORMANCE, backend=Instant(SystemSpec.local(tmp_path)),
                prompts=[[1, 2]] * 50, outdir=tmp_path / "run", on_progress=on_progress,
                progress_interval_s=0.2)
    laid_out = read_detail(tmp_path / "run" / "mlperf_log_detail.txt").get("generated_query_count")
    assert laid_out != expectation(plan, Mode.PERFORMANCE).queries  # the estimate alone is off
    assert seen[-1].laid_out == laid_out and tracker.status.expected == laid_out


def test_status_files_are_never_read_half_written(tmp_path: Path) -> None:
    path = st.status_path(tmp_path, "t.py::t")
    status = st.RunStatus(session="s", nodeid="t.py::t", benchmark="b", scenario="Offline",
                          mode="performance", state="running", reason="x" * 20000)
    done = threading.Event()

    def write() -> None:
        for i in range(300):
            st.write_status(path, st.RunStatus(**{**status.__dict__, "completed": i}))
        done.set()

    st.write_status(path, status)
    writer = threading.Thread(target=write)
    writer.start()
    reads = 0
    while not done.is_set():
        json.loads(path.read_text())  # raises on a torn file
        reads += 1
    writer.join()
    assert reads > 10 and json.loads(path.read_text())["completed"] == 299


# -- the session from its first second: watch --follow, the terminal's width ----------------------

SLOW_START = '''

class SlowStart(SlowBackend):
    """An engine that takes a while to load, as a real one does (minutes on a GPU)."""
    name = "slow-start"

    def start(self):
        time.sleep(2.5)
        super().start()


BACKENDS["slow-start"] = SlowStart
'''

PLAIN_FAILURE = '''

def test_not_a_benchmark_fails():
    assert False, "the session's exit status is 1"
'''


def _slow_start_world(pytester: pytest.Pytester, n: int = 5) -> list[str]:
    args = setup(pytester, n=n, scenarios='("Offline",)')
    conftest = pytester.path / "conftest.py"
    conftest.write_text(conftest.read_text() + SLOW_START)
    return args


def test_watch_follow_sees_a_new_session_from_its_first_second(pytester: pytest.Pytester) -> None:
    """``watch --follow`` started before pytest, on a folder that still holds the last
    session's files: it waits for the new session, then shows its benchmarks pending, the
    first one's engine starting, running, and both finished, and exits with the session's exit
    status (1: a plain test failed). The old session is never shown as the current one."""
    args = _slow_start_world(pytester)
    bench = pytester.path / "test_bench.py"
    bench.write_text(bench.read_text() + PLAIN_FAILURE)
    # a plain test collected before the benchmarks: while it runs, both are pending
    pytester.makepyfile(test_a_first="import time\n\ndef test_first():\n    time.sleep(1.5)\n")
    results = pytester.path / "results"
    accuracy = "test_bench.py::test_bench[Offline-accuracy]"
    performance = "test_bench.py::test_bench[Offline-performance]"
    # the last session in this folder: finished, exit status 0, one benchmark passed
    old = st.SessionInfo(id="20200101T000000-1", started=time.time() - 600, pid=1, host="elsewhere",
                         finished=time.time() - 500, exitstatus=0, tests=[performance])
    st.write_session(results, old)
    st.write_status(st.status_path(results, performance), st.RunStatus(
        session=old.id, nodeid=performance, benchmark="llama3.1-8b", scenario="Offline",
        mode="performance", state=st.PASSED, completed=5, expected=5, tokens_per_second=9.0))

    env = {**os.environ, "COLUMNS": "160"}
    watch = subprocess.Popen([sys.executable, "-m", "pytest_mlperf.watch", str(results), "--follow",
                              "--interval", "0.2"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True, env=env)
    try:
        time.sleep(1.0)  # watch is up and waiting before pytest starts
        run = subprocess.run([sys.executable, "-m", "pytest", "--mlperf-backend=slow-start",
                              "--mlperf-progress-interval=0", *args], cwd=pytester.path,
                             capture_output=True, text=True, timeout=300)
        shown, _ = watch.communicate(timeout=60)
    finally:
        if watch.poll() is None:
            watch.kill()
    assert run.returncode == 1, run.stdout[-3000:]
    assert watch.returncode == 1, shown[-3000:]
    blocks = [b for b in shown.split("\n\n") if b.strip()]
    assert blocks[0].startswith(f"waiting for a pytest-mlperf session in {results} (the last one, {old.id}")
    screens = blocks[1:]
    assert screens and not [b for b in screens if b.startswith(f"session {old.id}")], shown
    new = json.loads((results / "session.json").read_text())
    assert all(b.startswith(f"session {new['id']}: ") for b in screens), shown
    assert new["tests"] == [performance, accuracy] and new["exitstatus"] == 1

    def seen(state: str, nodeid: str) -> list[str]:
        return [b for b in screens if re.search(rf"^{state}\s+{re.escape(nodeid)}", b, re.M)]

    both_pending = [b for b in seen("pending", accuracy) if b in seen("pending", performance)]
    assert both_pending, shown
    starting = seen("starting", performance)  # the first test loads the engine
    assert starting and all("starting engine" in b for b in starting), shown
    assert seen("running", accuracy) and seen("running", performance), shown
    first = {state: screens.index(seen(state, performance)[0]) for state in ("pending", "starting", "running")}
    assert first["pending"] < first["starting"] < first["running"], first
    final = screens[-1]
    assert "finished after" in final and "exit status 1" in final and "2 of 2 benchmarks finished" in final
    assert final in seen("passed", accuracy) and final in seen("passed", performance), final
    assert re.search(r"^state\s+test\s+tokens/s\s+p99 TTFT ms\s+p99 TPOT ms\s+time$", final, re.M), final


def test_watch_shows_a_session_whose_pytest_died_as_died(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    pid = int(dead.stdout)
    import socket

    info = st.SessionInfo(id="s-dead", started=time.time() - 60, pid=pid, host=socket.gethostname(),
                          tests=["t.py::a", "t.py::b"])
    st.write_session(tmp_path, info)
    st.write_status(st.status_path(tmp_path, "t.py::a"), st.RunStatus(
        session=info.id, nodeid="t.py::a", benchmark="llama3.1-8b", scenario="Offline",
        mode="performance", state=st.RUNNING, completed=3, expected=10, pid=pid,
        host=socket.gethostname(), started=time.time() - 30, updated=time.time() - 20))
    shown = _watch(tmp_path)
    assert shown.startswith("session s-dead: died (its pytest is gone without a final status); 0 of 2")
    assert re.search(r"^died\s+t\.py::a$", shown, re.M) and re.search(r"^died\s+t\.py::b$", shown, re.M)
    assert "running" not in shown
    narrow = _watch(tmp_path, columns=40)
    assert max(map(len, narrow.splitlines())) <= 40 and narrow.startswith("session s-dead: died")
    follow = subprocess.run([sys.executable, "-m", "pytest_mlperf.watch", str(tmp_path), "--follow",
                             "--session", info.id], capture_output=True, text=True, timeout=60)
    assert follow.returncode == 1 and "died" in follow.stdout


@pytest.mark.parametrize("columns", [80, 160])
def test_the_live_line_is_as_wide_as_the_real_terminal(pytester: pytest.Pytester, columns: int) -> None:
    """pytest on a pseudo-terminal of ``columns`` columns, no COLUMNS in the environment: the
    width comes from the terminal itself (while pytest captures the test's output, the
    standard streams would say 80). The screen, replayed through pyte, shows whole lines:
    at 160 every phrase (the test's place, its parameters, elapsed and left), at 80 what fits,
    never a line cut short; and the engine's start as its own phase."""
    pytest.importorskip("pyte")
    args = _slow_start_world(pytester)
    env = {**os.environ, "LINES": "200", "TERM": "xterm"}
    env.pop("COLUMNS", None)
    env.pop("PYTEST_ADDOPTS", None)
    screen, seen, _ = _on_a_terminal(pytester, ["--mlperf-backend=slow-start", *args], env, columns,
                                     set_size=True)
    assert seen, "\n".join(screen.display)
    assert all(len(x) < columns and not x.endswith("…") for x in seen), seen
    node = r"test_bench\[Offline-(performance|accuracy)\]"
    if columns == 160:
        running = [x for x in seen if re.fullmatch(
            rf"\[mlperf\] test [12] of 2 · {node}: \d+/5 queries \(\d+%\) · [\d,.]+ tokens/s · "
            r"\d+:\d\d elapsed( · ~\d+:\d\d left)?", x)]
        assert any("left" in x for x in running), seen
        assert any(re.fullmatch(rf"\[mlperf\] test 1 of 2 · {node}: starting engine · 0:0\d elapsed", x)
                   for x in seen), seen
    else:
        assert any(re.fullmatch(r"\[mlperf\] .*: \d+/5 queries \(\d+%\) · [\d,.]+ tokens/s · ~\d+:\d\d left", x)
                   for x in seen), seen
        assert any("starting engine" in x for x in seen), seen


# -- the run's place in the session ----------------------------------------------------------------

RECORD_PLACES = '''

PLACES = []


@pytest.fixture
def mlperf_runner(mlperf_runner, request):
    """The plugin's runner, noting the item's place as each loadgen run starts."""
    from pytest_mlperf.core import stash

    def run(mode, overrides=None, label=None):
        PLACES.append([request.node.name, request.node.stash[stash.PLACE].to_json()])
        return mlperf_runner(mode, overrides=overrides, label=label)
    return run


def pytest_sessionfinish(session):
    from pathlib import Path
    Path("places.json").write_text(json.dumps(PLACES))
'''


def test_each_run_knows_its_place_in_the_session(pytester: pytest.Pytester) -> None:
    """Test k of N, repeat i of n and TEST06's audit run, set by the run layer before each
    loadgen run, as the status file, the live line and watch get them."""
    args = setup(pytester, n=4, scenarios='("Offline",)')
    conftest = pytester.path / "conftest.py"
    conftest.write_text(conftest.read_text() + RECORD_PLACES)
    result = pytester.runpytest_subprocess("--mlperf-backend=copy", "--mlperf-repeat=2",
                                           "--mlperf-compliance=TEST06", "--mlperf-progress-interval=0", *args)
    result.assert_outcomes(passed=2)
    places = json.loads((pytester.path / "places.json").read_text())
    perf, acc = "test_bench[Offline-performance]", "test_bench[Offline-accuracy]"
    assert places == [
        [perf, {"test": 1, "tests": 2, "repeat": 1, "repeats": 2}],
        [perf, {"test": 1, "tests": 2, "repeat": 2, "repeats": 2}],
        [perf, {"test": 1, "tests": 2, "audit": "TEST06"}],
        [acc, {"test": 2, "tests": 2}],
    ], places
    statuses = {s["nodeid"].rsplit("::", 1)[-1]: s for s in _statuses(pytester.path / "results")}
    assert statuses[perf]["place"] == {"test": 1, "tests": 2, "audit": "TEST06"}


def test_place_words() -> None:
    from pytest_mlperf.core.place import Place, words

    assert words(None) == [] and words(Place(test=1, tests=1).to_json()) == []  # alone: nothing to say
    assert words(Place(test=3, tests=8, repeat=2, repeats=3).to_json()) == ["test 3 of 8", "repeat 2 of 3"]
    assert words(Place(test=1, tests=2, peak_run=4, target_qps=12.5).to_json()) == [
        "test 1 of 2", "find-peak run 4 @ 12.5 qps"]
    assert words(Place(audit="TEST06", target_qps=12.5).to_json()) == ["TEST06 audit"]


def test_an_engine_that_fails_to_start_leaves_no_starting_status(pytester: pytest.Pytester) -> None:
    args = setup(pytester, n=4, scenarios='("Offline",)')
    conftest = pytester.path / "conftest.py"
    conftest.write_text(conftest.read_text() + '''

class FailStart(CopyBackend):
    name = "fail-start"

    def start(self):
        time.sleep(0.5)
        raise RuntimeError("no GPU left")


BACKENDS["fail-start"] = FailStart
''')
    result = pytester.runpytest_subprocess("--mlperf-backend=fail-start", "--mlperf-mode=performance",
                                           "--mlperf-progress-interval=0", *args)
    result.assert_outcomes(failed=1)
    [status] = _statuses(pytester.path / "results")
    assert status["state"] == "failed" and "failed to start: RuntimeError: no GPU left" in status["reason"]
    assert status["elapsed_s"] >= 0.5
    shown = _watch(pytester.path / "results")
    assert re.search(r"^failed\s+test_bench\.py::test_bench\[Offline-performance\]", shown, re.M), shown
