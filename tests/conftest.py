import contextlib

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
