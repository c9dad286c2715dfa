"""The figures in JUnit XML, valid under both ``junit_family`` values pytest offers.

``xunit1`` (and ``legacy``) allows ``<properties>`` inside a ``<testcase>``: the record's flat
figures ride there as ``mlperf.<figure>`` properties, with the whole record in
``mlperf.record`` (:func:`pytest_mlperf.core.record.attach`). ``xunit2``, pytest's default,
does not (its schema allows properties on the test suite only): there the ``mlperf.*``
properties are left out of the test case and its figures go into the case's ``system-out`` as a
short block, the one place of a test case that xunit2, Jenkins and GitLab all accept. A failing
benchmark also carries every figure in its failure message (:func:`figures_line`), which is what
GitLab shows of a failed test.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import pytest
from _pytest.junitxml import xml_key  # pytest's own LogXML instance: the only way to its family

from pytest_mlperf.core.record import PROPERTY, BenchmarkRecord, flat_properties, from_report

#: The first line of the ``system-out`` block (xunit2), so a reader can find it among other output.
HEADER = "mlperf figures:"


def _format(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def figures_block(record: BenchmarkRecord) -> str:
    """One ``name = value`` line per figure, under :data:`HEADER`."""
    props = flat_properties(record)
    width = max(len(name) for name in props)
    return "\n".join([HEADER, *(f"  {name:<{width}} = {_format(v)}" for name, v in props.items())])


def figures_line(record: BenchmarkRecord) -> str:
    """Every figure of ``record`` on one line, for a failure message."""
    return "figures: " + ", ".join(f"{name}={_format(v)}" for name, v in flat_properties(record).items())


def junit_family(config: pytest.Config) -> str | None:
    """The family the JUnit file is written in, or None when no ``--junitxml`` is written."""
    xml = config.stash.get(xml_key, None)
    return None if xml is None else str(xml.family)


class JunitFigures:
    """On the controller, with ``--junitxml`` in the ``xunit2`` family: each benchmark's figures
    into its test case's ``system-out``, its ``mlperf.*`` properties kept out of the file."""

    def __init__(self, config: pytest.Config) -> None:
        self._config = config

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> Any:
        # pytest writes a test case's properties at its teardown report, from that report's
        # user_properties; every reader of the record reads the call report, untouched here.
        if report.when != "teardown" or junit_family(self._config) != "xunit2":
            return (yield)
        ours = [(n, v) for n, v in report.user_properties if n == PROPERTY or str(n).startswith("mlperf.")]
        if not ours:
            return (yield)
        record = from_report(report)
        if record is not None:
            out = ET.Element("system-out")
            out.text = figures_block(record)
            self._config.stash[xml_key].node_reporter(report).append(out)
        # a failed call whose teardown fails too is written from the call's report, here
        reports = [report, *(r for r in getattr(self._config.stash[xml_key], "open_reports", [])
                             if r.nodeid == report.nodeid)]
        kept = [r.user_properties for r in reports]
        for r in reports:
            r.user_properties = [p for p in r.user_properties if p not in ours]
        try:
            return (yield)
        finally:
            for r, props in zip(reports, kept, strict=True):
                r.user_properties = props


def register(config: pytest.Config) -> None:
    if getattr(config.option, "xmlpath", None):
        config.pluginmanager.register(JunitFigures(config), "mlperf-junit")
