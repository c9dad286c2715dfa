"""vLLM for the Offline scenario: ``LLM.generate`` over everything loadgen issued, token ids
in and out, greedy as the reference SUT."""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence
from typing import Any

from pytest_mlperf.backends import vllm_common
from pytest_mlperf.backends.base import Backend, Query, Responder

_STOP = object()


class VllmOfflineBackend(Backend):
    name = "vllm"
    streaming = False

    _engine: vllm_common.SharedEngine | None = None
    _worker: threading.Thread | None = None

    def start(self) -> None:
        self._engine = vllm_common.acquire(self.model, streaming=False)
        self._params = vllm_common.sampling_params(self.generation)
        self._pending: queue.Queue[Any] = queue.Queue()
        self._worker = threading.Thread(target=self._loop, name="mlperf-vllm-offline", daemon=True)
        self._worker.start()

    @property
    def llm(self) -> Any:
        """The ``vllm.LLM`` this backend generates with (None once AsyncLLM serves the model)."""
        return self._engine.llm if self._engine is not None else None

    def issue(self, queries: Sequence[Query], responder: Responder) -> None:
        self._pending.put((list(queries), responder))

    def _loop(self) -> None:
        vllm_common.configure_engine_thread()
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
            self._generate(batches)
            if stop:
                return

    def _generate(self, batches: list[tuple[list[Query], Responder]]) -> None:
        assert self._engine is not None
        work = [(q, responder) for queries, responder in batches for q in queries]
        try:
            outputs = self._engine.generate_all([q.prompt for q, _ in work], self._params)
        except BaseException as exc:  # noqa: BLE001 - report any engine failure to loadgen
            for responder in {id(r): r for _, r in work}.values():
                responder.fail(exc)
            return
        for (query, responder), tokens in zip(work, outputs, strict=True):
            responder.complete(query, tokens)

    def close(self) -> None:
        if self._worker is not None:
            self._pending.put(_STOP)
            self._worker.join()
            self._worker = None
        if self._engine is not None:
            engine, self._engine = self._engine, None
            vllm_common.release(engine)

    def describe(self) -> dict[str, Any]:
        info = {**super().describe(), **vllm_common.versions()}
        if self._engine is not None:
            info.update({k: v for k, v in self._engine.kwargs.items() if k != "model"})
            info["engine"] = "LLM" if self._engine.llm is not None else "AsyncLLM"
        return info
