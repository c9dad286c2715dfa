"""The built-in backends, registered as any third-party backend is: through the
``pytest_mlperf_make_backend`` hook (this module is a plugin the plugin registers, ``trylast``,
so a conftest or plugin answering for the same name wins) or the ``pytest_mlperf.backends``
entry-point group (name -> Backend subclass). Nothing heavy is imported until a backend is
made.

Layer 2: the contract (:mod:`.base`) and the engines behind it (:mod:`.hf`,
:mod:`.vllm_backend`, :mod:`.openai`). Beside ``loadgen/``; may import ``core`` and
``data``, never loadgen or anything higher: the SUT bridge in ``loadgen`` calls backends, not the
other way round."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import Any

import pytest

from pytest_mlperf.backends.base import Backend, GenerationConfig, SystemSpec
from pytest_mlperf.core.vocabulary import Scenario

#: name -> "module:Class"
BUILTIN: Mapping[str, str] = {
    "hf": "pytest_mlperf.backends.hf:HFBackend",
    "vllm": "pytest_mlperf.backends.vllm_backend:VllmBackend",
    "openai": "pytest_mlperf.backends.openai:OpenAIBackend",
}
ENTRY_POINT_GROUP = "pytest_mlperf.backends"


class UnknownBackend(LookupError):
    pass


def backend_class(name: str) -> type[Backend] | None:
    """The class a built-in name or an entry point names (imported now), else None."""
    if name in BUILTIN:
        module, _, cls = BUILTIN[name].partition(":")
        return getattr(importlib.import_module(module), cls)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            cls = ep.load()
            if not (isinstance(cls, type) and issubclass(cls, Backend)):
                raise UnknownBackend(
                    f"entry point {ep.value!r} for backend '{name}' is not a "
                    "pytest_mlperf.Backend subclass"
                )
            return cls
    return None


@pytest.hookimpl(trylast=True)
def pytest_mlperf_make_backend(
    config: pytest.Config, name: str, scenario: Scenario, system: SystemSpec,
    engine_args: Mapping[str, Any], generation: GenerationConfig, tokenizer: Any,
) -> Backend | None:
    cls = backend_class(name)
    if cls is None:
        return None
    from_config = getattr(cls, "from_config", None)  # a backend with options of its own
    if from_config is not None:
        return from_config(config, system, engine_args, generation, tokenizer)
    return cls(system, engine_args, generation, tokenizer)


@pytest.hookimpl(trylast=True)
def pytest_mlperf_backend_names(config: pytest.Config) -> list[str]:
    return [*BUILTIN, *(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))]
