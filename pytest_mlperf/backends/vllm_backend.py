"""vLLM as the system under test: one engine of one local model, serving every scenario.

Two engines, one at a time, chosen in :meth:`VllmBackend.prepare` (before a run, never during
one):

- Offline on ``vllm.LLM``: what ``LLM.generate`` does over everything issued (add every
  request, step the engine until none is left: vLLM's fastest batch path), on the backend's own
  worker thread, each query handed to loadgen at the step it finished in rather than all at the
  end (in-process on a CPU, so the worker sets its own OpenMP thread count,
  :func:`configure_engine_thread`).
- Server, SingleStream, Interactive on ``AsyncLLM``, driven on one long-lived event loop of its
  own thread: every query in flight at once, DELTA outputs, the first token reported as soon as
  the engine yields it. (The reference Server SUT keeps one query per worker thread and calls
  ``asyncio.run`` per query, which caps concurrency and kills the engine:
  mlcommons/inference#2341.)

The first scenario prepared decides which engine starts. When a streaming scenario follows
Offline, ``LLM`` is shut down and replaced by ``AsyncLLM``, which then serves Offline too (all
of a batch through ``asyncio.gather``): two engines of one model would not fit one GPU (each
takes ``gpu_memory_utilization`` of it). vllm and torch are imported only inside functions.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import os
import queue
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pytest_mlperf.backends import weights
from pytest_mlperf.backends.base import (
    TOKENIZER_FILES,
    Backend,
    GenerationConfig,
    Query,
    Responder,
    SystemSpec,
)
from pytest_mlperf.core import cpu
from pytest_mlperf.core.vocabulary import Scenario

#: Engine defaults on a CPU (vLLM's CPU build): float32 is ~3x faster than bf16 there, and
#: eager mode skips a compile that costs more than a CI-sized run.
CPU_DEFAULTS: Mapping[str, Any] = {"dtype": "float32", "enforce_eager": True}
#: Environment defaults on a CPU. KV cache 1 GiB (vLLM's CPU default is a share of RAM);
#: an in-process engine for ``LLM`` starts in seconds instead of spawning a process.
CPU_ENVIRONMENT: Mapping[str, str] = {
    "VLLM_CPU_KVCACHE_SPACE": "1",
    "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
}
#: Defaults everywhere: no periodic stats logging (a log line every few seconds).
#: MLPerf forbids caching across queries: vLLM's automatic prefix caching is off unless the
#: engine arguments turn it on (the run is then not an MLPerf one, gate/rules.py).
ENGINE_DEFAULTS: Mapping[str, Any] = {"disable_log_stats": True, "enable_prefix_caching": False}
_STOP = object()


def on_cpu() -> bool:
    from vllm.platforms import current_platform

    return bool(current_platform.is_cpu())


def engine_kwargs(path: Path, engine_args: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword arguments for ``LLM(...)`` / ``AsyncEngineArgs(...)``: the user's engine
    arguments over the defaults for this platform."""
    kwargs: dict[str, Any] = {"model": str(path), **ENGINE_DEFAULTS}
    if on_cpu():
        kwargs.update(CPU_DEFAULTS)
    # Token ids in, token ids out: a folder without a tokenizer (dummy weights) still runs.
    if not any((Path(path) / name).is_file() for name in TOKENIZER_FILES):
        kwargs["skip_tokenizer_init"] = True
    kwargs.update(multi_gpu_defaults(engine_args))
    kwargs.update(engine_args)
    return kwargs


def multi_gpu_defaults(engine_args: Mapping[str, Any]) -> dict[str, Any]:
    """Defaults for an engine over several GPUs: vLLM's custom all-reduce kernel crashes on the
    H200 machines this project is measured on (``../shared/gpu``, vLLM 0.26), so with
    ``tensor_parallel_size`` > 1 it is off unless the engine arguments say otherwise
    (``--mlperf-engine-arg disable_custom_all_reduce=false`` where it works: it is faster on
    NVLink). NCCL's all-reduce is used instead."""
    try:
        tensor_parallel = int(engine_args.get("tensor_parallel_size", 1) or 1)
    except (TypeError, ValueError):
        return {}  # vLLM names the bad value when the engine starts
    return {"disable_custom_all_reduce": True} if tensor_parallel > 1 else {}


