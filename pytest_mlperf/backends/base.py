"""The system-under-test interface every backend implements.

The loadgen bridge (``pytest_mlperf.loadgen.sut``) turns loadgen's query samples into
:class:`Query` objects and hands them to :meth:`Backend.issue`; the backend answers through the
:class:`Responder` from any thread. Nothing here imports torch or an engine.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol


@dataclass(frozen=True, slots=True)
class Query:
    """One loadgen query sample: its response id, its QSL index and the prompt token ids."""

    response_id: int
    sample_index: int
    prompt: Sequence[int]


class Responder(Protocol):
    """How a backend reports back to loadgen. Thread-safe; callable from any thread or loop."""

    def first_token(self, query: Query, token_id: int) -> None:
        """The first generated token of ``query`` (TTFT). Streaming backends only."""

    def complete(self, query: Query, tokens: Sequence[int]) -> None:
        """All generated token ids of ``query`` (at most one trailing EOS)."""

    def fail(self, error: BaseException) -> None:
        """The engine broke: loadgen's outstanding queries are answered empty, the run is
        marked failed with ``error`` and its logs are kept."""


@dataclass(frozen=True, slots=True)
class GenerationConfig:
    """The reference SUT's generation: greedy, 128 new tokens at most, 1 at least."""

    max_new_tokens: int = 128
    min_new_tokens: int = 1
    eos_token_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class ModelSource:
    """Where the weights and tokenizer live, and the engine arguments the user passed."""

    path: Path
    embedded: bool = False
    engine_args: Mapping[str, Any] = field(default_factory=dict)


class Backend(abc.ABC):
    """A system under test. One instance holds one engine for one model.

    Lifetime: ``start()`` once (load the engine), then any number of runs, each a sequence of
    ``issue()`` calls followed by loadgen's ``flush()``, then ``close()`` once.
    ``issue`` must return promptly: generation happens on the backend's own threads or loop.
    """

    #: name used by ``--mlperf-backend``
    name: ClassVar[str] = ""
    #: True when the backend reports first tokens, as Server/SingleStream/Interactive need
    streaming: ClassVar[bool] = False

    def __init__(self, model: ModelSource, generation: GenerationConfig) -> None:
        self.model = model
        self.generation = generation

    @abc.abstractmethod
    def start(self) -> None:
        """Load the engine. Called once, before the first run."""

    @abc.abstractmethod
    def issue(self, queries: Sequence[Query], responder: Responder) -> None:
        """Start generating for ``queries``; answer each through ``responder``."""

    def flush(self) -> None:  # noqa: B027 - optional hook
        """loadgen's flush_queries: no more queries are coming for a while."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the engine. Called once at session end."""

    def describe(self) -> dict[str, Any]:
        """Versions and engine arguments, for the report."""
        return {"backend": self.name, "model": str(self.model.path), **dict(self.model.engine_args)}
