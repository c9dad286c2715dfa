"""A served model as the system under test: OpenAI-compatible ``/v1/completions`` endpoints.

Loadgen runs here; the engines run wherever the endpoints are (``vllm serve`` on N nodes, each
as large as its own tensor/pipeline/data parallelism makes it, a Kubernetes service, SGLang,
TensorRT-LLM...), as MLPerf's network division separates the load generator from the SUT.

- One asyncio loop on the backend's own thread (uvloop where installed) and one aiohttp session:
  every query loadgen issues is in flight at once, each a streamed ``POST /v1/completions``;
  the only bound is the connection limit per endpoint, which follows the open-file limit. One
  loop carries ~1,400 VALID Server QPS of 128-token answers; ``client_processes`` (N > 1, or
  ``auto`` on 8 cores and more) moves the streaming into N processes, loadgen staying here
  (:mod:`pytest_mlperf.backends.openai_pool`), with the same checks on every answer.
- Each request goes to the endpoint with the fewest outstanding requests (then the fewest sent).
- Prompts go as token ids and answers come back as token ids (``return_token_ids``) where the
  server takes them, as vLLM does; otherwise prompts are sent as the tokenizer's text and the
  streamed text is re-encoded by it (``describe()`` says which; the server's own token count is
  kept beside it). TTFT is the first streamed token, reported to loadgen as the first token.
- Failure is explicit: connection refused, an HTTP error, a malformed or cut stream, an error
  event, a server that dies mid-run, or an endpoint silent for ``endpoint_timeout`` seconds end
  the run through ``responder.fail`` with an :class:`EndpointError` naming the endpoint and the
  cause; the other requests are cancelled, loadgen gets an answer for every query, nothing is
  retried. Waiting for readiness at start is the only place that tries again.
- An API key comes from the environment variable the user names, goes into the
  ``Authorization`` header and nowhere else (messages from servers are redacted).

Engine arguments are fields added to every request body (e.g. ``ignore_eos=true``): the engine
itself is configured where it is served.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any
from urllib.parse import urlsplit

from pytest_mlperf.backends.base import Backend, GenerationConfig, Query, Responder, SystemSpec
from pytest_mlperf.backends.openai_stream import (
    Endpoint,
    EndpointCounts,
    EndpointError,
    Streamer,
    cancel_and_close,
    connection_limit,
    decoders,
    error_text,
    events,
    least_busy,
    new_loop,
    new_session,
)
from pytest_mlperf.core.vocabulary import Scenario

#: How long an endpoint may take to become ready, and the longest a response may stay silent.
DEFAULT_ENDPOINT_TIMEOUT_S = 300.0
#: What describe() says the answers were (the record's ``extra.output_tokens``).
OUTPUT_IDS = "token ids"
OUTPUT_TEXT = "text re-encoded by the tokenizer"
_PROMPT_SLOT = "__mlperf_prompt__"
_INSTALL_HINT = "the openai backend needs aiohttp and msgspec: pip install 'pytest-mlperf[openai]'"


def normalize_endpoint(url: str) -> str:
    """``http://host:port`` (scheme required; a trailing ``/`` or ``/v1`` is dropped)."""
    url = url.strip().rstrip("/")
    if url.endswith("/v1"):
        url = url[:-3]
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"not an http(s) URL: {url!r} (expected e.g. http://node1:8000)")
    return url


