"""The bridge between loadgen's callbacks and a :class:`~pytest_mlperf.backends.base.Backend`.

What it guarantees, whatever the backend does (docs/reliability.md):

- loadgen's issue thread never runs backend code: queries go to the backend on a dispatcher
  thread of their own, so an ``issue()`` that blocks or raises cannot stall loadgen;
- every query loadgen issued is answered exactly once: an answer the bridge cannot pass on
  (ids that are not token ids, a second answer, an answer to a query never issued) fails the
  run, and failing the run answers every query still in flight, empty;
- once a run is over (:meth:`LoadgenResponder.close`), nothing reaches loadgen any more, so a
  late answer cannot touch a finished run's memory.
"""

from __future__ import annotations

import array
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pytest_mlperf.backends.base import Backend, Query

_INT32_MAX = 2**31 - 1
#: the array typecode of a C int32 (what loadgen's token buffers hold)
_INT32 = next(code for code in ("i", "l") if array.array(code).itemsize == 4)


class BackendFault(RuntimeError):
    """The backend broke the responder's contract; the message names the query and what was wrong."""


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
    #: the queries loadgen laid out for the run, once its detail log says (not Offline's one)
    laid_out: int | None = None

    @property
    def in_flight(self) -> int:
        return self.issued - self.completed

    @property
    def tokens_per_second(self) -> float:
        return self.output_tokens / self.elapsed_s if self.elapsed_s > 0 else 0.0


def token_ids(tokens: Any, vocab_size: int | None = None) -> tuple[np.ndarray | None, str | None]:
    """``tokens`` as loadgen's int32 array, or ``(None, what is wrong with them)``. Never raises:
    a backend's bad answer must become a failed run, not an exception on its own thread. (On
    every answer, so the common case costs one reduction: negative ids wrap around as
    unsigned, and one maximum checks both ends.)"""
    try:
        array = np.asarray(tokens)
    except Exception as exc:  # noqa: BLE001 - ragged or otherwise unconvertible
        return None, f"token ids that are not a flat list of integers ({type(exc).__name__}: {exc})"
    if array.ndim != 1:
        return None, f"token ids shaped {array.shape}, not a flat list"
    if array.size == 0:
        return np.zeros(0, dtype=np.int32), None
    if array.dtype.kind not in "iu":
        items = list(tokens) if isinstance(tokens, (list, tuple)) else array.tolist()
        bad = next((t for t in items if type(t) is not int), items[0])
        return None, f"{bad!r} ({type(bad).__name__}) among its token ids, which must be integers"
    limit = _INT32_MAX if vocab_size is None else vocab_size - 1
    if int(array.astype(np.uint64, copy=False).max()) > limit:
        low, high = int(array.min()), int(array.max())
        bad = low if low < 0 else high
        bound = "int32" if vocab_size is None or high > _INT32_MAX else f"the model's vocabulary ({vocab_size} ids)"
        return None, f"token id {bad} outside {bound}"
    return array.astype(np.int32), None


def _fast_ids(tokens: Any, limit: int) -> array.array[int] | None:
    """The common answer, a non-empty list or tuple of Python ints (or an int32 ``array``) in
    ``[0, limit]``, as an int32 buffer without numpy (a tenth of its cost a query); None:
    anything else, which :func:`token_ids` then judges (the same verdict either way: ``array``
    refuses what is not an int or overflows int32, a list of bools only is left to numpy's
    rule)."""
    if type(tokens) is array.array and tokens.typecode == _INT32 and tokens:
        buffer = tokens  # already loadgen's layout (the openai client processes send these)
    elif type(tokens) not in (list, tuple) or not tokens or type(tokens[0]) is bool:
        return None
    else:
        try:
            buffer = array.array(_INT32, tokens)
        except (TypeError, OverflowError):
            return None
    return buffer if min(buffer) >= 0 and max(buffer) <= limit else None


def _token_id(token_id: Any, vocab_size: int | None) -> str | None:
    """What is wrong with one token id, or None (the hot path: no numpy)."""
    if isinstance(token_id, bool) or not isinstance(token_id, (int, np.integer)):
        return f"{token_id!r} ({type(token_id).__name__}) is not a token id"
    limit = _INT32_MAX if vocab_size is None else vocab_size - 1
    if not 0 <= token_id <= limit:
        bound = "int32" if vocab_size is None or token_id > _INT32_MAX else f"the model's vocabulary ({vocab_size} ids)"
        return f"token id {token_id} outside {bound}"
    return None