def apply_environment() -> None:
    """Set the CPU environment defaults the user has not set (before an engine starts; a
    spawned engine process inherits them)."""
    if on_cpu():
        for name, value in CPU_ENVIRONMENT.items():
            os.environ.setdefault(name, value)
        threads = cpu.default_threads()  # one on a small CPU (cpu.SMALL_CPU_CORES)
        if threads is not None:
            os.environ.setdefault("OMP_NUM_THREADS", str(threads))


def configure_engine_thread() -> None:
    """Call on a thread that runs an in-process engine step (``LLM.generate``): OpenMP thread
    counts are per thread, and one made after torch loaded starts with the library default,
    not with OMP_NUM_THREADS set later by :func:`apply_environment`."""
    threads = cpu.default_threads()
    if threads and on_cpu():
        cpu.set_torch_threads(threads)


def sampling_params(generation: GenerationConfig, output_kind: str = "FINAL_ONLY") -> Any:
    """The reference SUT's greedy decoding as vLLM ``SamplingParams``."""
    from vllm import SamplingParams
    from vllm.sampling_params import RequestOutputKind

    return SamplingParams(
        temperature=0.0,
        top_k=1,
        max_tokens=generation.max_new_tokens,
        min_tokens=generation.min_new_tokens,
        stop_token_ids=list(generation.eos_token_ids) or None,
        detokenize=False,
        output_kind=RequestOutputKind[output_kind],
    )


