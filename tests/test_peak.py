"""``--mlperf-find-peak``: bracketing then bisection to a tolerance, every run reported.

The double is instant but serves one query at a time at a known rate (``RATE`` queries a
second, each finishing ``1/RATE`` after the previous one on a clock of its own: an M/D/1
server). Below its rate queues stay short, above it they grow without bound, so loadgen's TTFT
limit (40 ms at the median, 8 service times) separates VALID from INVALID within a few percent
of the rate, far from the scheduler's jitter on a busy machine (measured: 200 qps VALID with a
median TTFT of 28 ms, 210 INVALID at 59 ms)."""

from __future__ import annotations

import pytest

from pytest_mlperf.run.peak import PeakTolerance, search
from tests.fake_world import RECORDS_JSON, session_records, setup

RATE = 200.0
CAPACITY = r'''
import collections


class Capacity(CopyBackend):
    name = "capacity"
    rate = RATE

    def start(self):
        self.cv = threading.Condition()
        self.queue = collections.deque()
        self.free_at = 0.0
        threading.Thread(target=self.work, daemon=True).start()

    def issue(self, queries, responder):
        now = time.perf_counter()
        with self.cv:
            for q in queries:
                self.free_at = max(now, self.free_at) + 1.0 / self.rate
                self.queue.append((self.free_at, q, responder))
            self.cv.notify()

    def work(self):
        while True:
            with self.cv:
                while not self.queue:
                    self.cv.wait()
                due, q, responder = self.queue.popleft()
            time.sleep(max(0.0, due - time.perf_counter()))
            out = self.answer(q.prompt)
            responder.first_token(q, out[0])
            responder.complete(q, out)


BACKENDS["capacity"] = Capacity

'''.replace("RATE", repr(RATE))


def test_find_peak_lands_within_the_tolerance_of_the_service_rate(pytester: pytest.Pytester) -> None:
    # Runs of 460 queries, as this search was calibrated with (the quick profile's 838 leave a
    # queue at 80-90 % of a thread-timed service rate on a loaded CPU more time to drift).
    settings = ('{"server_target_qps": 160, "min_duration_ms": 0, "ttft_latency": 40000000, "min_query_count": 460, '
                '"tpot_latency": 1000000000, "server_target_latency_percentile": 0.5}')
    args = setup(pytester, settings=settings, scenarios='("Server",)')
    pytester.makeconftest("from pathlib import Path\n" + (pytester.path / "conftest.py").read_text() + CAPACITY)
    result = pytester.runpytest(*args, "--mlperf-backend=capacity", "--mlperf-scenario=Server",
                                "--mlperf-mode=performance", "--mlperf-find-peak=10%", RECORDS_JSON)
    result.assert_outcomes(passed=1)
    (record,) = session_records(pytester)
    peak = record.peak
    assert peak is not None and peak.peak_qps is not None and peak.invalid_qps is not None
    # The bracket is within the tolerance, and it holds the service rate, give or take the
    # few percent by which an M/D/1 queue's edge differs from its rate.
    assert peak.invalid_qps - peak.peak_qps <= 0.10 * peak.peak_qps
    assert 0.9 * RATE <= peak.peak_qps <= RATE * 1.08 and peak.invalid_qps >= RATE * 0.95
    assert abs(peak.peak_qps - RATE) <= 0.10 * RATE
    # Every run is reported with its rate, verdict and time, in a folder of its own; the
    # test's result is the peak run.
    rates = [a.target_qps for a in peak.attempts]
    assert rates[:2] == [160, 320] and len(set(rates)) == len(rates)
    assert all(a.wall_s > 0 and a.validity in ("VALID", "INVALID") for a in peak.attempts)
    assert len({a.outdir for a in peak.attempts}) == len(peak.attempts)
    assert record.run.settings["target_qps"] == peak.peak_qps and record.run.validity == "VALID"
    assert record.run.outdir in {a.outdir for a in peak.attempts}
    result.stdout.fnmatch_lines([
        "*MLPerf peak search*",
        f"*: peak {peak.peak_qps:g} qps VALID, {peak.invalid_qps:g} qps INVALID (tolerance 10%; "
        f"{len(rates)} runs in * s)",
        "    160 qps VALID, * tokens/s, p99 TTFT * ms, p99 TPOT * ms, * s  logs: *",
        "    320 qps INVALID, *TTFT*",
    ])


class _Run:
    def __init__(self, qps: float, valid: bool, error: str | None = None) -> None:
        self.outdir, self.validity = f"run_{qps:g}", "VALID" if valid else "INVALID"
        self.invalid_reason = None if valid else "TTFT constraint not met"
        self.backend_error, self.loadgen_errors, self.wall_seconds = error, (), 1.0
        from pytest_mlperf.core.record import Figures

        self.figures = Figures(samples_per_second=qps)


@pytest.mark.parametrize(("edge", "start", "tolerance"), [
    (44.0, 10.0, "5%"), (44.0, 300.0, "5%"), (3.3, 1.0, "0.25"), (1000.0, 1000.0, "1%"),
])
def test_search_brackets_then_bisects(edge: float, start: float, tolerance: str) -> None:
    tol = PeakTolerance.parse(tolerance)
    run, found = search(lambda q: _Run(q, q <= edge), start, tol)
    assert found.note is None and found.peak_qps is not None and found.invalid_qps is not None
    assert found.peak_qps <= edge < found.invalid_qps and tol.met(found.peak_qps, found.invalid_qps)
    assert run.outdir == f"run_{found.peak_qps:g}"
    assert len(found.attempts) < 20


def test_search_says_when_it_falls_short() -> None:
    tol = PeakTolerance.parse("5%")
    run, found = search(lambda q: _Run(q, False), 8.0, tol)
    assert found.peak_qps is None and found.note == "no target QPS was VALID, down to 0.03125"
    assert run.validity == "INVALID"
    _, found = search(lambda q: _Run(q, True), 8.0, tol)
    assert found.invalid_qps is None and found.note.startswith("every target QPS was VALID, up to 2048")
    run, found = search(lambda q: _Run(q, True, "CUDA error" if q > 10 else None), 8.0, tol)
    assert found.note == "the engine failed at 16 qps; the search stopped" and run.backend_error
    with pytest.raises(ValueError, match="server_target_qps"):
        search(lambda q: _Run(q, True), 0.0, tol)