class LoadgenResponder:
    """Answers loadgen for a backend; thread-safe, so engines may call it from any thread.

    It keeps the queries in flight so that a broken engine (``fail``) cannot leave loadgen
    waiting forever: every outstanding query is answered empty and the run is marked failed.
    Every call into loadgen happens under the responder's lock, so an answer and ``fail`` can
    never both answer one query.
    """

    def __init__(self, lg: Any, *, first_token_required: bool, vocab_size: int | None = None) -> None:
        self._lg = lg
        self._lock = threading.Lock()
        #: response id -> [query, issue time, first token time or None], while in flight
        self._in_flight: dict[int, list[Any]] = {}
        #: response ids answered by the backend (a second answer is a fault)
        self._answered: set[int] = set()
        self._first_token_required = first_token_required
        self._vocab_size = vocab_size
        self._limit = _INT32_MAX if vocab_size is None else vocab_size - 1
        #: the first token's buffer, reused (loadgen copies a response before its call returns,
        #: and every call into loadgen is made under the lock)
        self._first = array.array(_INT32, [0])
        self._first_address = self._first.buffer_info()[0]
        self._closed = False
        self.error: BaseException | None = None
        self.completed = 0
        self.output_tokens = 0
        #: answers of no token at all from the engine (not the bridge's own to a failed run)
        self.empty_answers = 0
        self.issued = 0
        self._started = time.perf_counter()
        self._ttft: list[float] = []
        self._tpot: list[float] = []

    def track(self, queries: Sequence[Query]) -> bool:
        """Queries loadgen just issued. False when the run has failed already: they are then
        answered here, at once, and must not go to the backend."""
        now = time.perf_counter()
        with self._lock:
            self.issued += len(queries)
            for q in queries:
                self._in_flight[q.response_id] = [q, now, None]
            if self.error is None and not self._closed:
                return True
            self._answer_empty(list(queries))
            return False

    def progress(self) -> Progress:
        with self._lock:
            return Progress(issued=self.issued, completed=self.completed,
                            output_tokens=self.output_tokens,
                            elapsed_s=time.perf_counter() - self._started,
                            ttft_s=tuple(self._ttft), tpot_s=tuple(self._tpot))

    def first_token(self, query: Query, token_id: int) -> None:
        problem = _token_id(token_id, self._vocab_size)
        with self._lock:
            if self.error is not None or self._closed:
                return  # the run is over or failed: late answers are expected, and dropped
            rid = query.response_id
            state = self._in_flight.get(rid)
            if state is None:
                fault = self._misaddressed(query, "a first token")
            elif state[2] is not None:
                fault = f"{_name(query)}: first token reported twice"
            elif problem is not None:
                fault = f"{_name(query)}: first token: {problem}"
            else:
                state[2] = time.perf_counter()
                self._first[0] = token_id
                self._lg.FirstTokenComplete(
                    [self._lg.QuerySampleResponse(rid, self._first_address, 4, 1)]
                )
                return
        self.fail(BackendFault(fault))

    def complete(self, query: Query, tokens: Sequence[int]) -> None:
        fast = _fast_ids(tokens, self._limit)
        if fast is not None:
            data: Any = fast
            address, count = fast.buffer_info()
            problem = None
        else:
            data, problem = token_ids(tokens, self._vocab_size)
            address, count = (data.ctypes.data, len(data)) if data is not None else (0, 0)
        with self._lock:
            if self.error is not None or self._closed:
                return
            rid = query.response_id
            state = self._in_flight.pop(rid, None)
            if state is None:
                fault = self._misaddressed(query, "an answer")
            elif problem is not None:
                self._in_flight[rid] = state  # still in flight: fail() answers it
                fault = f"{_name(query)}: {problem}"
            else:
                self._answered.add(rid)
                self.completed += 1
                self.output_tokens += count
                self.empty_answers += not count
                now = time.perf_counter()
                first = state[2]
                self._ttft.append((first if first is not None else now) - state[1])
                if count > 1:
                    self._tpot.append((now - (first if first is not None else now)) / (count - 1))
                if first is None and self._first_token_required:
                    # A streaming scenario must see a first token before completion (loadgen's
                    # accuracy log reads it for every query); this one is honest: its TTFT
                    # equals the full latency, and an empty answer gets an empty first token.
                    self._lg.FirstTokenComplete(
                        [self._lg.QuerySampleResponse(rid, address, min(4, 4 * count), 1)]
                    )
                self._lg.QuerySamplesComplete(
                    [self._lg.QuerySampleResponse(rid, address, 4 * count, count)]
                )
                del data  # the buffer lives until loadgen has copied it
                return
        self.fail(BackendFault(fault))

    def _misaddressed(self, query: Query, what: str) -> str:
        """Why ``query``, not in flight, cannot take ``what`` (under the lock)."""
        rid = query.response_id
        if rid in self._answered:
            twice = " (answered twice)" if what == "an answer" else ""
            return f"{_name(query)}: {what} after it was answered already{twice}"
        return f"{what} for a query loadgen never issued ({_name(query)})"

    def fail(self, error: BaseException) -> None:
        """End the run as failed with ``error`` (the first one wins): every query in flight is
        answered empty now, and every query loadgen issues later is answered at once."""
        with self._lock:
            if self.error is None:
                self.error = error
            if self._closed:
                return
            self._answer_empty([state[0] for state in self._in_flight.values()])

    def _answer_empty(self, pending: list[Query]) -> None:
        """Answer ``pending`` empty (under the lock)."""
        if not pending:
            return
        no_first = []
        for q in pending:
            state = self._in_flight.pop(q.response_id, None)
            if state is None or state[2] is None:
                no_first.append(q)
        empty = np.zeros(1, dtype=np.int32)
        if self._first_token_required and no_first:
            # Without a first token loadgen's accuracy log reads a null pointer: measured,
            # loadgen 6.0.17 segfaults in AsyncLog::LogAccuracy (and takes the logs with it).
            self._lg.FirstTokenComplete(
                [self._lg.QuerySampleResponse(q.response_id, empty.ctypes.data, 0, 0) for q in no_first]
            )
        self._lg.QuerySamplesComplete(
            [self._lg.QuerySampleResponse(q.response_id, empty.ctypes.data, 0, 0) for q in pending]
        )

    def close(self) -> None:
        """The run is over: from now on nothing reaches loadgen (its response ids are gone)."""
        with self._lock:
            self._closed = True

    @property
    def in_flight(self) -> int:
        with self._lock:
            return len(self._in_flight)