class VllmBackend(Backend):
    """vLLM for every scenario; this instance owns its engine (see the module doc)."""

    name = "vllm"
    streaming = True
    #: checked at collection (a missing package is a usage error, not a traceback)
    requires = ("vllm",)

    def __init__(self, system: SystemSpec, engine_args: Mapping[str, Any] | None = None,
                 generation: GenerationConfig | None = None, tokenizer: Any = None) -> None:
        super().__init__(system, engine_args, generation, tokenizer)
        #: ``LLM(...)`` / ``AsyncEngineArgs(...)`` keyword arguments, set by ``start()``
        self.kwargs: dict[str, Any] | None = None
        #: the ``vllm.LLM`` while it serves (None before Offline is prepared, and after the swap)
        self.llm: Any = None
        #: the ``AsyncLLM`` once a streaming scenario was prepared
        self.async_engine: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None
        self._scenario: Scenario | None = None
        #: held while an engine generates on the worker and while engines change
        self._engine_lock = threading.Lock()
        self._pending: queue.Queue[Any] = queue.Queue()
        self._worker: threading.Thread | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        # vLLM request ids must be unique among requests in flight; loadgen's response ids
        # repeat across runs, so the backend numbers its own.
        self._request_ids = itertools.count()

    # -- lifetime ---------------------------------------------------------------------------
    def start(self) -> None:
        """Check the system, settle the engine arguments and the environment. The engine
        itself starts in the first :meth:`prepare`: ``LLM`` for Offline, ``AsyncLLM`` for a
        streaming scenario (a Server-only session never starts an ``LLM``)."""
        self.check_local_start()
        if not weights.wants_dummy(self.engine_args):
            # vLLM fills weights a checkpoint lacks at random, without a word (measured: a
            # Qwen2 config over Llama weights, an untied head): check before it loads.
            problem = weights.checkpoint_problem(self.system.path)
            if problem:
                raise weights.WeightsError(problem)
        self.kwargs = engine_kwargs(self.system.path, self.engine_args)
        apply_environment()
        self._offline_params = sampling_params(self.generation)
        # DELTA: each step hands over only the new tokens, no copy of the whole output so far.
        self._stream_params = sampling_params(self.generation, output_kind="DELTA")
        self._worker = threading.Thread(target=self._work, name="mlperf-vllm-offline", daemon=True)
        self._worker.start()

    def prepare(self, scenario: Scenario) -> None:
        """Start the engine ``scenario`` needs, or swap ``LLM`` for ``AsyncLLM``."""
        if self.kwargs is None:
            raise RuntimeError("VllmBackend.prepare() before start()")
        if scenario.streaming:
            self._start_async()
        elif self.llm is None and self.async_engine is None:
            self._start_llm()
        self._scenario = scenario

    def close(self) -> None:
        if self._worker is not None:
            self._pending.put(_STOP)
            self._worker.join()
            self._worker = None
        loop = self._loop
        if loop is not None and loop.is_running() and self._tasks:
            async def cancel_all() -> None:
                tasks = list(self._tasks)
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

            asyncio.run_coroutine_threadsafe(cancel_all(), loop).result(timeout=60)
        with self._engine_lock:
            self._stop_llm()
            self._stop_async()
        self._scenario = None

    @classmethod
    def check_engine_args(cls, engine_args: Mapping[str, Any]) -> list[str]:
        """Engine arguments ``AsyncEngineArgs`` does not have, or of another type than its
        default, checked before any engine loads (vLLM itself says so only as it starts)."""
        import dataclasses

        from vllm.engine.arg_utils import AsyncEngineArgs

        from pytest_mlperf.backends.base import engine_arg_problems

        fields = {f.name: f for f in dataclasses.fields(AsyncEngineArgs) if f.name != "model"}
        problems = engine_arg_problems(engine_args, list(fields), cls.name)
        for name, value in engine_args.items():
            field = fields.get(name)
            default = getattr(field, "default", None) if field is not None else None
            if default is None or default is dataclasses.MISSING or value is None:
                continue
            kind = type(default)
            if kind is bool and not isinstance(value, bool):
                problems.append(f"{name}={value!r} must be true or false")
            elif kind in (int, float) and (isinstance(value, bool) or not isinstance(value, (int, float))
                                           or (kind is int and isinstance(value, float))):
                problems.append(f"{name}={value!r} must be {'an integer' if kind is int else 'a number'}")
        return problems

    # -- runs -------------------------------------------------------------------------------
    def issue(self, queries: Sequence[Query], responder: Responder) -> None:
        if self._scenario is None:
            raise RuntimeError("VllmBackend.issue() before prepare(scenario)")
        if self._scenario.streaming:
            loop = self._loop
            assert loop is not None
            # One wake-up of the loop for the whole call; the loop creates one task per query.
            loop.call_soon_threadsafe(self._spawn, list(queries), responder)
        else:
            self._pending.put((list(queries), responder))

    def rule_facts(self) -> dict[str, Any]:
        return {"prefix_caching": bool({**ENGINE_DEFAULTS, **self.engine_args}["enable_prefix_caching"])}

    def describe(self) -> dict[str, Any]:
        import torch
        import vllm

        if self.async_engine is not None:
            engine = "vllm.AsyncLLM"
        elif self.llm is not None:
            engine = "vllm.LLM"
        else:
            engine = "vllm"  # started, no scenario prepared yet
        kwargs = self.kwargs
        if kwargs is None and self.system.path is not None:
            kwargs = engine_kwargs(self.system.path, self.engine_args)
        info: dict[str, Any] = {
            "engine": engine,
            "engine_version": vllm.__version__,
            "engine_args": {k: v for k, v in (kwargs or self.engine_args).items() if k != "model"},
            "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
            "torch": torch.__version__,
        }
        if torch.cuda.is_available():
            info["device_count"] = torch.cuda.device_count()
        return info

    # -- engines ----------------------------------------------------------------------------
    def _start_llm(self) -> None:
        from vllm import LLM

        assert self.kwargs is not None
        with self._engine_lock:
            self.llm = LLM(**self.kwargs)

    def _start_async(self) -> None:
        """Start AsyncLLM (replacing ``llm`` if it runs) and its event loop."""
        from vllm import AsyncEngineArgs
        from vllm.v1.engine.async_llm import AsyncLLM

        assert self.kwargs is not None
        with self._engine_lock:
            if self.async_engine is not None:
                return
            self._stop_llm()
            self.async_engine = AsyncLLM.from_engine_args(AsyncEngineArgs(**self.kwargs))
            self._loop = asyncio.new_event_loop()
            self._loop_thread = threading.Thread(
                target=self._loop.run_forever, name="mlperf-vllm-loop", daemon=True
            )
            self._loop_thread.start()

    def _stop_llm(self) -> None:
        if self.llm is None:
            return
        llm, self.llm = self.llm, None
        llm.llm_engine.engine_core.shutdown()
        del llm
        _free_memory()

    def _stop_async(self) -> None:
        engine, self.async_engine = self.async_engine, None
        loop, thread = self._loop, self._loop_thread
        self._loop, self._loop_thread = None, None
        if engine is not None and loop is not None and loop.is_running():
            # On the loop's own thread: vLLM's output handler is cancelled before the engine
            # process goes, else it sees the engine die and logs an EngineDeadError.
            asyncio.run_coroutine_threadsafe(_shutdown_async(engine), loop).result(timeout=120)
        elif engine is not None:
            engine.shutdown()
        if loop is not None:
            loop.call_soon_threadsafe(loop.stop)
            if thread is not None:
                thread.join(timeout=30)
            if not loop.is_running():
                loop.close()
        del engine
        _free_memory()

    # -- Offline: the worker thread -----------------------------------------------------------
    def _work(self) -> None:
        configure_engine_thread()
        while True:
            item = self._pending.get()
            if item is _STOP:
                return
            # Offline issues every sample in one call; whatever else queued up meanwhile joins
            # the same generate() so the engine always sees the largest batch there is.
            batches = [item]
            stop = False
            while True:
                try:
                    more = self._pending.get_nowait()
                except queue.Empty:
                    break
                if more is _STOP:
                    stop = True
                    break
                batches.append(more)
            self._generate_batches(batches)
            if stop:
                return

    def _generate_batches(self, batches: list[tuple[list[Query], Responder]]) -> None:
        work = [(q, responder) for queries, responder in batches for q in queries]

        def done(index: int, tokens: list[int]) -> None:
            query, responder = work[index]
            responder.complete(query, tokens)

        try:
            self._generate_all([q.prompt for q, _ in work], done)
        except BaseException as exc:  # noqa: BLE001 - report any engine failure to loadgen
            for responder in {id(r): r for _, r in work}.values():
                responder.fail(exc)

    def _generate_all(self, prompts: Sequence[Sequence[int]],
                      done: Callable[[int, list[int]], None]) -> None:
        """Greedy outputs for ``prompts``, all submitted at once; ``done(index, tokens)`` for
        each as it finishes (not at the end of the batch: loadgen, the live line and the
        per-query latencies see the run as it goes). Blocks the calling thread."""
        params = self._offline_params
        with self._engine_lock:
            if self.llm is not None:
                _drive_llm(self.llm, prompts, params, done)
                return
            engine, loop = self.async_engine, self._loop
        if engine is None or loop is None:
            raise RuntimeError("the vllm engine is not running (closed, or never prepared)")
        from vllm.inputs import TokensPrompt

        async def one(index: int, prompt: Sequence[int]) -> None:
            tokens: list[int] = []
            async for out in engine.generate(
                TokensPrompt(prompt_token_ids=list(prompt)), params,
                request_id=self._request_id("o"),
            ):
                tokens.extend(out.outputs[0].token_ids)
            done(index, tokens)

        async def all_of() -> None:
            tasks = [asyncio.ensure_future(one(i, p)) for i, p in enumerate(prompts)]
            try:
                await asyncio.gather(*tasks)
            finally:  # one failed: the others go too (the run is failed as a whole)
                for task in tasks:
                    task.cancel()

        asyncio.run_coroutine_threadsafe(all_of(), loop).result()

    # -- streaming: the event loop ----------------------------------------------------------
    def _spawn(self, queries: list[Query], responder: Responder) -> None:
        loop = self._loop
        assert loop is not None
        for query in queries:
            task = loop.create_task(self._serve(query, responder))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _serve(self, query: Query, responder: Responder) -> None:
        from vllm.inputs import TokensPrompt

        tokens: list[int] = []
        try:
            if self.async_engine is None:
                raise RuntimeError("the vllm AsyncLLM is not running")
            async for out in self.async_engine.generate(
                TokensPrompt(prompt_token_ids=list(query.prompt)),
                self._stream_params,
                request_id=self._request_id("s"),
            ):
                delta = out.outputs[0].token_ids
                if delta and not tokens:
                    responder.first_token(query, delta[0])
                tokens.extend(delta)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # noqa: BLE001 - any engine failure ends the run, not hangs it
            responder.fail(exc)
            return
        responder.complete(query, tokens)

    def _request_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._request_ids)}"


