"""Hooks pytest-mlperf publishes. Implement them in a conftest.py or a plugin."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from pytest_mlperf.backends.base import Backend
    from pytest_mlperf.loadgen.settings import Scenario


@pytest.hookspec(firstresult=True)
def pytest_mlperf_backend_class(name: str, scenario: Scenario) -> type[Backend] | None:
    """Return the Backend class that ``--mlperf-backend=name`` means in ``scenario``.

    The plugin's own implementation (``trylast``) knows ``hf`` and ``vllm`` and the
    ``pytest_mlperf.backends`` entry-point group; return a class to add or replace one.
    """


@pytest.hookspec()
def pytest_mlperf_result(item: pytest.Item, result: dict[str, Any]) -> None:
    """Called on the worker with each benchmark's JSON-able result, before its verdict fails
    or passes the test. ``result`` is what lands in the report (``user_properties``)."""
