import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

pytest_plugins = ["pytester"]


@pytest.fixture(autouse=True, scope="session")
def _import_numpy_and_matplotlib_once() -> None:
    """pytester's in-process runs drop the modules they imported when they end; numpy and
    matplotlib break when imported a second time in one process (their compiled parts keep the
    first import's objects: "The NumPy module was reloaded"). Imported by the test process
    before any run (not at conftest import: `pytest --help` must stay light), they outlive them."""
    with contextlib.suppress(ImportError):
        import matplotlib.backends.backend_agg  # noqa: F401
        import numpy  # noqa: F401


@pytest.fixture
def started() -> Iterator[list[Any]]:
    """Backends a test starts (the openai backend's tests), closed after it whatever happened."""
    backends: list[Any] = []
    yield backends
    for backend in backends:
        backend.close()
