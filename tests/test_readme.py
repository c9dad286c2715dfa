"""README's options and marker tables say what ``pytest --help`` and ``pytest --markers`` say."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _table(heading: str) -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(heading)
    rows = []
    for line in text[start:].splitlines():
        if line.startswith("|"):
            rows.append(line)
        elif rows:
            break
    return "\n".join(rows)


def _first_cells(table: str) -> set[str]:
    names: set[str] = set()
    for row in table.splitlines()[2:]:
        names.update(re.findall(r"`([^`]+)`", row.split("|")[1]))
    return names


def _pytest(*args: str) -> str:
    return subprocess.run([sys.executable, "-m", "pytest", *args], capture_output=True, text=True,
                          check=True, cwd=README.parent).stdout


def test_options_table_matches_pytest_help() -> None:
    documented = _first_cells(_table("## Options"))
    offered = set(re.findall(r"(--mlperf-[a-z-]+)=", _pytest("--help")))
    assert documented == offered


def test_marker_table_matches_pytest_markers() -> None:
    documented = _first_cells(_table("| marker argument |"))
    line = next(x for x in _pytest("--markers").splitlines() if x.startswith("@pytest.mark.mlperf("))
    offered = set(re.findall(r"[(,] ?([a-z_]+)", line.split(":")[0]))
    assert documented == offered
