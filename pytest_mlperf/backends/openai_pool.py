"""The openai backend's client over several processes (``--mlperf-client-processes``).

One asyncio loop streams about 1,400 answers of 128 tokens a second (~700 CPU us a query:
HTTP, server-sent events, JSON); a controller in front of a fleet needs several times that.
Here loadgen and its bridge stay in the controller, and N spawned processes do the HTTP:

- The controller picks each query's endpoint (fewest outstanding, then fewest sent, over every
  process, as the one-loop client does) and its process (fewest outstanding), and sends
  ``(response id, endpoint, sample index)`` down that process's pipe, one write per
  ``issue()``; a prompt's JSON crosses once per run and process, then its sample index names it.
- Each process streams with its own event loop and aiohttp session, through the same code as
  the one-loop client (:class:`pytest_mlperf.backends.openai_stream.Streamer`: every answer checked
  the same way), and sends back the first token the moment it is read and then the whole
  answer with the server's token count, batched per turn of its loop.
- A reader thread in the controller calls the responder. Loadgen stamps ``FirstTokenComplete``
  and ``QuerySamplesComplete`` when they are called, so TTFT and TPOT include the pipe (tens of
  microseconds), as they include the HTTP stack in the one-loop client.
- A failure in a process (an endpoint's error, named as the one-loop client names it) fails the
  run and cancels every process's requests; a process that dies fails the run, named. Each run
  has a number: answers of an earlier run still in a pipe are dropped, not given to a query of
  the next one that loadgen happened to give the same response id.
- The processes ignore SIGINT and SIGTERM (the controller decides what an interrupt means, and
  closes them) and exit when the controller's pipe closes, so none outlives it.

Messages are msgpack (msgspec): to a process ``[kind, run, payload]``; from one ``[run, events]``.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection, wait
from typing import Any

from pytest_mlperf.backends.base import Query, Responder
from pytest_mlperf.backends.openai_stream import (
    Endpoint,
    EndpointError,
    Streamer,
    cancel_and_close,
    connection_limit,
    decoders,
    least_busy,
    new_loop,
    new_session,
)

# to a process
_QUERIES, _RESET, _CANCEL, _STOP = 0, 1, 2, 3
# from a process
_FIRST, _DONE, _FAILED, _READY, _BROKEN = 0, 1, 2, 3, 4

#: answers cross as int32 bytes, the layout loadgen takes (no list of ints to build twice)
_INT32 = next(code for code in ("i", "l") if array.array(code).itemsize == 4)

#: seconds a process may take to import the client and open its session
START_TIMEOUT_S = 120.0


class ClientProcessError(RuntimeError):
    """A client process could not start, or died."""


class _Process:
    """The controller's handle on one client process."""

    def __init__(self, index: int, process: Any, commands: Connection, events: Connection) -> None:
        self.index = index
        self.process = process
        self.commands = commands
        self.events = events
        self.outstanding = 0
        #: sample indexes whose prompt this process holds in the current run
        self.prompts: set[int] = set()
        self.client = ""

    def name(self) -> str:
        return f"client process {self.index} (pid {self.process.pid})"


