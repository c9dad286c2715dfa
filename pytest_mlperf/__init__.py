"""pytest-mlperf: MLPerf Inference LLM benchmarks as pytest tests.

The public names: the backend contract (:class:`Backend`, :class:`Query`, :class:`Responder`,
:class:`SystemSpec`, :class:`GenerationConfig`), the vocabulary (:class:`Scenario`,
:class:`Mode`, :class:`Profile`) and the :class:`BenchmarkRecord`. Importing them loads nothing
heavy.
"""

from pytest_mlperf.backends.base import Backend, GenerationConfig, Query, Responder, SystemSpec
from pytest_mlperf.record import BenchmarkRecord
from pytest_mlperf.vocabulary import Mode, Profile, Scenario

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
