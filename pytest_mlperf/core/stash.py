"""StashKeys: the plugin's state lives in ``config.stash`` / ``item.stash``, nowhere else."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from pytest_mlperf.core.record import BenchmarkRecord

if TYPE_CHECKING:  # the types of what the surface puts here; nothing of it is imported
    pass

OPTIONS = pytest.StashKey["MlperfOptions"]()
SPEC = pytest.StashKey["BenchmarkSpec"]()
#: this item's benchmark (made at setup, run at the start of the call phase)
RESULT = pytest.StashKey["BenchmarkResult"]()
#: records gathered from reports on the controller (xdist or not), for summaries and files
RECORDS = pytest.StashKey[list[BenchmarkRecord]]()