class OpenAIBackend(Backend):
    """Streaming ``/v1/completions`` against one or more endpoints (see the module doc)."""

    name = "openai"
    streaming = True

    def __init__(self, system: SystemSpec, engine_args: Mapping[str, Any] | None = None,
                 generation: GenerationConfig | None = None, tokenizer: Any = None, *,
                 api_key_env: str | None = None,
                 endpoint_timeout: float = DEFAULT_ENDPOINT_TIMEOUT_S,
                 client_processes: int | None = None) -> None:
        super().__init__(system, engine_args, generation, tokenizer)
        self.api_key_env = api_key_env
        self.endpoint_timeout = float(endpoint_timeout)
        #: None: :func:`auto_client_processes`; 1: the one loop on this process's thread
        self.client_processes = client_processes
        self._pool: Any = None
        self._api_key: str | None = None
        self._endpoints: list[Endpoint] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._session: Any = None
        self._tasks: set[asyncio.Task[None]] = set()
        #: id(prompt) -> (prompt, JSON bytes) per prompt kind; holding the prompt keeps the id
        self._prompt_json: dict[bool, dict[int, tuple[Any, bytes]]] = {True: {}, False: {}}
        self._connections = 0
        self._client = ""
        self._decode_one: Any = None
        self._decode_many: Any = None
        self._streamer = Streamer(None, None, tokenizer, self.endpoint_timeout, None)
        self._errors: tuple[type[BaseException], ...] = ()

    @classmethod
    def from_config(cls, config: Any, system: SystemSpec, engine_args: Mapping[str, Any],
                    generation: GenerationConfig, tokenizer: Any) -> OpenAIBackend:
        """Made by the plugin: the client options come from ``--mlperf-api-key-env``,
        ``--mlperf-endpoint-timeout`` and ``--mlperf-client-processes``."""
        from pytest_mlperf.core import stash

        options = config.stash[stash.OPTIONS]
        return cls(system, engine_args, generation, tokenizer, api_key_env=options.api_key_env,
                   endpoint_timeout=options.endpoint_timeout,
                   client_processes=options.client_processes)

    # -- lifetime ---------------------------------------------------------------------------
    def start(self) -> None:
        """Check every endpoint: ready (``/health``, else ``/v1/models``) within the timeout,
        serving the model named, and which prompt and answer forms it takes."""
        if not self.system.endpoints:
            raise ValueError(
                f"the openai backend benchmarks a served model; {self.system.label()} is a local "
                "folder: give --mlperf-endpoint URL (and --mlperf-served-model NAME)"
            )
        if not self.system.model:
            raise ValueError("the openai backend needs the served model's name (--mlperf-served-model)")
        try:
            import aiohttp
        except ImportError as exc:
            raise RuntimeError(_INSTALL_HINT) from exc
        try:
            self._decode_one, self._decode_many = decoders()
        except ImportError as exc:
            raise RuntimeError(_INSTALL_HINT) from exc
        if self.api_key_env:
            self._api_key = os.environ.get(self.api_key_env)
            if not self._api_key:
                raise ValueError(f"--mlperf-api-key-env: the environment variable "
                                 f"{self.api_key_env} is not set (or empty)")
        self._streamer = Streamer(self._decode_one, self._decode_many, self.tokenizer,
                                   self.endpoint_timeout, self._api_key)
        self._endpoints = []
        for url in self.system.endpoints:
            base = normalize_endpoint(url)
            self._endpoints.append(Endpoint(url=base, completions=base + "/v1/completions"))
        self._errors = (aiohttp.ClientError, asyncio.TimeoutError, OSError)
        self._connections = connection_limit(len(self._endpoints))
        loop, name = new_loop()
        self._client = f"aiohttp {aiohttp.__version__} on {name}"
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="mlperf-openai-loop",
                                        daemon=True)
        self._thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self._connect(), loop).result()
            self._start_pool()
        except BaseException:
            self.close()
            raise

    def _start_pool(self) -> None:
        """Client processes where asked for (or where ``auto`` finds the cores for them)."""
        from pytest_mlperf.backends.openai_pool import ClientPool

        wanted = self.client_processes
        count = auto_client_processes() if wanted is None else wanted
        text = [e.url for e in self._endpoints if not (e.prompt_ids and e.output_ids)]
        if count > 1 and text:
            if wanted is not None:
                raise ValueError(f"--mlperf-client-processes={wanted}: {', '.join(text)} takes or "
                                 "answers text, which only the one-loop client translates; use "
                                 "--mlperf-client-processes=1 (or a server that takes and returns "
                                 "token ids, as vllm serve does)")
            count = 1
        if count <= 1:
            return
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        pool = ClientPool(count, self._endpoints, headers=headers, timeout=self.endpoint_timeout,
                          prompt_json=lambda prompt: self._prompt_bytes(True, prompt))
        pool.start()
        self._pool = pool

    def prepare(self, scenario: Scenario) -> None:
        """Before every run: the per-endpoint counts start again (the record holds one run)."""
        if self._loop is None:
            raise RuntimeError("OpenAIBackend.prepare() before start()")
        for endpoint in self._endpoints:
            endpoint.counts = EndpointCounts()
            endpoint.outstanding = 0
        if self._pool is not None:
            self._pool.reset()

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()
        loop, self._loop = self._loop, None
        if loop is None:
            return

        async def shutdown() -> None:
            session, self._session = self._session, None
            await cancel_and_close(self._tasks, session)

        if loop.is_running():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(shutdown(), loop).result(timeout=30)
            loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        if not loop.is_running():
            loop.close()

    # -- runs -------------------------------------------------------------------------------
    def issue(self, queries: Sequence[Query], responder: Responder) -> None:
        loop = self._loop
        if loop is None:
            raise RuntimeError("the openai backend is not started (or closed)")
        if self._pool is not None:
            self._pool.issue(queries, responder)
            return
        # One wake-up of the loop per call; the loop makes one task per query.
        loop.call_soon_threadsafe(self._spawn, list(queries), responder)

    def client_pids(self) -> list[int]:
        """The client processes' pids (none for the one-loop client), e.g. to read their CPU."""
        return self._pool.pids() if self._pool is not None else []

    def rule_facts(self) -> dict[str, Any]:
        """The request fields; the server's caching is read from its metrics around each run
        (:meth:`prefix_cache_hits`)."""
        return {"request_fields": self._request_fields()}

    def prefix_cache_hits(self) -> dict[str, float | None]:
        """Per endpoint, the server's prefix-cache hit counter now (vLLM's Prometheus
        ``/metrics``: :data:`PREFIX_CACHE_HITS`, tokens), None where it exposes none (another
        server, or vLLM with ``--disable-log-stats``). Read before and after each run."""
        loop = self._loop
        if loop is None:
            return {}

        async def read_all() -> list[float | None]:
            return list(await asyncio.gather(*(self._cache_hits(e) for e in self._endpoints)))

        values = asyncio.run_coroutine_threadsafe(read_all(), loop).result(timeout=60)
        return {e.url: v for e, v in zip(self._endpoints, values, strict=True)}

    async def _cache_hits(self, endpoint: Endpoint) -> float | None:
        import aiohttp

        try:
            async with self._session.get(endpoint.url + "/metrics",
                                         timeout=aiohttp.ClientTimeout(total=10)) as resp:
                if resp.status != 200:
                    return None
                text = await resp.text()
        except self._errors:
            return None
        return metric_total(text, PREFIX_CACHE_HITS)

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "engine": "OpenAI-compatible server",
            "engine_args": self._request_fields(),
            "served_model": self.system.model,
        }
        endpoints = list(self._endpoints)
        if not endpoints:
            return info
        servers = sorted({e.server for e in endpoints if e.server})
        versions = sorted({e.version for e in endpoints if e.version})
        if servers:
            info["engine"] = f"{', '.join(servers)} (OpenAI-compatible server)"
        if versions:
            info["engine_version"] = ", ".join(versions)
        info["endpoint_counts"] = {e.url: asdict(e.counts) for e in endpoints}
        outputs = {OUTPUT_IDS if e.output_ids else OUTPUT_TEXT for e in endpoints}
        info["output_tokens"] = outputs.pop() if len(outputs) == 1 else "mixed: " + ", ".join(
            f"{e.url}: {OUTPUT_IDS if e.output_ids else OUTPUT_TEXT}" for e in endpoints)
        prompts = {"token ids" if e.prompt_ids else "text" for e in endpoints}
        info["prompts"] = prompts.pop() if len(prompts) == 1 else "mixed"
        info["client"] = self._pool.describe() if self._pool is not None else self._client
        info["client_processes"] = self._pool.size if self._pool is not None else 1
        info["connections_per_endpoint"] = self._connections
        return info

    # -- start: readiness and what each endpoint takes --------------------------------------
    async def _connect(self) -> None:

        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        self._session = new_session(self._connections, self.endpoint_timeout, headers)
        results = await asyncio.gather(*(self._check(e) for e in self._endpoints),
                                       return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            if len(errors) == 1:
                raise errors[0]
            raise RuntimeError("; ".join(self._redact(str(e)) for e in errors))

    async def _check(self, endpoint: Endpoint) -> None:
        await self._wait_ready(endpoint)
        await self._check_model(endpoint)
        await self._probe(endpoint)
        self._build_body(endpoint)

    async def _wait_ready(self, endpoint: Endpoint) -> None:
        import aiohttp

        loop = asyncio.get_running_loop()
        began = loop.time()
        deadline = began + self.endpoint_timeout
        quick = aiohttp.ClientTimeout(total=min(10.0, self.endpoint_timeout))
        last = "no answer"
        while True:
            try:
                async with self._session.get(endpoint.url + "/health", timeout=quick) as resp:
                    if resp.status == 200:
                        return
                    if resp.status == 404:  # no /health here: /v1/models answering will do
                        async with self._session.get(endpoint.url + "/v1/models", timeout=quick) as models:
                            if models.status == 200:
                                return
                            last = f"/v1/models answered HTTP {models.status}"
                            if models.status in (404, 405):
                                # a web server, but no OpenAI API: waiting would not change that
                                raise EndpointError(endpoint.url, f"is not an OpenAI-compatible "
                                                    f"server: /health and {last}; check the URL "
                                                    "(its host, port and path)")
                    else:
                        last = f"/health answered HTTP {resp.status}"
                    if resp.status in (401, 403):
                        raise EndpointError(endpoint.url, f"{last}: the API key was refused "
                                                          "(--mlperf-api-key-env)")
            except self._errors as exc:
                last = "no answer" if isinstance(exc, asyncio.TimeoutError) else self._cause(exc)
                if _refused(exc) and loop.time() - began >= REFUSED_GRACE_S:
                    raise EndpointError(endpoint.url, f"connection refused for {REFUSED_GRACE_S:g} s: "
                                        "nothing listens there (a starting vLLM server listens "
                                        "before it is ready); start the server first, or check "
                                        "the host and port") from None
            if loop.time() >= deadline:
                raise EndpointError(endpoint.url, f"not ready within {self.endpoint_timeout:g} s "
                                                  f"(--mlperf-endpoint-timeout): {last}")
            await asyncio.sleep(0.5)

    async def _get_json(self, endpoint: Endpoint, path: str) -> tuple[int, Any]:
        async with self._session.get(endpoint.url + path) as resp:
            body = await resp.read()
            try:
                return resp.status, json.loads(body) if resp.status == 200 else body[:300]
            except ValueError:
                return resp.status, None

    async def _check_model(self, endpoint: Endpoint) -> None:
        try:
            status, models = await self._get_json(endpoint, "/v1/models")
        except self._errors as exc:
            raise EndpointError(endpoint.url, f"GET /v1/models: {self._cause(exc)}") from None
        if status != 200 or not isinstance(models, dict):
            raise EndpointError(endpoint.url, f"GET /v1/models answered HTTP {status}: "
                                              f"{self._redact(repr(models))}")
        served = [m.get("id") for m in models.get("data") or [] if isinstance(m, dict)]
        if self.system.model not in served:
            raise EndpointError(endpoint.url, f"serves {served}, not the model named "
                                              f"'{self.system.model}' (--mlperf-served-model)")
        owners = {m.get("owned_by") for m in models["data"] if m.get("id") == self.system.model}
        endpoint.server = next((str(o) for o in owners if o), None)
        with contextlib.suppress(*self._errors):
            status, version = await self._get_json(endpoint, "/version")
            if status == 200 and isinstance(version, dict) and version.get("version"):
                endpoint.version = str(version["version"])

    async def _probe(self, endpoint: Endpoint) -> None:
        """One short completion (outside any run): token-id prompt first, then text."""
        sample = self._probe_prompt()
        status, body = await self._probe_once(endpoint, sample)
        if status in (400, 422):  # no token-id prompts here
            if self.tokenizer is None:
                raise EndpointError(endpoint.url, f"refuses token-id prompts (HTTP {status}) and "
                                                  "there is no tokenizer to send text (--mlperf-model:"
                                                  " a folder with the model's tokenizer)")
            endpoint.prompt_ids = False
            status, body = await self._probe_once(endpoint, self.tokenizer.decode(sample))
        if status != 200:
            raise EndpointError(endpoint.url, f"a test completion answered HTTP {status}: "
                                              f"{self._redact(body[:300].decode(errors='replace'))}")
        try:
            payloads, _ = events(body.replace(b"\r\n", b"\n"))
            chunks = [self._decode_one(p) for p in payloads if p != b"[DONE]"]
        except Exception as exc:  # noqa: BLE001 - any decoding error is a malformed stream
            raise EndpointError(endpoint.url, f"malformed stream in a test completion: {exc}") from None
        errors = [c.error for c in chunks if c.error is not None]
        if errors:
            raise EndpointError(endpoint.url, f"a test completion failed: {error_text(errors[0])}")
        endpoint.output_ids = any(ch.token_ids is not None for c in chunks for ch in c.choices)
        if not (endpoint.prompt_ids and endpoint.output_ids) and self.tokenizer is None:
            raise EndpointError(endpoint.url, "takes or answers text only, and there is no "
                                              "tokenizer to translate (--mlperf-model: a folder "
                                              "with the model's tokenizer)")

    async def _probe_once(self, endpoint: Endpoint, prompt: Any) -> tuple[int, bytes]:
        body = {"model": self.system.model, "prompt": prompt, "max_tokens": 2, "stream": True,
                "temperature": 0.0, "return_token_ids": True}
        try:
            async with self._session.post(endpoint.completions, json=body) as resp:
                return resp.status, await resp.read()
        except self._errors as exc:
            raise EndpointError(endpoint.url, f"a test completion: {self._cause(exc)}") from None

    def _probe_prompt(self) -> list[int]:
        if self.tokenizer is not None:
            ids = list(self.tokenizer.encode("Summarize the news.", add_special_tokens=False))
            if ids:
                return ids
        return [1, 2, 3]

    def _request_fields(self) -> dict[str, Any]:
        """What every request carries besides model, prompt and the streaming switches."""
        g = self.generation
        fields: dict[str, Any] = {"max_tokens": g.max_new_tokens, "min_tokens": g.min_new_tokens,
                                  "temperature": 0.0}
        if g.eos_token_ids:
            fields["stop_token_ids"] = list(g.eos_token_ids)
        fields.update(self.engine_args)
        return fields

    def _build_body(self, endpoint: Endpoint) -> None:
        body = {"model": self.system.model, "prompt": _PROMPT_SLOT, **self._request_fields(),
                "stream": True, "stream_options": {"include_usage": True}}
        if endpoint.output_ids:
            body["return_token_ids"] = True
        head, _, tail = json.dumps(body, separators=(",", ":")).partition(f'"{_PROMPT_SLOT}"')
        endpoint.head, endpoint.tail = head.encode(), tail.encode()

    # -- runs: the event loop ---------------------------------------------------------------
    def _spawn(self, queries: list[Query], responder: Responder) -> None:
        loop = self._loop
        if loop is None:
            responder.fail(RuntimeError("the openai backend was closed during a run"))
            return
        for query in queries:
            task = loop.create_task(self._serve(query, responder))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _serve(self, query: Query, responder: Responder) -> None:
        endpoint = self._endpoints[least_busy(self._endpoints)]
        endpoint.outstanding += 1
        endpoint.counts.requests += 1
        try:
            tokens, server_tokens = await self._stream(endpoint, query, responder)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # noqa: BLE001 - every failure ends the run, named
            endpoint.counts.failed += 1
            error = exc if isinstance(exc, EndpointError) else EndpointError(endpoint.url, self._cause(exc))
            self._fail_run(responder, error)
            return
        finally:
            endpoint.outstanding -= 1
        endpoint.counts.completed += 1
        endpoint.counts.output_tokens += len(tokens)
        endpoint.counts.server_output_tokens += server_tokens
        responder.complete(query, tokens)

    def _fail_run(self, responder: Responder, error: EndpointError) -> None:
        """Answer loadgen (every outstanding query, through the bridge) and stop the other
        requests: the run is over, and nothing is retried."""
        responder.fail(error)
        current = asyncio.current_task()
        for task in list(self._tasks):
            if task is not current:
                task.cancel()

    async def _stream(self, endpoint: Endpoint, query: Query, responder: Responder) -> tuple[list[int], int]:
        """One streamed completion: (token ids for loadgen, the server's own token count); the
        first token goes to loadgen the moment it is read."""
        body = endpoint.head + self._prompt_bytes(endpoint.prompt_ids, query.prompt) + endpoint.tail
        return await self._streamer.stream(self._session, endpoint, body, len(query.prompt),
                                           lambda token: responder.first_token(query, token))

    def _prompt_bytes(self, ids: bool, prompt: Sequence[int]) -> bytes:
        cache = self._prompt_json[ids]
        hit = cache.get(id(prompt))
        if hit is not None and hit[0] is prompt:
            return hit[1]
        if ids:
            data = json.dumps([int(t) for t in prompt], separators=(",", ":")).encode()
        else:
            data = json.dumps(self.tokenizer.decode(list(prompt))).encode()
        cache[id(prompt)] = (prompt, data)
        return data

    # -- messages ---------------------------------------------------------------------------
    def _cause(self, exc: BaseException) -> str:
        return self._streamer.cause(exc)

    def _redact(self, text: str) -> str:
        return self._streamer.redact(text)


def auto_client_processes(cores: int | None = None) -> int:
    """``--mlperf-client-processes=auto``: one loop below 8 usable cores (it is not the limit
    there, and loadgen, the bridge and often the server want the other cores); from 8 cores,
    one process per 2 cores, at most 8. Under xdist the cores are the worker's share."""
    if cores is None:
        from pytest_mlperf.core.cpu import usable_cores

        workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")
        cores = usable_cores() // max(1, int(workers) if workers.isdigit() else 1)
    return 1 if cores < 8 else min(8, cores // 2)


#: vLLM's counter of prompt tokens served from its prefix cache (``vllm/v1/metrics/loggers.py``);
#: Prometheus exposes a counter with a ``_total`` suffix
PREFIX_CACHE_HITS = "vllm:prefix_cache_hits"


def metric_total(text: str, name: str) -> float | None:
    """The sum over every label set of counter ``name`` in Prometheus text ``text`` (None when
    the text has no sample of it)."""
    total, found = 0.0, False
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        metric = line.split("{", 1)[0].split(" ", 1)[0]
        if metric not in (name, name + "_total"):
            continue
        try:
            rest = line.rsplit("}", 1)[1] if "}" in line else line.split(" ", 1)[1]
            total += float(rest.split()[0])  # a timestamp may follow the value
        except (ValueError, IndexError):
            continue
        found = True
    return total if found else None


#: how long an endpoint may refuse connections before the start fails: a server a fixture just
#: launched may take a moment to listen; one that is not there never will
REFUSED_GRACE_S = 5.0


def _refused(exc: BaseException) -> bool:
    """The connection was refused (nothing listens at the address)."""
    return isinstance(exc, ConnectionRefusedError) or isinstance(getattr(exc, "os_error", None), ConnectionRefusedError)
