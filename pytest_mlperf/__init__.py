"""pytest-mlperf: MLPerf Inference LLM benchmarks as pytest tests.

The package's folders are its layers (docs/architecture.md): ``core`` (plain data), ``data``,
``accuracy`` and ``embedded``, ``backends`` and ``loadgen``, ``gate`` and ``submission``,
``run``, ``live`` and ``report``; the pytest surface (``plugin``, ``options``, ``spec``,
``fixtures``, ``hookspecs``, ``gating``) and the commands (``watch``, ``history``) stand at
the top.

The public names: the backend contract (:class:`Backend`, :class:`Query`, :class:`Responder`,
:class:`SystemSpec`, :class:`GenerationConfig`), the vocabulary (:class:`Scenario`,
:class:`Mode`, :class:`Profile`) and the :class:`BenchmarkRecord`. Importing them loads nothing
heavy.
"""

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings

from pytest_mlperf.backends.base import Backend, GenerationConfig, Query, Responder, SystemSpec
from pytest_mlperf.core.record import BenchmarkRecord
from pytest_mlperf.core.vocabulary import Mode, Profile, Scenario

__version__ = "0.1.0"

__all__ = [
    "Backend",
    "BenchmarkRecord",
    "GenerationConfig",
    "Mode",
    "Profile",
    "Query",
    "Responder",
    "Scenario",
    "SystemSpec",
    "__version__",
]


#: modules that stood at the top of the package before it was grouped into layers (0.1.0):
#: ``import pytest_mlperf.record`` still gives :mod:`pytest_mlperf.core.record`, with a
#: DeprecationWarning naming the new path
MOVED = {
    **{name: f"core.{name}" for name in
       ("vocabulary", "record", "system", "details", "cpu", "bounded", "stash")},
    **{name: f"data.{name}" for name in ("dataset", "modelinfo")},
    **{name: f"run.{name}" for name in
       ("benchmark", "engines", "preflight", "runs", "repeat", "peak", "devices")},
    **{name: f"gate.{name}" for name in ("verdict", "thresholds", "compare", "storage")},
    **{name: f"live.{name}" for name in ("progress", "status")},
    "compliance": "submission.compliance",
    "gating_report": "report.gating",
}


class _MovedModule(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """An old path resolves to the module itself (one module object, one set of StashKeys)."""

    def find_spec(self, fullname, path=None, target=None):  # noqa: ANN001, ANN201
        prefix, _, name = fullname.partition(".")
        if prefix != __name__ or name not in MOVED:
            return None
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec):  # noqa: ANN001, ANN201
        new = f"{__name__}.{MOVED[spec.name.partition('.')[2]]}"
        warnings.warn(f"{spec.name} moved to {new}; import it from there", DeprecationWarning,
                      stacklevel=2)
        return importlib.import_module(new)

    def exec_module(self, module):  # noqa: ANN001, ANN201
        pass  # the module ran under its new name


if not any(isinstance(finder, _MovedModule) for finder in sys.meta_path):
    sys.meta_path.append(_MovedModule())
