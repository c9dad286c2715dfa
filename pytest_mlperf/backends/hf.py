"""The transformers backend: batched greedy generation, token ids in and out, as the
reference SUT. Streaming too: a generation streamer reports each row's first token, so it can
serve Server/SingleStream/Interactive (at CPU-model speeds).

Threads. Generation runs on the backend's own thread ("mlperf-hf"), which sets torch's thread
count on itself (:meth:`HFBackend.configure_thread`): OpenMP's count is per thread, and one set
on the thread that called ``start()`` reaches the worker only through torch's lazy per-thread
initialisation (after any MKL product that runs first). On a CPU of at most
``cpu.SMALL_CPU_CORES`` usable cores the worker uses ONE thread unless the ``threads`` engine
argument or ``OMP_NUM_THREADS`` says otherwise. With two OpenMP threads on two cores every
parallel region waits at its barrier while a neighbour's process holds one of the cores, and
throughput collapses; the harness itself costs nothing measurable. Embedded model, Offline,
``scripts/bench_hf.py`` (tokens/s, plugin, two threads -> one): idle machine 2,238 -> 1,358;
one busy process beside it 147 -> 1,242; two busy processes 594 -> 850. Outputs are identical
token for token. ``--mlperf-engine-arg threads=2`` takes the idle machine's speed back.
"""

from __future__ import annotations

import queue
import re
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from pytest_mlperf.backends import weights
from pytest_mlperf.backends.base import Backend, Query, Responder
from pytest_mlperf.core import cpu

_STOP = object()
#: dtype engine argument values (torch dtype names)
_DTYPES = ("float32", "float16", "bfloat16", "float64", "float", "half", "double")


