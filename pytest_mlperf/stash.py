"""StashKeys: the plugin's state lives in ``config.stash`` / ``item.stash``, nowhere else."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_mlperf.options import MlperfOptions
from pytest_mlperf.spec import BenchmarkSpec

OPTIONS = pytest.StashKey[MlperfOptions]()
SPEC = pytest.StashKey[BenchmarkSpec]()
#: the fixtures' BenchmarkResult for an item
RESULT = pytest.StashKey[Any]()
#: records gathered from reports on the controller, for the terminal summary
RECORDS = pytest.StashKey[list[dict[str, Any]]]()
