"""The session's engines: one backend per (backend name, system, engine arguments), made by the
``pytest_mlperf_make_backend`` hook when a test first needs it, started when a test first runs
on it (never at setup, so ``--setup-only`` and collection start nothing), closed at session end.

Every start (``start()`` and the ``prepare(scenario)`` that may load a scenario's engine) and
every close runs on a thread of its own with a time limit (``--mlperf-engine-timeout``), so a
hung engine fails its test instead of the session. An engine whose start failed or timed out,
and one whose run failed (it raised, hung or answered wrongly), is closed and dropped from the
pool: the next test on it gets a fresh one. A start that failed is not retried in the same
session: later tests on the same system and engine arguments fail at once with its cause.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from pytest_mlperf.backends.base import Backend, GenerationConfig, SystemSpec
from pytest_mlperf.core import bounded
from pytest_mlperf.core.vocabulary import Scenario

#: the default limit for an engine's start and for its close, in seconds: loading the largest
#: models onto several GPUs takes minutes, not half an hour
DEFAULT_ENGINE_TIMEOUT_S = 1800.0
#: after a Ctrl-C, how long each engine may take to close before it is left behind
INTERRUPTED_CLOSE_S = 10.0
#: set when the session was interrupted (the plugin's ``pytest_keyboard_interrupt``)
INTERRUPTED = threading.Event()
#: the session's pool, closed by the plugin's ``pytest_sessionfinish`` when the tests did not
#: get to the last teardown (an interrupt, ``-x``): there a close error may not raise
POOL = pytest.StashKey["EnginePool"]()


class EngineStartError(RuntimeError):
    """A backend whose ``start()`` failed; later tests on it fail with the same cause at once
    instead of loading a model again."""


def _key(name: str, system: SystemSpec, engine_args: Mapping[str, Any]) -> tuple[Any, ...]:
    return (name, system, tuple(sorted((k, repr(v)) for k, v in engine_args.items())))


class EnginePool:
    def __init__(self, config: pytest.Config, generation: GenerationConfig) -> None:
        INTERRUPTED.clear()  # a new session (pytester runs many in one process)
        self._config = config
        self._generation = generation
        self._backends: dict[tuple[Any, ...], Backend] = {}
        self._keys: dict[int, tuple[Any, ...]] = {}
        self._started: set[int] = set()
        self._prepared: dict[int, Scenario] = {}
        self._failed: dict[tuple[Any, ...], str] = {}
        config.stash[POOL] = self

    @property
    def timeout_s(self) -> float:
        from pytest_mlperf.core import stash

        options = self._config.stash.get(stash.OPTIONS, None)
        return getattr(options, "engine_timeout", None) or DEFAULT_ENGINE_TIMEOUT_S

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
                from pytest_mlperf.run.preflight import refuse, unknown_backend

                known = {n for names in hook.pytest_mlperf_backend_names(config=self._config) for n in names}
                # Once, for the session: every test would stop here the same way.
                refuse(self._config, unknown_backend(name, known))
            if not isinstance(backend, Backend):
                raise pytest.UsageError(
                    f"pytest_mlperf_make_backend returned {backend!r} for '{name}', not a "
                    "pytest_mlperf.Backend"
                )
            self._backends[key] = backend
            self._keys[id(backend)] = key
        return backend

    def start(self, backend: Backend, scenario: Scenario,
              on_start: Callable[[], None] | None = None) -> float:
        """Start ``backend`` unless it runs already, and prepare it for ``scenario`` unless it
        was prepared for it last (an engine may load its scenario's engine there); the seconds
        it took (0 when nothing was to do). ``on_start`` is called first when there is work. :class:`EngineStartError` when it fails or passes
        the time limit; the backend is then closed and dropped."""
        key = self._keys.get(id(backend))
        if key in self._failed:
            raise EngineStartError(self._failed[key])
        started = id(backend) in self._started
        if started and self._prepared.get(id(backend)) is scenario:
            return 0.0
        if on_start is not None:
            on_start()
        began = time.perf_counter()
        limit = self.timeout_s

        def work() -> None:
            if not started:
                backend.start()
                self._started.add(id(backend))
            backend.prepare(scenario)

        what = f"starting backend '{backend.name}' ({type(backend).__name__}) for {scenario.value}"
        try:
            bounded.call(work, timeout_s=limit, what=what)
        except KeyboardInterrupt:
            raise
        except bounded.DeadlineExceeded:
            message = f"{what} did not finish within {limit:g} s (--mlperf-engine-timeout)"
            raise self._start_failed(backend, key, message) from None
        except BaseException as exc:  # noqa: BLE001 - any start failure fails the test, named
            message = (f"backend '{backend.name}' ({type(backend).__name__}) failed to start: "
                       f"{type(exc).__name__}: {exc}")
            raise self._start_failed(backend, key, message) from exc
        self._prepared[id(backend)] = scenario
        return time.perf_counter() - began

    def _start_failed(self, backend: Backend, key: tuple[Any, ...] | None, message: str) -> EngineStartError:
        if key is not None:
            self._failed[key] = message
        return EngineStartError(message + self.evict(backend))

    def evict(self, backend: Backend) -> str:
        """Close ``backend`` (within the time limit) and drop it from the pool, so that the next
        test on its system starts a fresh one. Returns what to add to a failure message."""
        key = self._keys.pop(id(backend), None)
        if key is not None and self._backends.get(key) is backend:
            del self._backends[key]
        self._prepared.pop(id(backend), None)
        self._started.discard(id(backend))
        error = self._close(backend)
        if error:
            return f" (the engine was dropped; {error})"
        return " (the engine was closed and dropped: the next test starts a fresh one)"

    def _close(self, backend: Backend) -> str | None:
        limit = INTERRUPTED_CLOSE_S if INTERRUPTED.is_set() else self.timeout_s
        what = f"closing backend '{backend.name}' ({type(backend).__name__})"
        try:
            bounded.call(backend.close, timeout_s=limit, what=what, hurry=True)
        except bounded.DeadlineExceeded as exc:
            return f"{exc}; it was left behind"
        except Exception as exc:  # noqa: BLE001 - close every engine even if one fails
            return f"{what} failed: {type(exc).__name__}: {exc}"
        return None

    def close(self, *, raise_errors: bool = True) -> list[str]:
        """Close every started engine, each within its limit (seconds after an interrupt,
        none after a second signal); one that does not finish is left behind. What failed
        fails the session's last teardown, or is returned with ``raise_errors=False`` (session
        finish: nothing may raise there, or the reports after it are never written)."""
        errors = []
        for backend in list(self._backends.values()):
            if id(backend) not in self._started:
                continue
            error = self._close(backend)
            if error:
                errors.append(error)
        self._backends.clear()
        self._keys.clear()
        self._started.clear()
        self._prepared.clear()
        if errors and raise_errors and not INTERRUPTED.is_set():
            pytest.fail("closing engines failed: " + "; ".join(errors), pytrace=False)
        return errors