class ClientPool:
    """N client processes behind one ``issue()`` (see the module doc).

    ``endpoints`` are the backend's own endpoint objects (``url``, ``head``, ``tail``,
    ``outstanding``, ``counts``): the pool counts each one's requests as the one-loop client
    does, so the record reads the same either way. ``prompt_json(prompt)`` is the prompt as the
    JSON the request carries.
    """

    def __init__(self, processes: int, endpoints: Sequence[Any], *, headers: dict[str, str],
                 timeout: float, prompt_json: Callable[[Sequence[int]], bytes]) -> None:
        if processes < 1:
            raise ValueError("a client pool needs at least one process")
        self.size = processes
        self._endpoints = list(endpoints)
        self._headers = headers
        self._timeout = timeout
        self._prompt_json = prompt_json
        self._procs: list[_Process] = []
        #: response id -> (query, endpoint index, process) while in flight
        self._pending: dict[int, tuple[Query, int, _Process]] = {}
        self._responder: Responder | None = None
        self._run = 0
        #: endpoint and process counts change on the dispatcher's thread and the reader's
        self._count_lock = threading.Lock()
        #: one writer at a time per pipe (the dispatcher issues, the reader cancels)
        self._send_lock = threading.Lock()
        self._reader: threading.Thread | None = None
        self._closing = False
        #: why the pool cannot take queries (a process died between runs), or None
        self._broken: str | None = None
        self._encode: Any = None
        self._decode: Any = None

    # -- lifetime -----------------------------------------------------------------------------
    def start(self) -> None:
        import msgspec

        self._encode = msgspec.msgpack.Encoder().encode
        self._decode = msgspec.msgpack.Decoder().decode
        context = multiprocessing.get_context("spawn")
        config = {"endpoints": [(e.url, e.completions, e.head, e.tail) for e in self._endpoints],
                  "headers": self._headers, "timeout": self._timeout}
        try:
            for index in range(self.size):
                cmd_read, cmd_write = context.Pipe(duplex=False)
                ev_read, ev_write = context.Pipe(duplex=False)
                process = context.Process(target=worker_main, args=(cmd_read, ev_write, config),
                                          name=f"mlperf-openai-client-{index}", daemon=True)
                process.start()
                cmd_read.close()
                ev_write.close()
                self._procs.append(_Process(index, process, cmd_write, ev_read))
            deadline = time.monotonic() + START_TIMEOUT_S
            for proc in self._procs:
                self._await_ready(proc, deadline)
        except BaseException:
            self.close()
            raise
        self._reader = threading.Thread(target=self._read, name="mlperf-openai-pool-reader",
                                        daemon=True)
        self._reader.start()

    def _await_ready(self, proc: _Process, deadline: float) -> None:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ClientProcessError(f"{proc.name()} did not start within "
                                         f"{START_TIMEOUT_S:g} s")
            if proc.events.poll(min(left, 0.5)):
                try:
                    _run, events = self._decode(proc.events.recv_bytes())
                except EOFError:
                    proc.process.join(5)
                    raise ClientProcessError(f"{proc.name()} exited at start (exit code "
                                             f"{proc.process.exitcode})") from None
                kind, payload = events[0][0], events[0][1:]
                if kind == _BROKEN:
                    raise ClientProcessError(f"{proc.name()} could not start: {payload[0]}")
                proc.client = str(payload[1])
                return
            if not proc.process.is_alive():
                raise ClientProcessError(f"{proc.name()} exited at start (exit code "
                                         f"{proc.process.exitcode})")

    def pids(self) -> list[int]:
        return [p.process.pid for p in self._procs]

    def describe(self) -> str:
        clients = sorted({p.client for p in self._procs if p.client})
        return f"{', '.join(clients)}, in {self.size} processes"

    def close(self) -> None:
        """Stop every process (they finish nothing: a run in flight has been answered or
        failed by now) and the reader."""
        self._closing = True
        for proc in self._procs:
            with contextlib.suppress(OSError, ValueError):
                self._send(proc, _STOP, None)
        for proc in self._procs:
            proc.process.join(10)
            if proc.process.is_alive():
                proc.process.kill()
                proc.process.join(5)
            with contextlib.suppress(OSError):
                proc.commands.close()
        if self._reader is not None:
            self._reader.join(10)
            self._reader = None
        for proc in self._procs:
            with contextlib.suppress(OSError):
                proc.events.close()
        self._procs = []

    # -- runs ---------------------------------------------------------------------------------
    def reset(self) -> None:
        """Before a run: a new run number, every process drops its prompts and requests."""
        if self._broken is not None:
            raise ClientProcessError(self._broken)
        self._run += 1
        self._pending.clear()
        for proc in self._procs:
            proc.outstanding = 0
            proc.prompts.clear()
            self._send(proc, _RESET, None)

    def issue(self, queries: Sequence[Query], responder: Responder) -> None:
        if self._broken is not None:
            raise ClientProcessError(self._broken)
        self._responder = responder
        batches: dict[int, list[Any]] = {}
        endpoints, procs, pending = self._endpoints, self._procs, self._pending
        with self._count_lock:
            for query in queries:
                e_index = least_busy(endpoints)
                endpoint = endpoints[e_index]
                endpoint.outstanding += 1
                endpoint.counts.requests += 1
                proc = min(procs, key=lambda p: p.outstanding)
                proc.outstanding += 1
                pending[query.response_id] = (query, e_index, proc)
                index = query.sample_index
                if index in proc.prompts:
                    entry = [query.response_id, e_index, index]
                else:
                    proc.prompts.add(index)
                    entry = [query.response_id, e_index, index, self._prompt_json(query.prompt),
                             len(query.prompt)]
                batches.setdefault(proc.index, []).append(entry)
        for index, batch in batches.items():
            try:
                self._send(procs[index], _QUERIES, batch)
            except OSError:  # it went away since the last answer: named, not "Broken pipe"
                raise ClientProcessError(self._gone(procs[index])) from None

    def cancel(self) -> None:
        """Every process drops its requests (a run failed). Sent from a thread of its own: the
        reader must not wait on a pipe a process cannot drain while it waits on the reader."""

        def send() -> None:
            for proc in list(self._procs):
                with contextlib.suppress(OSError, ValueError):
                    self._send(proc, _CANCEL, None)

        threading.Thread(target=send, name="mlperf-openai-pool-cancel", daemon=True).start()

    def _send(self, proc: _Process, kind: int, payload: Any) -> None:
        data = self._encode([kind, self._run, payload])
        with self._send_lock:
            proc.commands.send_bytes(data)

    # -- answers: the reader thread -------------------------------------------------------------
    def _read(self) -> None:
        by_conn = {proc.events: proc for proc in self._procs}
        while by_conn:
            for conn in wait(list(by_conn)):
                proc = by_conn[conn]  # type: ignore[index]
                try:
                    # every message the pipe holds now, then wait again (one wait per batch)
                    while True:
                        self._deliver(conn.recv_bytes())  # type: ignore[union-attr]
                        if not conn.poll():  # type: ignore[union-attr]
                            break
                except (EOFError, OSError):
                    del by_conn[conn]  # type: ignore[arg-type]
                    if not self._closing:
                        self._died(proc)

    def _deliver(self, data: bytes) -> None:
        try:
            run, events = self._decode(data)
            if run == self._run:
                self._answer(run, events)
        except BaseException as exc:  # noqa: BLE001 - a broken answer ends the run, named
            responder = self._responder
            if responder is not None:
                responder.fail(exc)

    def _answer(self, run: int, events: list[Any]) -> None:
        pending, responder = self._pending, self._responder
        if responder is None:
            return
        for event in events:
            if self._run != run:  # a new run began meanwhile: the rest is the old run's
                return
            kind = event[0]
            if kind == _FIRST:
                entry = pending.get(event[1])
                if entry is not None:
                    responder.first_token(entry[0], event[2])
                continue
            entry = pending.pop(event[1], None)
            if entry is None:
                continue
            query, e_index, proc = entry
            endpoint = self._endpoints[e_index]
            with self._count_lock:
                endpoint.outstanding -= 1
                proc.outstanding -= 1
                if kind == _DONE:
                    tokens = array.array(_INT32)
                    tokens.frombytes(event[2])
                    endpoint.counts.completed += 1
                    endpoint.counts.output_tokens += len(tokens)
                    endpoint.counts.server_output_tokens += event[3]
                else:
                    endpoint.counts.failed += 1
            if kind == _DONE:
                responder.complete(query, tokens)
            else:
                responder.fail(EndpointError(endpoint.url, event[2]))
                self.cancel()

    @staticmethod
    def _gone(proc: _Process) -> str:
        """How ``proc`` ended, for the run's failure (the reader or ``issue`` finds out first)."""
        proc.process.join(2)
        code = proc.process.exitcode
        how = (f"was killed by signal {-code}" if code is not None and code < 0
               else f"exited (exit code {code})")
        return f"{proc.name()} {how}: the openai backend's client is gone (--mlperf-client-processes)"

    def _died(self, proc: _Process) -> None:
        self._broken = self._gone(proc)
        responder = self._responder
        if responder is not None:
            responder.fail(ClientProcessError(self._broken))
        self.cancel()


