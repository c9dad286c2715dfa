"""The package's folders are layers (docs/architecture.md): a lower layer never imports a higher
one, and no modules import each other in a circle. Read with ``ast`` from the source tree."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.layers import LAYERS, PACKAGE, cycles, is_program, modules, upward

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / PACKAGE


def test_no_module_imports_a_higher_layer() -> None:
    assert upward(SOURCE) == []


def test_no_modules_import_each_other_in_a_circle() -> None:
    assert cycles(SOURCE) == []


@pytest.fixture
def planted(tmp_path: Path) -> Path:
    """A copy of the package to plant bad imports in."""
    copy = tmp_path / PACKAGE
    shutil.copytree(SOURCE, copy, ignore=shutil.ignore_patterns("__pycache__", "model", "data"))
    shutil.copytree(SOURCE / "data", copy / "data", ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def _plant(path: Path, line: str, *, lazy: bool = False) -> None:
    text = path.read_text(encoding="utf-8")
    if lazy:
        text += f"\n\ndef _planted() -> None:\n    {line}\n"
    else:
        text += f"\n{line}\n"
    path.write_text(text, encoding="utf-8")


@pytest.mark.parametrize(("module", "line", "lazy"), [
    ("core/record.py", "from pytest_mlperf.gate import verdict", False),
    ("backends/hf.py", "from pytest_mlperf.run.engines import EnginePool", True),
    ("gate/compare.py", "import pytest_mlperf.options", True),
    ("loadgen/sut.py", "from pytest_mlperf.report import terminal", False),
    ("data/dataset.py", "from pytest_mlperf import plugin", True),
    ("backends/base.py", "from pytest_mlperf.loadgen import runner", True),
])
def test_a_planted_upward_import_is_found(planted: Path, module: str, line: str, lazy: bool) -> None:
    _plant(planted / module, line, lazy=lazy)
    problems = upward(planted)
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{PACKAGE}.{module[:-3].replace('/', '.')}:")


def test_a_type_only_import_is_not_a_dependency(planted: Path) -> None:
    _plant(planted / "core/record.py",
           "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pytest_mlperf.options import MlperfOptions")
    assert upward(planted) == []


def test_a_planted_circle_is_found(planted: Path) -> None:
    _plant(planted / "core/cpu.py", "from pytest_mlperf.core import system", lazy=True)
    assert [f"{PACKAGE}.core.cpu", f"{PACKAGE}.core.system"] in cycles(planted)


def test_every_layer_folder_says_what_it_owns_and_may_import() -> None:
    for folder in LAYERS:
        init = SOURCE / folder / "__init__.py"
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert doc and "import" in doc, f"{init}: a docstring that says what it owns and may import"


def test_the_top_of_the_package_is_the_surface_only() -> None:
    top = sorted(p.stem for p in SOURCE.glob("*.py"))
    assert top == ["__init__", "fixtures", "gating", "history", "hookspecs", "options", "plugin", "spec",
                   "watch"]
    folders = sorted(p.name for p in SOURCE.iterdir() if (p / "__init__.py").exists())
    assert folders == sorted(LAYERS)


def test_scripts_use_public_names_only() -> None:
    known = set(modules(SOURCE))
    problems = []
    for script in sorted((ROOT / "scripts").rglob("*.py")):
        for node in ast.walk(ast.parse(script.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(PACKAGE):
                path = node.module.split(".")
                names = [a.name for a in node.names]
            elif isinstance(node, ast.Import):
                path, names = [], [a.name for a in node.names if a.name.startswith(PACKAGE)]
            else:
                continue
            for name in names:
                full = ".".join([*path, name]) if path else name
                private = [part for part in full.split(".") if part.startswith("_")]
                if private:
                    problems.append(f"{script.relative_to(ROOT)}:{node.lineno} imports a private name {full}")
                module = node.module if path else name
                if module not in known:
                    problems.append(f"{script.relative_to(ROOT)}:{node.lineno}: {module} is no module "
                                    "of the package (an old path?)")
    assert problems == []


def test_old_paths_still_import_the_moved_modules() -> None:
    code = ("import warnings, pytest_mlperf.core.record as new\n"
            "with warnings.catch_warnings(record=True) as w:\n"
            "    warnings.simplefilter('always')\n"
            "    import pytest_mlperf.record as old\n"
            "    from pytest_mlperf.stash import OPTIONS\n"
            "    from pytest_mlperf.core.stash import OPTIONS as NEW\n"
            "assert old is new and OPTIONS is NEW\n"
            "print(w[0].message)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert "pytest_mlperf.record moved to pytest_mlperf.core.record" in done.stdout


def test_programs_are_known() -> None:
    programs = {name for name, path in modules(SOURCE).items()
                if is_program(name, ast.parse(path.read_text(encoding="utf-8")))}
    assert {f"{PACKAGE}.watch", f"{PACKAGE}.accuracy.__main__"} <= programs