def _drive_llm(llm: Any, prompts: Sequence[Sequence[int]], params: Any,
               done: Callable[[int, list[int]], None]) -> None:
    """What ``LLM.generate`` does (add every request, then step the engine until none is
    left), with each finished request handed to ``done`` at the step it finished in."""
    from vllm.inputs import TokensPrompt

    engine = llm.llm_engine
    token_prompts = [TokensPrompt(prompt_token_ids=list(p)) for p in prompts]
    index_of = _add_requests(llm, token_prompts, params)
    try:
        while index_of and engine.has_unfinished_requests():
            for output in engine.step():
                if output.finished:
                    index = index_of.pop(output.request_id, None)
                    if index is None:
                        raise RuntimeError(
                            f"vllm finished request {output.request_id!r}, which this run did "
                            "not add (another caller of the same LLM?)"
                        )
                    done(index, list(output.outputs[0].token_ids))
    except BaseException:
        if index_of:  # an error or Ctrl-C mid-run: leave no request in the engine
            engine.abort_request(list(index_of))
        raise
    if index_of:
        raise RuntimeError(f"vllm stopped with {len(index_of)} request(s) unfinished")


def _add_requests(llm: Any, prompts: Sequence[Any], params: Any) -> dict[str, int]:
    """Add ``prompts`` to ``llm``'s engine as ``LLM.generate`` does; their request ids (as
    the engine's outputs carry them) -> index in ``prompts``."""
    if hasattr(llm, "enqueue"):
        # LLM.generate's own path (prompt rendering, its request counter). enqueue returns
        # the engine's internal ids, ``<request id>-<8 random characters>`` where vLLM
        # randomizes them; the outputs carry the request id before the suffix.
        ids = llm.enqueue(prompts, params, use_tqdm=False)
        return {str(rid).split("-", 1)[0]: i for i, rid in enumerate(ids)}
    # vLLM without LLM.enqueue: the engine's own add_request, with ids of our own.
    base = f"mlperf{next(_LLM_BATCHES)}_"
    index_of: dict[str, int] = {}
    try:
        for i, prompt in enumerate(prompts):
            llm.llm_engine.add_request(f"{base}{i}", prompt, params)
            index_of[f"{base}{i}"] = i
    except BaseException:
        if index_of:
            llm.llm_engine.abort_request(list(index_of))
        raise
    return index_of


_LLM_BATCHES = itertools.count()


async def _shutdown_async(engine: Any) -> None:
    handler = getattr(engine, "output_handler", None)
    if handler is not None and not handler.done():
        handler.cancel()
        try:
            await handler
        except BaseException:  # noqa: BLE001 - cancelled, or it had already failed
            pass
    engine.shutdown()


def _free_memory() -> None:
    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except Exception:  # noqa: BLE001 - best effort
        pass
