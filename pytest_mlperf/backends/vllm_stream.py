"""vLLM for Server, SingleStream and Interactive: ``AsyncLLM`` on one long-lived event loop,
every query in flight at once, the first token reported as soon as the engine yields it.

(The reference Server SUT keeps one query per worker thread and calls ``asyncio.run`` per
query, which caps concurrency and kills the engine: mlcommons/inference#2341.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from pytest_mlperf.backends import vllm_common
from pytest_mlperf.backends.base import Backend, Query, Responder


class VllmStreamBackend(Backend):
    name = "vllm"
    streaming = True

    _engine: vllm_common.SharedEngine | None = None

    def start(self) -> None:
        from vllm.inputs import TokensPrompt

        self._engine = vllm_common.acquire(self.model, streaming=True)
        self._tokens_prompt = TokensPrompt
        # DELTA: each step hands over only the new tokens, no copy of the whole output so far.
        self._params = vllm_common.sampling_params(self.generation, output_kind="DELTA")
        self._tasks: set[asyncio.Task[None]] = set()

    def issue(self, queries: Sequence[Query], responder: Responder) -> None:
        assert self._engine is not None and self._engine.loop is not None
        # One wake-up of the loop for the whole call; the loop creates one task per query.
        self._engine.loop.call_soon_threadsafe(self._spawn, list(queries), responder)

    def _spawn(self, queries: list[Query], responder: Responder) -> None:
        assert self._engine is not None and self._engine.loop is not None
        for query in queries:
            task = self._engine.loop.create_task(self._serve(query, responder))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _serve(self, query: Query, responder: Responder) -> None:
        assert self._engine is not None
        tokens: list[int] = []
        try:
            async for out in self._engine.async_engine.generate(
                self._tokens_prompt(prompt_token_ids=list(query.prompt)),
                self._params,
                request_id=vllm_common.next_request_id("s"),
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

    def close(self) -> None:
        engine, self._engine = self._engine, None
        if engine is None:
            return
        if engine.loop is not None and self._tasks:
            async def cancel_all() -> None:
                tasks = list(self._tasks)
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

            asyncio.run_coroutine_threadsafe(cancel_all(), engine.loop).result(timeout=60)
        vllm_common.release(engine)

    def describe(self) -> dict[str, Any]:
        info = {**super().describe(), **vllm_common.versions(), "engine": "AsyncLLM"}
        if self._engine is not None:
            info.update({k: v for k, v in self._engine.kwargs.items() if k != "model"})
        return info
