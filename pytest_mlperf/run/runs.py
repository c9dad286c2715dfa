"""The loadgen runs one benchmark test makes, and the one it reports.

A test makes one run, unless (performance tests only):

- ``--mlperf-find-peak`` (Server, Interactive): a search over target QPS (:mod:`.peak`); the
  test reports the peak run;
- ``--mlperf-repeat N``: N runs, reported as their medians (:mod:`.repeat`); with a peak
  search, each probe is N runs;
- ``--mlperf-compliance=TEST06``: after them, the audit run and its checks
  (:mod:`.compliance`); a miss fails the test.

:func:`perform` is what the benchmark calls instead of the runner; what it found beyond the
reported run (every repeat, the search, the compliance results, reasons to fail) waits in the
item's stash (:data:`EXTRAS`) for the plugin to add to the record and the verdict.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from pytest_mlperf.core import stash
from pytest_mlperf.core.record import Attempt, Compliance, PeakSearch
from pytest_mlperf.core.vocabulary import Mode, Scenario

#: scenarios whose rate is a target QPS a search can move
PEAK_SCENARIOS = (Scenario.SERVER, Scenario.INTERACTIVE)


@dataclass
class RunExtras:
    repeats: tuple[Attempt, ...] = ()
    peak: PeakSearch | None = None
    compliance: tuple[Compliance, ...] = ()
    #: reasons the test fails beyond its run's own verdict
    reasons: list[str] = field(default_factory=list)
    #: the same measurement once more (``--mlperf-compare-confirm``): (reported run, every run)
    rerun: Callable[[], tuple[Any, tuple[Any, ...]]] | None = None

    def record_fields(self) -> dict[str, Any]:
        return {"repeats": self.repeats, "peak": self.peak, "compliance": self.compliance}


EXTRAS = pytest.StashKey[RunExtras]()


def _call(runner: Callable[..., Any], mode: Mode, overrides: Mapping[str, Any] | None = None,
          label: str | None = None) -> Any:
    if not overrides and label is None:
        return runner(mode)
    try:
        return runner(mode, overrides=overrides, label=label)
    except TypeError as exc:
        if "overrides" not in str(exc) and "label" not in str(exc):
            raise
        raise pytest.UsageError(
            "mlperf_runner (overridden in a conftest?) must accept run(mode, overrides=None, "
            "label=None) for --mlperf-find-peak and --mlperf-compliance"
        ) from None


def perform(request: pytest.FixtureRequest, runner: Callable[..., Any], scenario: Scenario,
            mode: Mode) -> Any:
    """Make this test's run(s); return the RunResult it reports."""
    options = request.getfixturevalue("mlperf_options")
    extras = RunExtras()
    request.node.stash[EXTRAS] = extras
    if mode is not Mode.PERFORMANCE:
        return runner(mode)

    item = request.node

    def measured(overrides: Mapping[str, Any] | None = None) -> tuple[Any, tuple[Any, ...]]:
        if options.repeat <= 1:
            run = _call(runner, mode, overrides)
            return run, ()
        from pytest_mlperf.run.repeat import repeated

        count = iter(range(1, options.repeat + 1))

        def once() -> Any:  # the live line and watch say which repeat this is
            stash.update_place(item, repeat=next(count), repeats=options.repeat)
            return _call(runner, mode, overrides)

        return repeated(once, options.repeat)

    if options.find_peak is not None and scenario in PEAK_SCENARIOS:
        from pytest_mlperf.run import peak

        start = request.getfixturevalue("mlperf_settings").build(mode).server_target_qps
        probes = itertools.count(1)

        def run_at(qps: float) -> Any:
            stash.update_place(item, peak_run=next(probes), target_qps=qps)
            return measured({"server_target_qps": qps})[0]

        try:
            run, extras.peak = peak.search(run_at, start, options.find_peak)
        except ValueError as exc:
            pytest.fail(f"--mlperf-find-peak: {exc}", pytrace=False)
    else:
        run, runs = measured()
        extras.rerun = measured
        if runs:
            from pytest_mlperf.run.peak import attempt

            extras.repeats = tuple(
                attempt(r, r.settings.get("target_qps") if scenario in PEAK_SCENARIOS else None)
                for r in runs)

    for _test in options.compliance:  # TEST06 is the only one
        if run.backend_error:
            break  # the engine already failed; its run says so
        extras.compliance += (_test06(request, runner, scenario, mode, extras.peak),)
        if not extras.compliance[-1].passed:
            from pytest_mlperf.submission.compliance import explain

            extras.reasons.append(explain(extras.compliance[-1]))
    return run


def _test06(request: pytest.FixtureRequest, runner: Callable[..., Any], scenario: Scenario,
            mode: Mode, search: PeakSearch | None) -> Compliance:
    from pytest_mlperf.submission import compliance

    overrides = dict(compliance.AUDIT_SETTINGS)
    if search is not None and search.peak_qps is not None:
        overrides["server_target_qps"] = search.peak_qps
    stash.update_place(request.node, audit=compliance.TEST06, repeat=None, repeats=None, peak_run=None,
                 target_qps=overrides.get("server_target_qps"))
    audit = _call(runner, mode, overrides, label=compliance.TEST06)
    spec = request.getfixturevalue("mlperf_spec")
    generation = request.getfixturevalue("mlperf_generation")
    try:
        tokenizer = request.getfixturevalue("mlperf_tokenizer")
    except pytest.fail.Exception:
        tokenizer = None  # a served model named no tokenizer: the official EOS ids only
    system = request.getfixturevalue("mlperf_model")
    eos = compliance.eos_ids(spec.benchmark, generation.eos_token_ids, tokenizer, system.path)
    return compliance.verify_test06(audit, streaming=scenario.streaming, eos=eos)
