"""The test a signal interrupted, named in every report.

pytest lets a KeyboardInterrupt out of the test without a report, so JUnit, the HTML report and
the terminal would not name the test that was running. The plugin catches the interrupt in the
call phase, hands pytest a failed call report saying what interrupted it and where its logs are,
finishes the run's status file the same way, and lets the interrupt go on.
"""

from __future__ import annotations

import signal
import time

import pytest

from pytest_mlperf.core import shutdown
from pytest_mlperf.live.progress import TRACKERS

#: the first words of an interrupted test's failure, in every report
INTERRUPTED = "interrupted"


def why() -> str:
    signum = shutdown.received()
    if signum is None or signum == signal.SIGINT:
        return "Ctrl-C"
    return signal.Signals(signum).name


def report_interrupted(item: pytest.Item, exc: BaseException, started: float) -> None:
    where = str(exc).strip() or "the run was interrupted"
    text = f"{INTERRUPTED} by {why()} during the benchmark: {where}"
    trackers = item.stash.get(TRACKERS, [])
    for tracker in trackers:
        if tracker.status.active:
            tracker.finish(passed=False, reason=text, record=None)
    stop = time.time()
    # the call, failed; then its teardown, which pytest-html and JUnit wait for to write a test
    for when, outcome, longrepr, began in (("call", "failed", text, started), ("teardown", "passed", None, stop)):
        report = pytest.TestReport(
            nodeid=item.nodeid, location=item.location,
            keywords={name: 1 for name in item.keywords}, outcome=outcome, longrepr=longrepr,
            when=when, sections=[], duration=stop - began, start=began, stop=stop,
            user_properties=list(item.user_properties),
        )
        item.ihook.pytest_runtest_logreport(report=report)
