"""Hooks pytest-mlperf publishes. Implement them in a conftest.py or a plugin."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from pytest_mlperf.backends.base import Backend, GenerationConfig, SystemSpec
    from pytest_mlperf.core.record import BenchmarkRecord
    from pytest_mlperf.core.vocabulary import Scenario


@pytest.hookspec(firstresult=True)
def pytest_mlperf_make_backend(
    config: pytest.Config, name: str, scenario: Scenario, system: SystemSpec,
    engine_args: Mapping[str, Any], generation: GenerationConfig, tokenizer: Any,
) -> Backend | None:
    """Make the (unstarted) backend ``--mlperf-backend=name`` means, or return None.

    Called once per session for each (name, system, engine arguments); the backend then
    serves every scenario (``scenario`` is the first test's; later runs call
    ``Backend.prepare(scenario)``). ``system`` is a local model folder or a served model with
    its endpoint URLs; ``engine_args`` are the marker's under the command line's;
    ``tokenizer`` is the session's (None when the system names none). The built-in backends
    answer ``trylast``, so an implementation in a conftest or plugin adds or replaces one.
    """


@pytest.hookspec()
def pytest_mlperf_backend_names(config: pytest.Config) -> Iterable[str]:
    """Backend names this plugin provides, listed when ``--mlperf-backend`` names none of them."""


@pytest.hookspec()
def pytest_mlperf_result(item: pytest.Item, record: BenchmarkRecord) -> None:
    """Called on the process that ran the benchmark, with its record, before its verdict
    fails or passes the test. The same record reaches the controller in the test report
    (``pytest_mlperf.core.record.from_report``)."""
