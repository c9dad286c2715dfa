"""pytest-mlperf: MLPerf Inference LLM benchmarks as pytest tests.

This module holds pytest hooks only. What they use loads lazily: no numpy, loadgen, torch, vLLM
or transformers at plugin import or at ``pytest --help``.
"""

from __future__ import annotations

from typing import Any

import pytest

from pytest_mlperf import hookspecs, options
from pytest_mlperf.core import record, stash
from pytest_mlperf.core.vocabulary import Profile
from pytest_mlperf.spec import MARKER, MARKER_HELP, SpecError, spec_from_marker


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    options.add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    from pytest_mlperf.core import shutdown
    from pytest_mlperf.run import devices

    shutdown.install()  # Ctrl-C, SIGTERM, SIGHUP: one path, every report written
    if config.pluginmanager.hasplugin("xdist") and not hasattr(config, "workerinput"):
        config.pluginmanager.register(shutdown.WorkerSignals(), "mlperf-worker-signals")
    devices.pin(config)  # an xdist worker: CUDA_VISIBLE_DEVICES before anything loads an engine
    from pytest_mlperf import backends, fixtures, gating

    config.addinivalue_line("markers", MARKER_HELP)
    # an xdist worker given its own endpoints (--mlperf-endpoints-per-worker) uses only those
    config.stash[stash.OPTIONS] = devices.own_endpoints(config, options.parse(config))
    config.stash[stash.RECORDS] = []
    config.pluginmanager.register(fixtures, "mlperf-fixtures")
    config.pluginmanager.register(backends, "mlperf-backends")
    config.pluginmanager.register(_RecordCollector(config), "mlperf-records")
    from pytest_mlperf.report import hooks as report_hooks

    report_hooks.register(config)  # live progress, status files, HTML, JSON, CI files, submission
    from pytest_mlperf.report import outputs

    outputs.check_writable(config)  # every report's path, before an hour of benchmarks
    gating.register(config)  # thresholds from the command line, stored sessions, comparisons
    devices.register(config)  # under xdist: workers pinned to devices, benchmarks grouped


def pytest_report_header(config: pytest.Config) -> list[str]:
    opts = config.stash[stash.OPTIONS]
    return [
        f"mlperf: scenario={','.join(s.value for s in opts.scenarios)} mode={opts.mode.value} "
        f"profile={opts.profile.value} backend={opts.backend} "
        f"model={opts.model or 'embedded'} dataset={opts.dataset or 'embedded'} output={opts.output}",
        f"mlperf: reproduce with {opts.reproduce_flags()}",
        f"mlperf: {rules_header(opts)}",
    ]


def rules_header(opts: Any) -> str:
    """What the profile does with MLPerf's rules (docs/rules.md)."""
    if opts.profile is Profile.QUICK:
        return ("quick profile: CI-sized runs, each labelled not MLPerf with its reasons "
                "(--mlperf-profile=official to make MLPerf ones)")
    if opts.allow_nonconformant:
        return ("official profile, --mlperf-allow-nonconformant: runs MLPerf's rules forbid are run "
                "and labelled not MLPerf")
    return ("official profile: a run MLPerf's rules forbid (prefix caching, sampling, a subset, "
            "too few performance samples) is refused before its engine starts")


def _spec(marker: pytest.Mark, where: str) -> Any:
    try:
        return spec_from_marker(marker, where)
    except SpecError as exc:
        raise pytest.UsageError(str(exc)) from None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marker = metafunc.definition.get_closest_marker(MARKER)
    if marker is None or "mlperf_scenario" not in metafunc.fixturenames:
        return
    spec = _spec(marker, metafunc.definition.nodeid)
    opts = metafunc.config.stash[stash.OPTIONS]
    params = []
    for scenario in opts.scenarios:
        for mode in opts.mode.runs():
            marks = ()
            if not spec.supports(scenario):
                declared = ", ".join(s.value for s in spec.scenarios)
                marks = (pytest.mark.skip(reason=f"{spec.benchmark} does not run {scenario.value} (declares {declared})"),)
            params.append(pytest.param(scenario, mode, id=f"{scenario.value}-{mode.value}", marks=marks))
    metafunc.parametrize(("mlperf_scenario", "mlperf_mode"), params)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        marker = item.get_closest_marker(MARKER)
        if marker is not None:
            item.stash[stash.SPEC] = _spec(marker, item.nodeid)


