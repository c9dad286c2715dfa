"""The system-under-test contract every backend implements.

The loadgen bridge (``pytest_mlperf.loadgen.sut``) turns loadgen's query samples into
:class:`Query` objects and hands them to :meth:`Backend.issue`; the backend answers through the
:class:`Responder` from any thread. A backend is made by the ``pytest_mlperf_make_backend`` hook
from a :class:`SystemSpec` (a local model folder, or a model served at one or more endpoints),
engine arguments kept apart from it, the generation parameters and the tokenizer. Nothing here
imports torch or an engine.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

from pytest_mlperf.core.vocabulary import Scenario


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


#: files a Hugging Face model folder holds its tokenizer in
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")


@dataclass(frozen=True)
class SystemSpec:
    """What the benchmark runs against, apart from how the engine is tuned.

    Local: ``path`` is a model folder (HF layout) that the backend loads in this process.
    Served: ``model`` is the name the server knows the model by and ``endpoints`` its base
    URLs (``http://node1:8000``, ...); no weights are here. ``tokenizer`` is a folder or hub
    name to decode outputs with (default: ``path``). Build one with :meth:`local` or
    :meth:`served`.
    """

    model: str
    path: Path | None = None
    endpoints: tuple[str, ...] = ()
    tokenizer: str | None = None
    #: the project's embedded tiny model (its accuracy baseline is known per sample)
    embedded: bool = False

    def __post_init__(self) -> None:
        if (self.path is None) == (not self.endpoints):
            raise ValueError(
                "a SystemSpec is either a local model folder (path=...) or a served model "
                f"(endpoints=[...]), not both or neither: {self!r}"
            )

    @classmethod
    def local(cls, path: str | Path, *, embedded: bool = False,
              tokenizer: str | Path | None = None) -> SystemSpec:
        path = Path(path)
        return cls(model=str(path), path=path, embedded=embedded,
                   tokenizer=str(tokenizer) if tokenizer is not None else None)

    @classmethod
    def served(cls, model: str, endpoints: Sequence[str], *,
               tokenizer: str | Path | None = None) -> SystemSpec:
        if isinstance(endpoints, str):
            endpoints = (endpoints,)
        return cls(model=model, endpoints=tuple(endpoints),
                   tokenizer=str(tokenizer) if tokenizer is not None else None)

    @property
    def kind(self) -> str:
        """``local`` or ``served``."""
        return "local" if self.path is not None else "served"

    @property
    def tokenizer_source(self) -> str | None:
        """Where the tokenizer loads from: ``tokenizer``, else the local model folder when it
        holds one (a folder of only config.json, for dummy weights, has none)."""
        if self.tokenizer is not None:
            return self.tokenizer
        if self.path is not None and any((self.path / name).is_file() for name in TOKENIZER_FILES):
            return str(self.path)
        return None

    def label(self) -> str:
        """Short, for reports: ``embedded``, the folder, or ``name @ url, url``."""
        if self.embedded:
            return "embedded"
        if self.path is not None:
            return str(self.path)
        return f"{self.model} @ {', '.join(self.endpoints)}"


class Backend(abc.ABC):
    """A system under test. One instance holds one engine (or one client) for one system.

    Lifetime: made by the ``pytest_mlperf_make_backend`` hook (cheap: load nothing in
    ``__init__``), ``start()`` once, then any number of runs, each ``prepare(scenario)`` then
    ``issue()`` calls and loadgen's ``flush()``, then ``close()`` once at session end. One
    instance serves every scenario of a session for its system and engine arguments.
    ``issue`` must return promptly: generation happens on the backend's own threads or loop.
    """

    #: the name ``--mlperf-backend`` selects it by
    name: ClassVar[str] = ""
    #: True when the backend reports first tokens, as Server/SingleStream/Interactive need
    streaming: ClassVar[bool] = False

    def __init__(self, system: SystemSpec, engine_args: Mapping[str, Any] | None = None,
                 generation: GenerationConfig | None = None, tokenizer: Any = None) -> None:
        self.system = system
        self.engine_args: Mapping[str, Any] = dict(engine_args or {})
        self.generation = generation if generation is not None else GenerationConfig()
        self.tokenizer = tokenizer

    def check_local_start(self) -> Path:
        """For backends that load a local folder: the folder, after the engine arguments
        passed :meth:`check_engine_args` (when the class has one); ValueError otherwise."""
        if self.system.path is None:
            raise ValueError(
                f"the {self.name} backend loads a local model folder; {self.system.label()} is a "
                "served model (endpoints): use a backend for served endpoints (e.g. 'openai')"
            )
        check = getattr(self, "check_engine_args", None)
        problems = check(self.engine_args) if check is not None else []
        if problems:
            raise ValueError("; ".join(problems))
        return self.system.path

    @abc.abstractmethod
    def start(self) -> None:
        """Load the engine (or connect to the servers). Called once, before the first run."""

    def prepare(self, scenario: Scenario) -> None:  # noqa: B027 - optional hook
        """Called before every run, never during one: switch engine modes here."""

    @abc.abstractmethod
    def issue(self, queries: Sequence[Query], responder: Responder) -> None:
        """Start generating for ``queries``; answer each through ``responder``."""

    def flush(self) -> None:  # noqa: B027 - optional hook
        """loadgen's flush_queries: no more queries are coming for a while."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the engine. Called once at session end."""

    def rule_facts(self) -> dict[str, Any]:
        """What this backend knows, before it starts, of what MLPerf's rules check
        (``gate/rules.py``): ``prefix_caching`` (True/False; leave it out when unknown) and
        ``request_fields`` (what every request carries that can change greedy decoding)."""
        return {}

    def prefix_cache_hits(self) -> dict[str, float | None]:
        """Per server, a counter of prompt tokens served from a cache kept across queries (a
        served engine's metrics), None where it cannot be read; read before and after each run,
        hits in between make the run not an MLPerf one. Empty: nothing to read."""
        return {}

    def describe(self) -> dict[str, Any]:
        """What the record says of this system under test. Keys the record knows:
        ``engine`` (e.g. ``vllm.LLM``), ``engine_version``, ``engine_args`` (the effective
        ones), ``device``; anything else is kept under ``extra``."""
        return {"engine": type(self).__name__, "engine_args": dict(self.engine_args)}


def engine_arg_problems(engine_args: Mapping[str, Any], known: Sequence[str], backend: str) -> list[str]:
    """Unknown engine argument names, each with the closest known ones."""
    import difflib

    problems = []
    for name in engine_args:
        if name not in known:
            close = difflib.get_close_matches(name, list(known), n=3)
            hint = f"; did you mean {' or '.join(close)}?" if close else ""
            problems.append(f"'{name}' is not an engine argument the {backend} backend takes{hint}")
    return problems
