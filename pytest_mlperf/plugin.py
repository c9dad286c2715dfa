"""pytest-mlperf: MLPerf Inference LLM benchmarks as pytest tests.

This module holds pytest hooks only; the machinery loads lazily (no torch, vLLM or
transformers at plugin import, so ``pytest --help`` stays instant).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from pytest_mlperf import hookspecs, options, stash
from pytest_mlperf.fixtures import (  # noqa: F401 - fixtures are registered by import
    mlperf_baseline,
    mlperf_dataset,
    mlperf_engines,
    mlperf_generation,
    mlperf_mode,
    mlperf_model,
    mlperf_options,
    mlperf_qsl,
    mlperf_result,
    mlperf_run_dir,
    mlperf_runner,
    mlperf_scenario,
    mlperf_settings,
    mlperf_spec,
    mlperf_sut,
    mlperf_tokenizer,
)
from pytest_mlperf.loadgen.settings import Scenario
from pytest_mlperf.spec import MARKER, MARKER_HELP, SpecError, spec_from_marker

RECORD_PROPERTY = "mlperf"


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    options.add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_HELP)
    config.stash[stash.OPTIONS] = options.parse(config)
    config.stash[stash.RECORDS] = []
    config.pluginmanager.register(_RecordCollector(config), "mlperf-records")
    if config.pluginmanager.hasplugin("html"):
        from pytest_mlperf.report import html

        config.pluginmanager.register(html.HtmlReport(), "mlperf-html")


@pytest.hookimpl(trylast=True)
def pytest_mlperf_backend_class(name: str, scenario: Scenario) -> Any:
    from pytest_mlperf import backends

    try:
        return backends.resolve(name, scenario)
    except backends.UnknownBackend as exc:
        raise pytest.UsageError(str(exc)) from None


def pytest_report_header(config: pytest.Config) -> list[str]:
    opts = config.stash[stash.OPTIONS]
    return [
        f"mlperf: scenario={','.join(s.value for s in opts.scenarios)} mode={opts.mode.value} "
        f"profile={opts.profile.value} backend={opts.backend} "
        f"model={opts.model or 'embedded'} dataset={opts.dataset or 'embedded'} output={opts.output}",
        f"mlperf: reproduce with {opts.reproduce_flags()}",
    ]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marker = metafunc.definition.get_closest_marker(MARKER)
    if marker is None or "mlperf_scenario" not in metafunc.fixturenames:
        return
    try:
        spec = spec_from_marker(marker, metafunc.definition.nodeid)
    except SpecError as exc:
        raise pytest.UsageError(str(exc)) from None
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
            try:
                item.stash[stash.SPEC] = spec_from_marker(marker, item.nodeid)
            except SpecError as exc:
                raise pytest.UsageError(str(exc)) from None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    outcome = yield
    result = item.stash.get(stash.RESULT, None)
    if result is not None and not result.verdict.passed:
        pytest.fail(result.verdict.explain(), pytrace=False)
    return outcome


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    result = item.stash.get(stash.RESULT, None)
    if result is not None and call.when == "call":
        # On the item, so every later report (JUnit writes at teardown) carries them; plain
        # data crosses xdist, and the controller writes the summaries.
        item.user_properties.append((RECORD_PROPERTY, json.dumps(result.record)))
        for key, value in flat_properties(result.record).items():
            item.user_properties.append((f"mlperf.{key}", value))
    return (yield)


def flat_properties(record: dict[str, Any]) -> dict[str, Any]:
    run = record["run"]
    props: dict[str, Any] = {"verdict": "passed" if record["verdict"]["passed"] else "failed",
                             "logs": run["outdir"], "profile": record["profile"]}
    if run["validity"] is not None:
        props["validity"] = run["validity"]
    for name, value in run["figures"].items():
        props[name] = value
    for name, value in record.get("accuracy", {}).items():
        props[name] = value
    return props


class _RecordCollector:
    """Gathers every benchmark record from the reports, on the controller (xdist or not)."""

    def __init__(self, config: pytest.Config) -> None:
        self._config = config

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "call":
            return
        for name, value in report.user_properties:
            if name == RECORD_PROPERTY:
                record = json.loads(value)
                record["nodeid"] = report.nodeid
                self._config.stash[stash.RECORDS].append(record)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        records = self._config.stash[stash.RECORDS]
        if not records:
            return
        from pytest_mlperf.report.terminal import summary_lines

        terminalreporter.section("MLPerf results")
        for line in summary_lines(records):
            terminalreporter.write_line(line)
