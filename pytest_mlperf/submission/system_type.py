"""Which system type each benchmark is submitted under, and the scenarios each requires, as
MLCommons' submission checker (v6.1) reads them: a datacenter benchmark in a ``datacenter``
system, an edge benchmark in an ``edge`` one, both in ``datacenter,edge``. The system type is
the ``system_type`` field of the system description file.

The sets come from the rules (:mod:`pytest_mlperf.gate.rules`: ``REQUIRED_SCENARIOS``,
``system_type_of``); this module says them as the checker words them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pytest_mlperf.gate.rules import DATACENTER, EDGE, system_type_of

#: the ``system_type`` values the checker takes, as the types they stand for
SYSTEM_TYPES: Mapping[str, frozenset[str]] = {
    "datacenter": frozenset({DATACENTER}),
    "edge": frozenset({EDGE}),
    "datacenter,edge": frozenset({DATACENTER, EDGE}),
    "edge,datacenter": frozenset({DATACENTER, EDGE}),
}


@dataclass(frozen=True)
class ScenarioSet:
    system_type: str
    #: every one of these
    required: tuple[str, ...]
    #: at least one of these (the checker: "(one of) Interactive or Server")
    one_of: tuple[str, ...] = ()


def scenario_set(benchmark: str) -> ScenarioSet | None:
    """The system type and scenarios the rules require of ``benchmark`` (None: unknown)."""
    from pytest_mlperf.gate.rules import REQUIRED_SCENARIOS

    system_type = system_type_of(benchmark)
    if system_type is None:
        return None
    groups = REQUIRED_SCENARIOS[system_type]
    return ScenarioSet(system_type, tuple(g[0].value for g in groups if len(g) == 1),
                       tuple(sorted(s.value for g in groups if len(g) > 1 for s in g)))


def system_types(desc: Mapping[str, Any]) -> frozenset[str] | None:
    """The types a description's ``system_type`` stands for, or None when it is no valid one."""
    value = desc.get("system_type")
    return SYSTEM_TYPES.get(str(value).replace(" ", "").lower()) if isinstance(value, str) else None


def misplaced(benchmarks: Iterable[str], types: frozenset[str]) -> dict[str, str]:
    """The benchmarks a system of ``types`` cannot hold -> their own system type."""
    return {b: t for b in dict.fromkeys(benchmarks) if (t := system_type_of(b)) is not None and t not in types}


def missing_scenarios(benchmark: str, present: Iterable[str]) -> list[str]:
    """What the checker names as missing for ``benchmark`` with results for ``present``."""
    found = scenario_set(benchmark)
    if found is None:
        return []
    have = {s.lower() for s in present}
    missing = [s for s in found.required if s.lower() not in have]
    if found.one_of and not have & {s.lower() for s in found.one_of}:
        missing.append(f"(one of) {' or '.join(found.one_of)}")
    return missing


def explain_misplaced(path: Any, value: str, wrong: Mapping[str, str]) -> str:
    named = ", ".join(f"{b} ({'an' if t[0] in 'aeiou' else 'a'} {t} benchmark)" for b, t in wrong.items())
    return (f"{path}: system_type {value!r} cannot hold {named}: MLCommons' checker takes each "
            "benchmark only under a system of its type. Submit both in one system with "
            "\"system_type\": \"datacenter,edge\", or select only the benchmarks of this type "
            f"(deselect {', '.join(wrong)}, e.g. with -k or by naming the benchmark files)")
