"""The bridge between loadgen's callbacks and a :class:`~pytest_mlperf.backends.base.Backend`."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pytest_mlperf.backends.base import Backend, Query


@dataclass(frozen=True)
class Progress:
    """A run so far, as the bridge saw it (read any time, from any thread)."""

    issued: int
    completed: int
    output_tokens: int
    elapsed_s: float
    #: time to first token and time per output token (after the first) of completed queries
    ttft_s: tuple[float, ...] = ()
    tpot_s: tuple[float, ...] = ()

    @property
    def in_flight(self) -> int:
        return self.issued - self.completed

    @property
    def tokens_per_second(self) -> float:
        return self.output_tokens / self.elapsed_s if self.elapsed_s > 0 else 0.0


class LoadgenResponder:
    """Answers loadgen for a backend; thread-safe, so engines may call it from any thread.

    It keeps the queries in flight so that a broken engine (``fail``) cannot leave loadgen
    waiting forever: every outstanding query is answered empty and the run is marked failed.
    """

    def __init__(self, lg: Any, *, first_token_required: bool) -> None:
        self._lg = lg
        self._lock = threading.Lock()
        self._in_flight: dict[int, Query] = {}
        self._first_sent: set[int] = set()
        self._first_token_required = first_token_required
        self.error: BaseException | None = None
        self.completed = 0
        self.output_tokens = 0
        self.issued = 0
        self._started = time.perf_counter()
        #: response id -> (issue time, first token time or None), for progress figures
        self._times: dict[int, tuple[float, float | None]] = {}
        self._ttft: list[float] = []
        self._tpot: list[float] = []

    def track(self, queries: Sequence[Query]) -> None:
        now = time.perf_counter()
        with self._lock:
            for q in queries:
                self._in_flight[q.response_id] = q
                self._times[q.response_id] = (now, None)
            self.issued += len(queries)

    def progress(self) -> Progress:
        with self._lock:
            return Progress(issued=self.issued, completed=self.completed,
                            output_tokens=self.output_tokens,
                            elapsed_s=time.perf_counter() - self._started,
                            ttft_s=tuple(self._ttft), tpot_s=tuple(self._tpot))

    def first_token(self, query: Query, token_id: int) -> None:
        with self._lock:
            if query.response_id not in self._in_flight or query.response_id in self._first_sent:
                return
            self._first_sent.add(query.response_id)
            issued, _ = self._times.get(query.response_id, (None, None))
            if issued is not None:
                self._times[query.response_id] = (issued, time.perf_counter())
        data = np.asarray([token_id], dtype=np.int32)
        self._lg.FirstTokenComplete(
            [self._lg.QuerySampleResponse(query.response_id, data.ctypes.data, data.nbytes, 1)]
        )

    def complete(self, query: Query, tokens: Sequence[int]) -> None:
        with self._lock:
            if self._in_flight.pop(query.response_id, None) is None:
                return  # already answered (e.g. by fail())
            needs_first = self._first_token_required and query.response_id not in self._first_sent
            self._first_sent.discard(query.response_id)
            self.completed += 1
            self.output_tokens += len(tokens)
            self._record_latency(query.response_id, len(tokens))
        data = np.asarray(tokens, dtype=np.int32)
        if needs_first:
            # A streaming scenario must see a first token before completion (loadgen's
            # accuracy log reads it for every query); this one is honest: its TTFT equals the
            # full latency, and an empty answer gets an empty first token.
            self._lg.FirstTokenComplete(
                [self._lg.QuerySampleResponse(query.response_id, data.ctypes.data, min(4, data.nbytes), 1)]
            )
        self._lg.QuerySamplesComplete(
            [self._lg.QuerySampleResponse(query.response_id, data.ctypes.data, data.nbytes, len(data))]
        )

    def _record_latency(self, response_id: int, n_tokens: int) -> None:
        """TTFT and TPOT of a completed query (called under the lock)."""
        issued, first = self._times.pop(response_id, (None, None))
        if issued is None:
            return
        now = time.perf_counter()
        first = first if first is not None else now
        self._ttft.append(first - issued)
        if n_tokens > 1:
            self._tpot.append((now - first) / (n_tokens - 1))

    def fail(self, error: BaseException) -> None:
        with self._lock:
            if self.error is None:
                self.error = error
            pending = list(self._in_flight.values())
            self._in_flight.clear()
            no_first = [q for q in pending if q.response_id not in self._first_sent] if self._first_token_required else []
            self._first_sent.difference_update(q.response_id for q in pending)
        empty = np.zeros(1, dtype=np.int32)
        if no_first:
            # Without a first token loadgen's accuracy log reads a null pointer: measured,
            # loadgen 6.0.17 segfaults in AsyncLog::LogAccuracy (and takes the logs with it).
            self._lg.FirstTokenComplete(
                [self._lg.QuerySampleResponse(q.response_id, empty.ctypes.data, 0, 0) for q in no_first]
            )
        responses = [self._lg.QuerySampleResponse(q.response_id, empty.ctypes.data, 0, 0) for q in pending]
        if responses:
            self._lg.QuerySamplesComplete(responses)

    @property
    def in_flight(self) -> int:
        with self._lock:
            return len(self._in_flight)


class LoadgenSUT:
    """Owns loadgen's SUT handle for one run: query samples -> Queries -> backend."""

    def __init__(self, lg: Any, backend: Backend, prompts: Sequence[Sequence[int]], responder: LoadgenResponder) -> None:
        self._lg = lg
        self._backend = backend
        self._prompts = prompts
        self.responder = responder
        self.handle = lg.ConstructSUT(self._issue, self._flush)

    def _issue(self, samples: Sequence[Any]) -> None:
        queries = [Query(s.id, s.index, self._prompts[s.index]) for s in samples]
        self.responder.track(queries)
        if self.responder.error is not None:
            self.responder.fail(self.responder.error)
            return
        try:
            self._backend.issue(queries, self.responder)
        except BaseException as exc:  # noqa: BLE001 - any engine error must end the run, not hang it
            self.responder.fail(exc)

    def _flush(self) -> None:
        try:
            self._backend.flush()
        except BaseException as exc:  # noqa: BLE001
            self.responder.fail(exc)

    def destroy(self) -> None:
        self._lg.DestroySUT(self.handle)
