"""What the two vLLM backends share: engine arguments and their defaults, the reference's
sampling parameters, version info, and the engine itself.

One engine per (model, engine arguments) per process. ``vllm.LLM`` drives Offline (its
``generate`` is vLLM's fastest batch path); the streaming scenarios need ``AsyncLLM``. A session
that runs both starts ``LLM`` for Offline and, once a streaming backend asks for the same model,
replaces it with ``AsyncLLM``, which then serves Offline too: two engines of one model would not
fit on one GPU (each takes ``gpu_memory_utilization`` of it). The swap happens in ``start()``,
never during a run. vllm is imported here only inside functions.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pytest_mlperf import cpu
from pytest_mlperf.backends.base import GenerationConfig, ModelSource

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
ENGINE_DEFAULTS: Mapping[str, Any] = {"disable_log_stats": True}
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")

_request_ids = itertools.count()


def next_request_id(prefix: str) -> str:
    """vLLM request ids must be unique among requests in flight; loadgen's response ids can
    repeat across runs, so the backends number their own."""
    return f"{prefix}{next(_request_ids)}"


def on_cpu() -> bool:
    from vllm.platforms import current_platform

    return bool(current_platform.is_cpu())


def engine_kwargs(model: ModelSource) -> dict[str, Any]:
    """The keyword arguments for ``LLM(...)`` / ``AsyncEngineArgs(...)``: the user's engine
    arguments over the defaults for this platform."""
    kwargs: dict[str, Any] = {"model": str(model.path), **ENGINE_DEFAULTS}
    if on_cpu():
        kwargs.update(CPU_DEFAULTS)
    # Token ids in, token ids out: a folder without a tokenizer (dummy weights) still runs.
    if not any((Path(model.path) / name).is_file() for name in _TOKENIZER_FILES):
        kwargs["skip_tokenizer_init"] = True
    kwargs.update(model.engine_args)
    return kwargs


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


def versions() -> dict[str, str]:
    """vLLM, torch and the device, for ``describe()``."""
    import torch
    import vllm
    from vllm.platforms import current_platform

    info = {"vllm": vllm.__version__, "torch": torch.__version__,
            "platform": str(current_platform.device_name)}
    if torch.cuda.is_available():
        info["device"] = torch.cuda.get_device_name(0)
        info["device_count"] = str(torch.cuda.device_count())
    return info


class SharedEngine:
    """One vLLM engine of one model: ``LLM`` (``llm``) or ``AsyncLLM`` (``async_engine``,
    driven on one long-lived event loop of its own thread), shared by the backends using it."""

    def __init__(self, key: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.key = key
        self.kwargs = kwargs
        self.users = 0
        #: held while ``llm`` generates, so a swap to AsyncLLM never pulls it from under a run
        self.lock = threading.Lock()
        self.llm: Any = None
        self.async_engine: Any = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None

    def start_llm(self) -> None:
        from vllm import LLM

        apply_environment()
        self.llm = LLM(**self.kwargs)

    def start_async(self) -> None:
        """Start AsyncLLM (replacing ``llm`` if it runs) and its event loop."""
        from vllm import AsyncEngineArgs
        from vllm.v1.engine.async_llm import AsyncLLM

        with self.lock:
            if self.async_engine is not None:
                return
            self._stop_llm()
            apply_environment()
            self.async_engine = AsyncLLM.from_engine_args(AsyncEngineArgs(**self.kwargs))
            self.loop = asyncio.new_event_loop()
            self._loop_thread = threading.Thread(
                target=self.loop.run_forever, name="mlperf-vllm-loop", daemon=True
            )
            self._loop_thread.start()

    def generate_all(self, prompts: Sequence[Sequence[int]], params: Any) -> list[list[int]]:
        """Greedy outputs for ``prompts``, all submitted at once; blocks the calling thread."""
        from vllm.inputs import TokensPrompt

        with self.lock:
            if self.llm is not None:
                outputs = self.llm.generate(
                    [TokensPrompt(prompt_token_ids=list(p)) for p in prompts], params, use_tqdm=False
                )
                return [list(o.outputs[0].token_ids) for o in outputs]
        engine = self.async_engine

        async def one(prompt: Sequence[int]) -> list[int]:
            tokens: list[int] = []
            async for out in engine.generate(
                TokensPrompt(prompt_token_ids=list(prompt)), params, request_id=next_request_id("o")
            ):
                tokens.extend(out.outputs[0].token_ids)
            return tokens

        async def all_of() -> list[list[int]]:
            return list(await asyncio.gather(*(one(p) for p in prompts)))

        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(all_of(), self.loop).result()

    def _stop_llm(self) -> None:
        if self.llm is None:
            return
        llm, self.llm = self.llm, None
        llm.llm_engine.engine_core.shutdown()
        del llm
        _free_memory()

    def shutdown(self) -> None:
        with self.lock:
            self._stop_llm()
            engine, self.async_engine = self.async_engine, None
            loop, thread = self.loop, self._loop_thread
            self.loop, self._loop_thread = None, None
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


_engines: dict[tuple[Any, ...], SharedEngine] = {}
_engines_lock = threading.Lock()


def acquire(model: ModelSource, *, streaming: bool) -> SharedEngine:
    """The process's engine for ``model`` and its engine arguments, started if needed;
    ``streaming`` makes sure it is (or becomes) the AsyncLLM."""
    kwargs = engine_kwargs(model)
    key = (str(model.path), tuple(sorted((k, repr(v)) for k, v in kwargs.items())))
    with _engines_lock:
        shared = _engines.get(key)
        if shared is None:
            shared = SharedEngine(key, kwargs)
            if streaming:
                shared.start_async()
            else:
                shared.start_llm()
            _engines[key] = shared
        elif streaming:
            shared.start_async()
        shared.users += 1
    return shared


def release(shared: SharedEngine) -> None:
    """One user fewer; the last one shuts the engine down."""
    with _engines_lock:
        shared.users -= 1
        if shared.users > 0:
            return
        _engines.pop(shared.key, None)
    shared.shutdown()
