"""Built-in backends, resolved by name. Third parties add theirs through the
``pytest_mlperf_backend_class`` hook or the ``pytest_mlperf.backends`` entry-point group."""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

from pytest_mlperf.backends.base import Backend
from pytest_mlperf.loadgen.settings import Scenario

#: name -> (module, class for Offline, class for the streaming scenarios)
BUILTIN: dict[str, tuple[str, str, str]] = {
    "hf": ("pytest_mlperf.backends.hf", "HFBackend", "HFBackend"),
    "vllm": ("pytest_mlperf.backends.vllm_offline", "VllmOfflineBackend", "VllmStreamBackend"),
}
_STREAM_MODULES = {"vllm": "pytest_mlperf.backends.vllm_stream"}
ENTRY_POINT_GROUP = "pytest_mlperf.backends"


class UnknownBackend(LookupError):
    pass


def known_names() -> list[str]:
    return sorted(set(BUILTIN) | {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)})


def resolve(name: str, scenario: Scenario) -> type[Backend]:
    """The backend class for ``name`` in ``scenario`` (imported here, not at plugin load)."""
    if name in BUILTIN:
        module, offline_cls, stream_cls = BUILTIN[name]
        if scenario.streaming:
            module = _STREAM_MODULES.get(name, module)
        return getattr(importlib.import_module(module), stream_cls if scenario.streaming else offline_cls)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            cls = ep.load()
            if not (isinstance(cls, type) and issubclass(cls, Backend)):
                raise UnknownBackend(f"entry point {ep.value!r} for backend '{name}' is not a Backend subclass")
            return cls
    raise UnknownBackend(f"--mlperf-backend: unknown backend '{name}'; known: {', '.join(known_names())}")
