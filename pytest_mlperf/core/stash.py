"""StashKeys: the plugin's state lives in ``config.stash`` / ``item.stash``, nowhere else."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from pytest_mlperf.core.place import Place
from pytest_mlperf.core.record import BenchmarkRecord

if TYPE_CHECKING:  # the types of what the surface puts here; nothing of it is imported
    pass

OPTIONS = pytest.StashKey["MlperfOptions"]()
SPEC = pytest.StashKey["BenchmarkSpec"]()
#: this item's benchmark (made at setup, run at the start of the call phase)
RESULT = pytest.StashKey["BenchmarkResult"]()
#: records gathered from reports on the controller (xdist or not), for summaries and files
RECORDS = pytest.StashKey[list[BenchmarkRecord]]()


# -- where a run stands, and its engine's start (live progress; core/place.py) -----------------
#: the item's place in the session, updated before each of its loadgen runs
PLACE = pytest.StashKey[Place]()
#: called with the item when its engine starts loading (the live layer puts its status-file
#: writer here, so the run layer tells without importing it)
ON_ENGINE_START = pytest.StashKey[Callable[[pytest.Item], None]]()


def update_place(item: pytest.Item, **changes: Any) -> None:
    item.stash[PLACE] = dataclasses.replace(item.stash.get(PLACE, Place()), **changes)


def engine_starting(item: pytest.Item) -> None:
    callback = item.config.stash.get(ON_ENGINE_START, None)
    if callback is not None:
        try:
            callback(item)
        except OSError:
            pass  # a monitor's file must never fail the benchmark