def pytest_collection_finish(session: pytest.Session) -> None:
    from pytest_mlperf.run import preflight

    # On the selected tests: scenarios declared, backend known, engine arguments it takes.
    preflight.check_collection(session)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    if stash.SPEC in item.stash:
        from pytest_mlperf.run import preflight

        preflight.raise_deferred(item.config)  # an xdist worker's collection check, before skips


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    result = item.stash.get(stash.RESULT, None)
    if result is None:
        return (yield)
    # The benchmark runs here, in the call phase, before the test body reads its result.
    import time

    started = time.time()
    try:
        result.execute()
    except KeyboardInterrupt as exc:
        from pytest_mlperf.report.interrupted import report_interrupted

        report_interrupted(item, exc, started)  # named in JUnit, HTML, the terminal, its status
        raise
    from pytest_mlperf.gating import after_run

    after_run(item, result)  # repeats, peak search, TEST06 into the record; regression gates
    item.config.hook.pytest_mlperf_result(item=item, record=result.record)
    outcome = yield
    if not result.verdict.passed:
        from pytest_mlperf.report.junit import figures_line

        # every figure in the message: all that GitLab shows of a failed test
        pytest.fail(f"{result.verdict.explain()}\n{figures_line(result.record)}", pytrace=False)
    return outcome


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    result = item.stash.get(stash.RESULT, None)
    if call.when == "call" and result is not None and result.executed:
        # On the item, so every later report (JUnit writes at teardown) carries it; plain
        # JSON crosses xdist, and the controller writes the summaries.
        record.attach(item, result.record)
    return (yield)


def pytest_keyboard_interrupt() -> None:
    from pytest_mlperf.run import engines

    engines.INTERRUPTED.set()  # engines closing now get seconds, not the engine timeout


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    from pytest_mlperf.core import bounded, shutdown
    from pytest_mlperf.run import engines

    shutdown.finishing()  # a signal from here on hurries, never interrupts the reports
    session.config.stash[bounded.EXIT_STATUS] = int(exitstatus)
    pool = session.config.stash.get(engines.POOL, None)
    if pool is not None:
        # Before pytest's own fixture teardown, which would let a close error out of session
        # finish and take every report after it down (an interrupt, -x: no last teardown).
        for error in pool.close(raise_errors=False):
            _say(session.config, f"pytest-mlperf: {error}")


def _say(config: pytest.Config, line: str) -> None:
    terminal = config.pluginmanager.get_plugin("terminalreporter")
    if terminal is not None:
        terminal.write_line(line, yellow=True)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    from pytest_mlperf.core import bounded, shutdown
    from pytest_mlperf.run import engines

    shutdown.uninstall()
    # A loadgen run left going, or after an interrupt an engine left generating: the process
    # ends without the interpreter's own exit (reports are written); 128 + SIGTERM/SIGHUP.
    bounded.exit_if_unsafe(config, interrupted=engines.INTERRUPTED.is_set())


class _RecordCollector:
    """Gathers every benchmark record from the reports, on the controller (xdist or not)."""

    def __init__(self, config: pytest.Config) -> None:
        self._config = config

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call":
            found = record.from_report(report)
            if found is not None:
                self._config.stash[stash.RECORDS].append(found)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        records = self._config.stash[stash.RECORDS]
        if not records:
            return
        from pytest_mlperf.report.terminal import write_summary

        write_summary(terminalreporter, self._config, records)