class HFBackend(Backend):
    name = "hf"
    #: checked at collection (a missing package is a usage error, not a traceback)
    requires = ("torch", "transformers")
    streaming = True

    def start(self) -> None:
        import torch
        from transformers import AutoConfig, AutoModelForCausalLM

        path = self.check_local_start()
        args = dict(self.engine_args)
        self._batch_size = int(args.pop("batch_size", 32))
        threads = args.pop("threads", None)
        device = args.pop("device", "cuda" if torch.cuda.is_available() else "cpu")
        dtype = args.pop("dtype", "float32" if device == "cpu" else "bfloat16")
        load_format = str(args.pop("load_format", "auto"))
        trusted = _refuse_untrusted_code(path, args)
        config = AutoConfig.from_pretrained(path, **trusted)
        self._torch = torch
        self._device = torch.device(device)
        #: torch's thread count on the generating thread; None leaves torch's default
        self.threads = generation_threads(threads, self._device.type)
        if load_format == weights.DUMMY:  # random weights, on purpose
            model = AutoModelForCausalLM.from_config(config, dtype=getattr(torch, str(dtype)), **args)
        else:
            model, info = AutoModelForCausalLM.from_pretrained(
                path, dtype=getattr(torch, str(dtype)), output_loading_info=True, **args
            )
            problem = weights.loading_problem(path, info)
            if problem:
                raise weights.WeightsError(problem)
        self._model = model.to(self._device).eval()
        self._cancel = threading.Event()
        #: the engine arguments in effect, for ``describe()`` (threads None: torch's default)
        self.effective_args: dict[str, Any] = {
            "batch_size": self._batch_size, "threads": self.threads,
            "device": str(self._device), "dtype": str(dtype), **args,
        }
        if load_format != "auto":
            self.effective_args["load_format"] = load_format
        eos = self.generation.eos_token_ids or _as_tuple(config.eos_token_id)
        self._eos = tuple(int(e) for e in eos)
        pad = getattr(config, "pad_token_id", None)
        self._pad = int(pad) if pad is not None else self._eos[0]
        self._pending: queue.Queue[Any] = queue.Queue()
        self._worker = threading.Thread(target=self._loop, name="mlperf-hf", daemon=True)
        self._worker.start()

    def issue(self, queries: Sequence[Query], responder: Responder) -> None:
        for q in queries:
            self._pending.put((q, responder))

    def close(self) -> None:
        if getattr(self, "_worker", None) is not None:
            self._cancel.set()  # a batch generating now stops at its next token
            self._pending.put(_STOP)
            self._worker.join(timeout=60)
            self._worker = None

    @classmethod
    def check_engine_args(cls, engine_args: Mapping[str, Any]) -> list[str]:
        """What is wrong with the backend's own engine arguments, checked before the model
        loads (the rest go to ``from_pretrained``, which names what it does not take)."""
        problems = []
        for name in ("batch_size", "threads"):
            value = engine_args.get(name)
            if value is not None and (type(value) is not int or value < 1):
                problems.append(f"{name}={value!r} must be a positive integer")
        dtype = engine_args.get("dtype")
        if dtype is not None and str(dtype) not in _DTYPES:
            problems.append(f"dtype={dtype!r} is not one of {', '.join(_DTYPES)}")
        device = engine_args.get("device")
        if device is not None and not re.fullmatch(r"(cpu|cuda|xpu|mps|hpu)(:\d+)?", str(device)):
            problems.append(f"device={device!r} is not a torch device (cpu, cuda, cuda:1, ...)")
        load_format = engine_args.get("load_format")
        if load_format is not None and str(load_format) not in ("auto", weights.DUMMY):
            problems.append(f"load_format={load_format!r} is not auto or {weights.DUMMY}")
        return problems

    def rule_facts(self) -> dict[str, Any]:
        # Each generate() call builds its own KV cache: nothing is kept across queries.
        return {"prefix_caching": False}

    def describe(self) -> dict[str, Any]:
        import torch
        import transformers

        device = getattr(self, "_device", None)
        if device is not None and device.type == "cuda":
            name = torch.cuda.get_device_name(device)
        else:
            name = str(device) if device is not None else "cpu"
        return {"engine": "transformers.generate", "engine_version": transformers.__version__,
                "engine_args": dict(getattr(self, "effective_args", self.engine_args)),
                "device": name, "torch": torch.__version__}

    def configure_thread(self) -> int:
        """Set the calling thread up to generate (see the module doc); the worker calls this
        on itself. Returns torch's thread count before, for :meth:`restore_thread`."""
        before = self._torch.get_num_threads()
        if self.threads:
            cpu.set_torch_threads(self.threads)
        return before

    def restore_thread(self, before: int) -> None:
        """Undo :meth:`configure_thread` (torch also keeps the count process-wide, as the
        default for threads that start later)."""
        if self.threads and self._torch.get_num_threads() != before:
            cpu.set_torch_threads(before)

    # -- worker -------------------------------------------------------------------------------
    def _loop(self) -> None:
        before = self.configure_thread()
        try:
            self._serve()
        finally:
            self.restore_thread(before)

    def _serve(self) -> None:
        waiting: list[tuple[Query, Responder]] = []
        while True:
            if not waiting:
                item = self._pending.get()
                if item is _STOP:
                    return
                waiting.append(item)
            while True:  # take everything already queued, so Offline batches are full
                try:
                    item = self._pending.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    self._pending.put(_STOP)
                    break
                waiting.append(item)
            if self._cancel.is_set():
                # Closing: the queries still waiting are answered failed, not generated (a
                # large Offline run would otherwise prefill every batch left, for minutes).
                closed = RuntimeError("the hf backend was closed before generating this query")
                for responder in {id(r): r for _, r in waiting}.values():
                    responder.fail(closed)
                return
            # Similar lengths together waste less padding; arrival order is kept otherwise.
            waiting.sort(key=lambda qr: len(qr[0].prompt))
            batch, waiting = waiting[: self._batch_size], waiting[self._batch_size :]
            try:
                self._generate(batch)
            except BaseException as exc:  # noqa: BLE001 - the responder ends the run cleanly
                for _, responder in batch:
                    responder.fail(exc)

    def _generate(self, batch: list[tuple[Query, Responder]]) -> None:
        torch = self._torch
        width = max(len(q.prompt) for q, _ in batch)
        ids = torch.full((len(batch), width), self._pad, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, (q, _) in enumerate(batch):  # left padding: generation continues every row
            ids[row, width - len(q.prompt) :] = torch.tensor(list(q.prompt), dtype=torch.long)
            mask[row, width - len(q.prompt) :] = 1
        streamer = _FirstTokenStreamer(batch)
        from transformers import StoppingCriteriaList

        with torch.inference_mode():
            out = self._model.generate(
                input_ids=ids.to(self._device),
                attention_mask=mask.to(self._device),
                do_sample=False,
                max_new_tokens=self.generation.max_new_tokens,
                min_new_tokens=self.generation.min_new_tokens,
                eos_token_id=list(self._eos),
                pad_token_id=self._pad,
                streamer=streamer,
                stopping_criteria=StoppingCriteriaList([_Cancelled(self._cancel)]),
            )
        if self._cancel.is_set():
            raise RuntimeError("the hf backend was closed while generating")
        new = out[:, width:].tolist()
        for row, (q, responder) in enumerate(batch):
            responder.complete(q, until_eos(new[row], self._eos))


class _Cancelled:
    """transformers stopping criterion: every row stops once the backend is closing."""

    def __init__(self, cancel: threading.Event) -> None:
        self._cancel = cancel

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        return torch.full((input_ids.shape[0],), self._cancel.is_set(), dtype=torch.bool,
                          device=input_ids.device)


class _FirstTokenStreamer:
    """transformers streamer: the first ``put`` is the prompt, the second the first new token
    of every row."""

    def __init__(self, batch: list[tuple[Query, Responder]]) -> None:
        self._batch = batch
        self._calls = 0

    def put(self, value: Any) -> None:
        self._calls += 1
        if self._calls == 2:
            for (q, responder), token in zip(self._batch, value.reshape(-1).tolist(), strict=True):
                responder.first_token(q, int(token))

    def end(self) -> None:
        pass


def generation_threads(threads: Any, device: str) -> int | None:
    """torch's thread count for the generating thread: the ``threads`` engine argument, else
    :func:`pytest_mlperf.core.cpu.default_threads` (``OMP_NUM_THREADS``, else one on a small CPU,
    else None: torch's own default)."""
    return int(threads) if threads else cpu.default_threads(small_cpu=device == "cpu")


def until_eos(tokens: list[int], eos: tuple[int, ...]) -> list[int]:
    """Generated ids up to and including the first EOS (as vLLM returns them)."""
    for i, t in enumerate(tokens):
        if t in eos:
            return tokens[: i + 1]
    return tokens


def _as_tuple(value: Any) -> tuple[int, ...]:
    if value is None:
        return ()
    return tuple(value) if isinstance(value, (list, tuple)) else (value,)


def _refuse_untrusted_code(path: Any, args: dict[str, Any]) -> dict[str, Any]:
    """A model folder whose config.json names code of its own runs it only when the user said
    ``trust_remote_code=true``; otherwise it is refused here by name. (Left to transformers, the
    question it asks on the terminal fails on the engine's thread with 'signal only works in
    main thread'.) The keyword arguments for ``AutoConfig``."""
    from pytest_mlperf.data.modelinfo import custom_code

    code = custom_code(path)
    if code is None:
        return {}
    if args.get("trust_remote_code") is True:
        return {"trust_remote_code": True}
    raise ValueError(
        f"the model folder {path} needs Python code of its own (config.json auto_map: {code}); "
        "transformers runs it only when told to: pass --mlperf-engine-arg trust_remote_code=true "
        "if you trust the code in that folder")
