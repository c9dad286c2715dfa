"""The session's engines: one backend per (backend name, system, engine arguments), made by the
``pytest_mlperf_make_backend`` hook when a test first needs it, started when a test first runs
on it (never at setup, so ``--setup-only`` and collection start nothing), closed at session end.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import pytest

from pytest_mlperf.backends.base import Backend, GenerationConfig, SystemSpec
from pytest_mlperf.vocabulary import Scenario


class EngineStartError(RuntimeError):
    """A backend whose ``start()`` failed; later tests on it fail with the same cause at once
    instead of loading a model again."""


def _key(name: str, system: SystemSpec, engine_args: Mapping[str, Any]) -> tuple[Any, ...]:
    return (name, system, tuple(sorted((k, repr(v)) for k, v in engine_args.items())))


class EnginePool:
    def __init__(self, config: pytest.Config, generation: GenerationConfig) -> None:
        self._config = config
        self._generation = generation
        self._backends: dict[tuple[Any, ...], Backend] = {}
        self._started: set[int] = set()
        self._failed: dict[int, str] = {}

    def get(self, *, name: str, scenario: Scenario, system: SystemSpec,
            engine_args: Mapping[str, Any], tokenizer: Any) -> Backend:
        """The session's backend for these; made (not started) on first use."""
        key = _key(name, system, engine_args)
        backend = self._backends.get(key)
        if backend is None:
            hook = self._config.hook
            backend = hook.pytest_mlperf_make_backend(
                config=self._config, name=name, scenario=scenario, system=system,
                engine_args=dict(engine_args), generation=self._generation, tokenizer=tokenizer,
            )
            if backend is None:
                known = sorted({n for names in hook.pytest_mlperf_backend_names(config=self._config) for n in names})
                raise pytest.UsageError(
                    f"--mlperf-backend: unknown backend '{name}'; known: {', '.join(known)} "
                    "(add one with the pytest_mlperf_make_backend hook or the "
                    "pytest_mlperf.backends entry-point group)"
                )
            if not isinstance(backend, Backend):
                raise pytest.UsageError(
                    f"pytest_mlperf_make_backend returned {backend!r} for '{name}', not a "
                    "pytest_mlperf.Backend"
                )
            self._backends[key] = backend
        return backend

    def start(self, backend: Backend, scenario: Scenario) -> float:
        """Start ``backend`` unless it runs already, and prepare it for ``scenario`` (an
        engine may load its scenario's engine there); the seconds it took (0 when it ran)."""
        if id(backend) in self._failed:
            raise EngineStartError(self._failed[id(backend)])
        if id(backend) in self._started:
            return 0.0
        began = time.perf_counter()
        try:
            backend.start()
            backend.prepare(scenario)
        except Exception as exc:
            self._failed[id(backend)] = (
                f"backend '{backend.name}' ({type(backend).__name__}) failed to start: "
                f"{type(exc).__name__}: {exc}"
            )
            raise EngineStartError(self._failed[id(backend)]) from exc
        self._started.add(id(backend))
        return time.perf_counter() - began

    def close(self) -> None:
        errors = []
        for backend in self._backends.values():
            if id(backend) not in self._started:
                continue
            try:
                backend.close()
            except Exception as exc:  # noqa: BLE001 - close every engine even if one fails
                errors.append(f"{backend.name}: {exc}")
        self._backends.clear()
        self._started.clear()
        if errors:
            raise RuntimeError("closing engines failed: " + "; ".join(errors))
