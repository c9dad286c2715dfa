"""Where a benchmark run stands in its session: test k of N, repeat i of n, find-peak run j
at its target QPS, TEST06's audit run. Set on the item by the collection hook (k of N) and by
the run layer before each loadgen run (under :data:`pytest_mlperf.core.stash.PLACE`); the live
layer copies it into the run's status file, so the terminal line, the CI log lines and ``watch``
can say it. Plain data: imports nothing (``watch`` reads it without pytest)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Place:
    test: int | None = None  #: k of ``tests``, 1-based, among the session's benchmark tests
    tests: int | None = None
    repeat: int | None = None  #: i of ``repeats`` (--mlperf-repeat), 1-based
    repeats: int | None = None
    peak_run: int | None = None  #: j, 1-based, of a --mlperf-find-peak search
    target_qps: float | None = None
    audit: str | None = None  #: "TEST06" during the compliance audit run

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> Place:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in (data or {}).items() if k in names})


def words(place: Mapping[str, Any] | None) -> list[str]:
    """``["test 3 of 8", "repeat 2 of 3", "find-peak run 4 @ 12.5 qps", "TEST06 audit"]``,
    from a place as its JSON (what a status file holds)."""
    p = Place.from_json(place)
    out = []
    if p.test and p.tests and p.tests > 1:
        out.append(f"test {p.test} of {p.tests}")
    if p.repeat and p.repeats and p.repeats > 1:
        out.append(f"repeat {p.repeat} of {p.repeats}")
    if p.peak_run:
        qps = f" @ {p.target_qps:g} qps" if p.target_qps is not None else ""
        out.append(f"find-peak run {p.peak_run}{qps}")
    if p.audit:
        out.append(f"{p.audit} audit")
    return out