# -- a client process -----------------------------------------------------------------------------


def worker_main(commands: Connection, events: Connection, config: dict[str, Any]) -> None:
    """A client process: stream what the controller sends until it says stop or goes away."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    import msgspec

    encode = msgspec.msgpack.Encoder().encode
    try:
        loop, name = new_loop()
        asyncio.set_event_loop(loop)
        worker = _Worker(commands, events, config, loop, encode)
        loop.run_until_complete(worker.open(name))
    except BaseException as exc:  # noqa: BLE001 - told to the controller, which names it
        with contextlib.suppress(OSError):
            events.send_bytes(encode([0, [[_BROKEN, f"{type(exc).__name__}: {exc}"]]]))
        return
    try:
        loop.run_until_complete(worker.serve())
    finally:
        loop.run_until_complete(worker.shut())
        loop.close()


class _Worker:
    def __init__(self, commands: Connection, events: Connection, config: dict[str, Any],
                 loop: asyncio.AbstractEventLoop, encode: Any) -> None:
        import msgspec

        self.commands = commands
        self.events = events
        self.loop = loop
        self.encode = encode
        self.decode = msgspec.msgpack.Decoder().decode
        self.endpoints = [Endpoint(url=url, completions=completions, head=head, tail=tail)
                          for url, completions, head, tail in config["endpoints"]]
        self.headers = config["headers"]
        self.timeout = float(config["timeout"])
        api_key = self.headers.get("Authorization", "").removeprefix("Bearer ") or None
        decode_one, decode_many = decoders()
        self.streamer = Streamer(decode_one, decode_many, None, self.timeout, api_key)
        self.session: Any = None
        self.run = 0
        #: sample index -> (prompt JSON, prompt length), for the current run
        self.prompts: dict[int, tuple[bytes, int]] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.outbox: list[Any] = []
        self.flush_scheduled = False
        self.stopped: asyncio.Future[None] | None = None

    async def open(self, loop_name: str) -> None:
        import aiohttp

        self.session = new_session(connection_limit(len(self.endpoints)), self.timeout, self.headers)
        self.stopped = self.loop.create_future()
        self.events.send_bytes(self.encode([0, [[_READY, os.getpid(),
                                                 f"aiohttp {aiohttp.__version__} on {loop_name}"]]]))

    async def serve(self) -> None:
        """Commands are read on a thread of their own (a blocking read of whole messages: a
        batch of prompts can be larger than the pipe holds) and handled on the loop."""
        assert self.stopped is not None
        threading.Thread(target=self._read_commands, name="mlperf-openai-client-commands",
                         daemon=True).start()
        await self.stopped

    def _read_commands(self) -> None:
        while True:
            try:
                message = self.decode(self.commands.recv_bytes())
            except Exception:  # noqa: BLE001 - the controller went away (or sent garbage): stop,
                message = [_STOP, 0, None]  # and the controller sees this process gone, named
            try:
                self.loop.call_soon_threadsafe(self._command, message)
            except RuntimeError:  # the loop is closed
                return
            if message[0] == _STOP:
                return

    async def shut(self) -> None:
        await cancel_and_close(self.tasks, self.session)

    def _stop(self) -> None:
        if self.stopped is not None and not self.stopped.done():
            self.stopped.set_result(None)

    def _command(self, message: list[Any]) -> None:
        kind, run, payload = message
        if kind == _QUERIES:
            if run == self.run:
                self._start(payload)
        elif kind == _RESET:
            self._cancel_all()
            self.run = run
            self.prompts.clear()
        elif kind == _CANCEL:
            self._cancel_all()
        else:
            self._stop()

    def _cancel_all(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        self.outbox.clear()

    def _start(self, batch: list[Any]) -> None:
        prompts, endpoints = self.prompts, self.endpoints
        for entry in batch:
            rid, e_index, index = entry[0], entry[1], entry[2]
            if len(entry) > 3:
                prompts[index] = (entry[3], entry[4])
            held = prompts.get(index)
            if held is None:  # the controller sends each prompt before naming it: a bug if not
                self._emit([_FAILED, rid, f"client process {os.getpid()}: sample {index}'s "
                                          "prompt never arrived"])
                continue
            prompt, length = held
            endpoint = endpoints[e_index]
            task = self.loop.create_task(self._serve(rid, endpoint, endpoint.head + prompt + endpoint.tail, length))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _serve(self, rid: int, endpoint: Any, body: bytes, length: int) -> None:
        try:
            tokens, server_tokens = await self.streamer.stream(
                self.session, endpoint, body, length, lambda token: self._emit([_FIRST, rid, token]))
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # noqa: BLE001 - every failure ends the run, named
            cause = exc.cause if isinstance(exc, EndpointError) else self.streamer.cause(exc)
            self._emit([_FAILED, rid, cause])
            return
        self._emit([_DONE, rid, array.array(_INT32, tokens).tobytes(), server_tokens])

    def _emit(self, event: list[Any]) -> None:
        self.outbox.append(event)
        if not self.flush_scheduled:
            self.flush_scheduled = True
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self.flush_scheduled = False
        if not self.outbox:
            return
        events, self.outbox = self.outbox, []
        try:
            self.events.send_bytes(self.encode([self.run, events]))
        except OSError:  # the controller went away
            self._stop()
