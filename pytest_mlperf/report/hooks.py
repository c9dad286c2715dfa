"""The report plugins, registered by ``pytest_configure``:

- :class:`RunReporting`, in every process that runs benchmarks (the controller, or each xdist
  worker): finishes each run's status file, writes ``accuracy.txt`` in accuracy run folders,
  attaches the run's details to the test report;
- :class:`SessionReporting`, on the controller only: live progress, then the session's files
  (``--mlperf-json``, ``summary.md``/``metrics.txt``, the submission tree) and the lines that
  name them in the terminal summary;
- pytest-html's columns and panels when pytest-html is active; under xdist, the session's
  identity handed to every worker.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
import warnings
from pathlib import Path
from typing import Any

import pytest

from pytest_mlperf.core import details as run_details
from pytest_mlperf.core import stash
from pytest_mlperf.live import status as st
from pytest_mlperf.live.progress import SESSION, TRACKERS, session_info


def register(config: pytest.Config) -> None:
    from pytest_mlperf.live.progress import engine_starting

    config.pluginmanager.register(RunReporting(), "mlperf-run-reporting")
    from pytest_mlperf.report import remote

    config.stash[stash.ON_ENGINE_START] = engine_starting  # "starting engine" in the status file
    if hasattr(config, "workerinput"):
        remote.register(config)  # a worker on another host: its files back to the controller
        return
    info = session_info(config)
    opts = config.stash[stash.OPTIONS]
    if opts.submission_dir is not None:
        from pytest_mlperf.submission.tree import SystemDescError, load_system_desc

        try:  # a description the tree cannot use stops the session before anything runs
            load_system_desc(opts.system_desc, opts.submitter)
        except SystemDescError as exc:
            raise pytest.UsageError(f"--mlperf-system-desc: {exc}") from None
    config.pluginmanager.register(SessionReporting(config), "mlperf-session-reporting")
    from pytest_mlperf.report import junit

    junit.register(config)  # xunit2: figures in system-out, no properties in test cases
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(XdistSession(info), "mlperf-xdist-session")
    if config.pluginmanager.hasplugin("html") and getattr(config.option, "htmlpath", None):
        from pytest_mlperf.report.html import HtmlReport

        config.pluginmanager.register(HtmlReport(config), "mlperf-html")
    # Last, so that its tryfirst report hook runs before the others': they read the paths it
    # rewrites for the files it brings back from workers on other hosts.
    remote.register(config)


class XdistSession:
    def __init__(self, info: st.SessionInfo) -> None:
        self._info = info

    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput["mlperf_session"] = dataclasses.asdict(self._info)


class RunReporting:
    """Where the benchmark ran."""

    @pytest.hookimpl(trylast=True)  # after the collection checks: a refused session writes nothing
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        from pytest_mlperf.live.progress import number_tests

        tests = number_tests(session.items)
        config = session.config
        worker = getattr(config, "workerinput", {}).get("workerid")
        if config.option.collectonly or worker not in (None, "gw0") or not tests:
            return  # a session without benchmarks leaves no folder behind
        if session.testsfailed and not config.option.continue_on_collection_errors:
            return  # collection failed: pytest stops, nothing ran
        # session.json as soon as the session is known to run, before any engine starts: watch
        # tells this session from the last one in the same folder, and shows its benchmarks
        # pending until their status files say otherwise (under xdist the controller collects
        # nothing; the first worker writes it for the controller's session).
        info = dataclasses.replace(session_info(config), tests=tests)
        config.stash[SESSION] = info
        with contextlib.suppress(OSError):  # replaces the last session's, in a reused folder
            st.write_session(config.stash[stash.OPTIONS].output, info)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
        report = yield
        trackers = item.stash.get(TRACKERS, [])
        if call.when == "call" and not trackers and stash.SPEC in item.stash:
            from pytest_mlperf.live.progress import finish_starting

            lines = (report.longreprtext or "").strip().splitlines()
            with contextlib.suppress(OSError):
                finish_starting(item, passed=report.passed, reason=lines[-1] if lines else None)
        if call.when == "call" and trackers:
            result = item.stash.get(stash.RESULT, None)
            record = result.record if result is not None and result.executed else None
            if record is not None and not record.verdict.passed:
                reason: str | None = record.verdict.explain()
            else:
                lines = (report.longreprtext or "").strip().splitlines()
                reason = lines[-1] if lines else None
            # Every run of a test (repeats, a peak search, an audit run) shares its status file;
            # the details are those of the run the record stands for.
            trackers[-1].finish(passed=report.passed, reason=reason, record=record)
            outdir = record.run.outdir if record is not None else None
            primary = next((t for t in trackers if t.status.outdir == outdir), trackers[-1])
            run_details.attach(report, primary.details(record))
        return report

    def pytest_mlperf_result(self, item: pytest.Item, record: Any) -> None:
        from pytest_mlperf.submission.accuracy_txt import write_accuracy_txt

        try:
            write_accuracy_txt(record)
        except OSError as exc:
            warnings.warn(f"pytest-mlperf: could not write accuracy.txt in {record.run.outdir}: {exc}",
                          stacklevel=1)


class SessionReporting:
    """On the controller: what the session shows and writes."""

    def __init__(self, config: pytest.Config) -> None:
        self._config = config
        self._live: Any = None
        self._details: dict[str, run_details.RunDetails] = {}
        self._written: list[tuple[str, Path]] = []
        self._notes: list[str] = []
        self._predicted: list[str] = []

    @property
    def options(self) -> Any:
        return self._config.stash[stash.OPTIONS]

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        interval = self.options.progress_interval
        terminal = self._config.pluginmanager.get_plugin("terminalreporter")
        if interval and terminal is not None and not self._config.option.collectonly:
            from pytest_mlperf.report.live import LiveProgress

            self._live = LiveProgress(self._config, self.options.output,
                                      self._config.stash[SESSION].id, interval)
            self._live.start()

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logstart(self) -> None:
        if self._live is not None:
            self._live.pause()

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if self._live is not None:
            self._live.pause()
        if report.when == "call":
            found = run_details.from_report(report)
            if found is not None:
                self._details[report.nodeid] = found

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
        records = list(self._config.stash.get(stash.RECORDS, []))
        self._finish_session_file(int(exitstatus))
        if records or (self.options.json is not None and exitstatus == pytest.ExitCode.INTERRUPTED):
            # each file on its own: one that fails (a full disk) is named, fails the exit
            # status, and never stops the others
            for what, write in self.writers(records):
                try:
                    self._written += write()
                except (OSError, ValueError) as exc:
                    from pytest_mlperf.report.outputs import write_failed

                    write_failed(session, what, exc)

    def _finish_session_file(self, exitstatus: int) -> None:
        info = self._config.stash[SESSION]
        current = st.read_session(self.options.output)
        if current is not None and current.id == info.id:
            from pytest_mlperf.core import shutdown

            st.write_session(self.options.output, dataclasses.replace(
                current, finished=time.time(), exitstatus=shutdown.exit_status(exitstatus)))

    def writers(self, records: list[Any]) -> list[tuple[str, Any]]:
        """(what, a call that writes it and returns [(label, path)]) for each session file."""
        from pytest_mlperf.report.ci import write_ci_files
        from pytest_mlperf.report.terminal import reproduce_command

        opts = self.options
        reproduce = reproduce_command(self._config)
        session = self._config.stash[SESSION].id
        out: list[tuple[str, Any]] = []
        if opts.json is not None:
            def json_file() -> list[tuple[str, Path]]:
                from pytest_mlperf.report.results_json import write_results_json

                return [("results JSON", write_results_json(opts.json, records, reproduce=reproduce,
                                                            session=session))]
            out.append((f"the results JSON {opts.json}", json_file))
        if records:
            out.append((f"summary.md and metrics.txt in {opts.output}",
                        lambda: list(write_ci_files(opts.output, records, reproduce).items())))
        if records and opts.submission_dir is not None:
            def tree() -> list[tuple[str, Path]]:
                from pytest_mlperf.submission.tree import build_tree

                built = build_tree(records, self._details, root=opts.submission_dir,
                                   submitter=opts.submitter, system_desc=opts.system_desc,
                                   reproduce=reproduce)
                self._notes.extend(built.warnings)
                self._predicted = [r.line() for r in built.predicted]
                return [("submission tree", built.root)]
            out.append((f"the submission tree {opts.submission_dir}", tree))
        return out

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        from pytest_mlperf.report.outputs import FAILED_WRITES
        from pytest_mlperf.run.benchmark import relative

        failed = self._config.stash.get(FAILED_WRITES, [])
        if not self._written and not self._notes and not failed and not self._predicted:
            return
        for label, path in self._written:
            terminalreporter.write_line(f"{label}: {relative(path)}")
        for note in self._notes:
            terminalreporter.write_line(f"note: {note}", yellow=True)
        if self._predicted:
            from pytest_mlperf.submission.predict import FILE

            terminalreporter.write_line(f"the official submission checker will reject ({len(self._predicted)}, "
                                        f"predicted; also in {relative(self.options.submission_dir / FILE)}):",
                                        yellow=True)
            for line in self._predicted:
                terminalreporter.write_line(f"  {line}", yellow=True)
        for line in failed:
            terminalreporter.write_line(f"ERROR: {line}", red=True)
