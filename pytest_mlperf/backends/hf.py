"""The transformers backend: batched greedy generation, token ids in and out, as the
reference SUT. Streaming too: a generation streamer reports each row's first token, so it can
serve Server/SingleStream/Interactive (at CPU-model speeds)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence
from typing import Any

from pytest_mlperf.backends.base import Backend, Query, Responder

_STOP = object()


class HFBackend(Backend):
    name = "hf"
    streaming = True

    def start(self) -> None:
        import torch
        from transformers import AutoConfig, AutoModelForCausalLM

        args = dict(self.model.engine_args)
        self._batch_size = int(args.pop("batch_size", 32))
        threads = args.pop("threads", None)
        if threads:
            torch.set_num_threads(int(threads))
        device = args.pop("device", "cuda" if torch.cuda.is_available() else "cpu")
        dtype = args.pop("dtype", "float32" if device == "cpu" else "bfloat16")
        config = AutoConfig.from_pretrained(self.model.path)
        self._torch = torch
        self._device = torch.device(device)
        self._model = AutoModelForCausalLM.from_pretrained(
            self.model.path, dtype=getattr(torch, str(dtype)), **args
        ).to(self._device).eval()
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
            self._pending.put(_STOP)
            self._worker.join(timeout=60)
            self._worker = None

    def describe(self) -> dict[str, Any]:
        import transformers

        return {**super().describe(), "transformers": transformers.__version__,
                "torch": self._torch.__version__, "device": str(self._device),
                "batch_size": self._batch_size}

    # -- worker -------------------------------------------------------------------------------
    def _loop(self) -> None:
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
            )
        new = out[:, width:].tolist()
        for row, (q, responder) in enumerate(batch):
            responder.complete(q, _until_eos(new[row], self._eos))


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


def _until_eos(tokens: list[int], eos: tuple[int, ...]) -> list[int]:
    """Generated ids up to and including the first EOS (as vLLM returns them)."""
    for i, t in enumerate(tokens):
        if t in eos:
            return tokens[: i + 1]
    return tokens


def _as_tuple(value: Any) -> tuple[int, ...]:
    if value is None:
        return ()
    return tuple(value) if isinstance(value, (list, tuple)) else (value,)