def _name(query: Query) -> str:
    return f"query {query.response_id} (sample {query.sample_index})"


_STOP = object()


class LoadgenSUT:
    """Owns loadgen's SUT handle for one run: query samples -> Queries -> backend.

    loadgen calls ``_issue`` and ``_flush`` on its own issue thread, and the bridge only queues
    the work there; a dispatcher thread hands it to the backend, so a backend that blocks in
    ``issue()`` holds up that thread, never loadgen's schedule or the watchdog's ``fail``.

    A busy dispatcher (woken again within ``BUSY_S`` of finishing its last batch: queries
    arrive faster than ~5,000 a second) lets the queue fill for ``LINGER_S`` before it takes
    it, so that one wake-up and one ``issue()`` carry many queries: handing queries from
    thread to thread one at a time costs more than answering them. That adds at most
    ``LINGER_S`` (and the sleep's lateness) to those queries' time to first token, and only
    at such rates; below them every query goes on at once.
    """

    BUSY_S = 0.0002
    LINGER_S = 0.001

    def __init__(self, lg: Any, backend: Backend, prompts: Sequence[Sequence[int]], responder: LoadgenResponder) -> None:
        self._lg = lg
        self._backend = backend
        self._prompts = prompts
        self.responder = responder
        self._work: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._dispatcher = threading.Thread(target=self._dispatch, name="mlperf-dispatch", daemon=True)
        self._dispatcher.start()
        self.handle = lg.ConstructSUT(self._issue, self._flush)

    def _issue(self, samples: Sequence[Any]) -> None:
        try:
            queries = [Query(s.id, s.index, self._prompts[s.index]) for s in samples]
            if self.responder.track(queries):
                self._work.put(queries)
        except BaseException as exc:  # noqa: BLE001 - nothing may escape into loadgen's C++
            self.responder.fail(exc)

    def _flush(self) -> None:
        self._work.put(None)

    def _dispatch(self) -> None:
        finished = 0.0
        while True:
            items = [self._work.get()]
            if time.perf_counter() - finished < self.BUSY_S and items[-1] is not _STOP:
                time.sleep(self.LINGER_S)
            # What queued up meanwhile goes to the engine in one issue() (under a high query
            # rate, one wake-up of this thread per query would cost more than the queries).
            while items[-1] is not _STOP and items[-1] is not None:
                try:
                    items.append(self._work.get_nowait())
                except queue.Empty:
                    break
            queries = [q for item in items if isinstance(item, list) for q in item]
            try:
                if queries and self.responder.error is None:
                    self._backend.issue(queries, self.responder)
                if items[-1] is None and self.responder.error is None:
                    self._backend.flush()
            except BaseException as exc:  # noqa: BLE001 - any engine error must end the run, not hang it
                self.responder.fail(exc)
            if items[-1] is _STOP:
                return
            finished = time.perf_counter()

    def destroy(self) -> None:
        """After the run: stop the dispatcher (once it is free) and release loadgen's handle."""
        self._work.put(_STOP)
        self._lg.DestroySUT(self.handle)
