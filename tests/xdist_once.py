"""A module fixture's expensive session, made once per test run even under xdist: the first
worker to ask makes it (under a file lock) in the folder every worker of the run shares; the
others wait and read what it wrote."""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


def once(factory: pytest.TempPathFactory, name: str, make: Callable[[Path], dict[str, Any]]) -> dict[str, Any]:
    """``make(folder)`` once per run; its JSON-able result for every caller."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker is None:
        return make(factory.mktemp(name))
    shared = factory.getbasetemp().parent  # popen-gw0, popen-gw1, ... share their parent
    folder, result = shared / name, shared / f"{name}.json"
    with open(shared / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not result.is_file():
            folder.mkdir(exist_ok=True)
            result.write_text(json.dumps(make(folder), default=str))
    return json.loads(result.read_text())
