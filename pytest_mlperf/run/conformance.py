"""Is this run an MLPerf one: classified before it starts (:func:`classify`), from the rules of
its benchmark (:mod:`pytest_mlperf.gate.rules`), the effective loadgen settings, the data set,
the generation config and what the backend knows of its engine; refused there under
``--mlperf-profile=official`` when it breaks a rule that profile does not run
(:data:`~pytest_mlperf.gate.rules.REFUSED_BY_OFFICIAL`), unless
``--mlperf-allow-nonconformant``. What the run itself shows (a served engine's prefix-cache hits)
is added after it (:func:`with_reason`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import pytest

from pytest_mlperf.core.record import Conformance
from pytest_mlperf.core.vocabulary import Mode, Profile, Scenario
from pytest_mlperf.gate.rules import REFUSED_BY_OFFICIAL, Breach, RunFacts, check_run

ALLOW_FLAG = "--mlperf-allow-nonconformant (ini mlperf_allow_nonconformant)"


def classify(request: pytest.FixtureRequest, scenario: Scenario, mode: Mode,
             settings: Mapping[str, Any], sut: Any) -> Conformance:
    """The run's conformance before it starts; under the official profile a run that breaks a
    rule it refuses ends the session here, naming the rules and the flag that allows it."""
    get = request.getfixturevalue
    options = get("mlperf_options")
    dataset = get("mlperf_dataset")
    generation = get("mlperf_generation")
    facts = dict(sut.rule_facts()) if hasattr(sut, "rule_facts") else {}
    run = RunFacts(
        benchmark=get("mlperf_spec").benchmark, scenario=scenario, mode=mode, settings=settings,
        samples=len(dataset), dataset_sha256=dataset.sha256,
        max_new_tokens=generation.max_new_tokens, min_new_tokens=generation.min_new_tokens,
        request_fields=facts.get("request_fields"), prefix_caching=facts.get("prefix_caching"),
        compliance=tuple(options.compliance),
    )
    breaches = check_run(run)
    refused = [b for b in breaches if b.rule in REFUSED_BY_OFFICIAL]
    if options.profile is Profile.OFFICIAL and refused and not options.allow_nonconformant:
        from pytest_mlperf.run.preflight import refuse

        refuse(request.config, refusal(run, refused))
    return conformance(breaches, options.profile)


def conformance(breaches: list[Breach], profile: Profile) -> Conformance:
    reasons = [b.message for b in breaches]
    if reasons and profile is Profile.QUICK:
        reasons.append("quick profile (CI-sized runs)")
    return Conformance(mlperf=not reasons, reasons=tuple(reasons), checked=True)


def refusal(run: RunFacts, refused: list[Breach]) -> str:
    return (f"--mlperf-profile=official: {run.benchmark} {run.scenario.value} {run.mode.value} "
            f"breaks MLPerf's rules, so it was not started: "
            + "; ".join(b.message for b in refused)
            + f". Fix that, or pass {ALLOW_FLAG} to run it labelled not MLPerf")


def with_reason(value: Conformance, reason: str) -> Conformance:
    """``value`` with one more reason the run is not an MLPerf one, first: what the run showed
    outweighs a label the table may cut."""
    return dataclasses.replace(value, mlperf=False, reasons=(reason, *value.reasons), checked=True)


def cache_hits(sut: Any) -> dict[str, float | None]:
    """The system's cross-query cache counters now (empty when it has none to read)."""
    read = getattr(sut, "prefix_cache_hits", None)
    try:
        return dict(read()) if read is not None else {}
    except Exception:  # noqa: BLE001 - unreadable metrics leave caching unknown, the run stands
        return {}


def after_run(value: Conformance, before: Mapping[str, float | None], after: Mapping[str, float | None],
              options: Any) -> tuple[Conformance, list[str]]:
    """The conformance once the run showed its cache counters, and the reasons to fail it:
    prefix-cache hits at a server during the run make it not MLPerf, and fail it under the
    official profile (unless ``--mlperf-allow-nonconformant``)."""
    fail = []
    for url, end in after.items():
        start = before.get(url)
        if end is None or start is None or end <= start:
            continue
        reason = (f"prefix caching at {url}: {end - start:,.0f} prompt tokens served from its cache "
                  "during the run (MLPerf forbids caching across queries: start the server with "
                  "--no-enable-prefix-caching)")
        value = with_reason(value, reason)
        if options.profile is Profile.OFFICIAL and not options.allow_nonconformant:
            fail.append(f"{reason}; {ALLOW_FLAG} runs it labelled not MLPerf")
    return value, fail
