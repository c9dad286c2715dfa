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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

from pytest_mlperf.backends.base import Backend, GenerationConfig, Query, Responder, SystemSpec
from pytest_mlperf.core.vocabulary import Scenario

#: How long an endpoint may take to become ready, and the longest a response may stay silent.
DEFAULT_ENDPOINT_TIMEOUT_S = 300.0
#: Seconds an idle connection is kept for the next request.
KEEPALIVE_S = 2.0
#: What describe() says the answers were (the record's ``extra.output_tokens``).
OUTPUT_IDS = "token ids"
OUTPUT_TEXT = "text re-encoded by the tokenizer"
_PROMPT_SLOT = "__mlperf_prompt__"
_INSTALL_HINT = "the openai backend needs aiohttp and msgspec: pip install 'pytest-mlperf[openai]'"


class EndpointError(RuntimeError):
    """One endpoint failed; the message names the endpoint and the cause."""

    def __init__(self, endpoint: str, cause: str) -> None:
        super().__init__(f"endpoint {endpoint}: {cause}")
        self.endpoint = endpoint
        self.cause = cause


@dataclass
class EndpointCounts:
    """One endpoint's share of a run (reset by ``prepare``, i.e. before every run)."""

    requests: int = 0
    completed: int = 0
    failed: int = 0
    #: tokens loadgen was given, and the tokens the server said it generated (``usage``)
    output_tokens: int = 0
    server_output_tokens: int = 0


@dataclass
class _Endpoint:
    url: str
    completions: str
    prompt_ids: bool = True
    output_ids: bool = True
    server: str | None = None
    version: str | None = None
    #: the request body around the prompt
    head: bytes = b""
    tail: bytes = b""
    outstanding: int = 0
    counts: EndpointCounts = field(default_factory=EndpointCounts)


def normalize_endpoint(url: str) -> str:
    """``http://host:port`` (scheme required; a trailing ``/`` or ``/v1`` is dropped)."""
    url = url.strip().rstrip("/")
    if url.endswith("/v1"):
        url = url[:-3]
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"not an http(s) URL: {url!r} (expected e.g. http://node1:8000)")
    return url


def _decoders() -> tuple[Any, Any]:
    """msgspec decode functions of one stream chunk and of a list of them (typed, so a malformed
    chunk fails to decode, and decoding skips every field the client does not read)."""
    import msgspec

    usage = msgspec.defstruct("Usage", [("completion_tokens", int, 0)])
    choice = msgspec.defstruct("Choice", [("text", str | None, None),
                                          ("token_ids", list[int] | None, None),
                                          ("prompt_token_ids", list[int] | None, None)])
    chunk = msgspec.defstruct("Chunk", [("choices", list[choice], []),  # type: ignore[valid-type]
                                        ("usage", usage | None, None), ("error", Any, None)])
    return (msgspec.json.Decoder(chunk).decode,
            msgspec.json.Decoder(list[chunk]).decode)  # type: ignore[valid-type]


def _error_text(error: Any) -> str:
    if isinstance(error, dict):
        return str(error.get("message") or error)
    return str(error)


class _Streamer:
    """Reads one streamed completion and names what went wrong: the one-loop client's and each
    client process's (``openai_pool``) code, so both check every answer the same way."""

    def __init__(self, decode_one: Any, decode_many: Any, tokenizer: Any, timeout: float,
                 api_key: str | None) -> None:
        self.decode_one = decode_one
        self.decode_many = decode_many
        self.tokenizer = tokenizer
        self.timeout = timeout
        self._api_key = api_key

    async def stream(self, session: Any, endpoint: _Endpoint, body: bytes, prompt_len: int,
                     on_first: Callable[[int], None]) -> tuple[list[int], int]:
        """One streamed completion of request ``body``: (token ids for loadgen, the server's own
        token count); ``on_first(token id)`` the moment the first token is read.

        Events are decoded one by one until the first token; the rest of the stream is kept as
        it arrives and decoded in one call at its end (one msgspec call for the whole answer,
        not one per token)."""
        tokens: list[int] = []
        text: list[str] = []
        done = False
        async with session.post(endpoint.completions, data=body,
                                headers={"Content-Type": "application/json"}) as resp:
            if resp.status != 200:
                snippet = (await resp.content.read(500)).decode(errors="replace")
                reason = f"HTTP {resp.status} {resp.reason}" if resp.reason else f"HTTP {resp.status}"
                raise EndpointError(endpoint.url, f"{reason}: {self.redact(snippet)}")
            pending = b""
            rest: list[bytes] = []  # payloads after the first token
            tail: list[bytes] | None = None  # the raw stream after them
            async for data in resp.content.iter_any():
                if tail is not None:
                    tail.append(data)
                    continue
                pending = pending + data if pending else data
                if b"\r" in pending:
                    pending = pending.replace(b"\r\n", b"\n")
                payloads, pending = _events(pending)
                for i, payload in enumerate(payloads):
                    if payload == b"[DONE]":
                        done = True
                        break
                    self._first_chunk(endpoint, prompt_len, on_first, payload, tokens, text)
                    if tokens or text:
                        rest, tail = payloads[i + 1:], [pending]
                        break
        if tail is not None:
            raw = b"".join(tail)
            if b"\r" in raw:
                raw = raw.replace(b"\r\n", b"\n")
            rest += _events(raw)[0]
            if b"[DONE]" in rest:
                done = True
                del rest[rest.index(b"[DONE]"):]
        if not done:
            raise EndpointError(endpoint.url, "the stream ended without [DONE] "
                                              "(the server closed the connection mid-response)")
        server_tokens = None
        if rest:
            try:
                chunks = self.decode_many(b"[" + b",".join(rest) + b"]")
            except Exception as exc:  # noqa: BLE001 - any decoding error is a malformed stream
                raise EndpointError(endpoint.url, f"malformed stream: {exc}") from None
            ids_mode = endpoint.output_ids
            for chunk in chunks:
                if chunk.error is not None:
                    raise EndpointError(endpoint.url, f"error in the stream: {_error_text(chunk.error)}")
                if chunk.usage is not None:
                    server_tokens = chunk.usage.completion_tokens
                for choice in chunk.choices:
                    if ids_mode:
                        if choice.token_ids:
                            tokens.extend(choice.token_ids)
                    elif choice.text:
                        text.append(choice.text)
        if not endpoint.output_ids:
            tokens = list(self.tokenizer.encode("".join(text), add_special_tokens=False)) if text else []
        if server_tokens is None:
            server_tokens = len(tokens)
        elif endpoint.output_ids and server_tokens != len(tokens):
            raise EndpointError(endpoint.url, f"the stream carried {len(tokens)} token ids but the "
                                              f"server counted {server_tokens} (malformed stream)")
        return tokens, server_tokens

    def _first_chunk(self, endpoint: _Endpoint, prompt_len: int, on_first: Callable[[int], None],
                     payload: bytes, tokens: list[int], text: list[str]) -> None:
        """Decode a chunk before the first token; report the first token as it arrives."""
        try:
            chunk = self.decode_one(payload)
        except Exception as exc:  # noqa: BLE001 - any decoding error is a malformed stream
            raise EndpointError(endpoint.url, f"malformed stream: {exc}") from None
        if chunk.error is not None:
            raise EndpointError(endpoint.url, f"error in the stream: {_error_text(chunk.error)}")
        for choice in chunk.choices:
            if endpoint.output_ids:
                if choice.prompt_token_ids is not None and len(choice.prompt_token_ids) != prompt_len:
                    raise EndpointError(endpoint.url, f"the server read a prompt of "
                                                      f"{len(choice.prompt_token_ids)} tokens, "
                                                      f"{prompt_len} were sent")
                if choice.token_ids:
                    tokens.extend(choice.token_ids)
                    on_first(tokens[0])
            elif choice.text:
                text.append(choice.text)
                first = self.tokenizer.encode(choice.text, add_special_tokens=False)
                on_first(first[0] if first else 0)

    def cause(self, exc: BaseException) -> str:
        import aiohttp

        if isinstance(exc, asyncio.TimeoutError):
            return f"no answer for {self.timeout:g} s (timeout; --mlperf-endpoint-timeout)"
        if isinstance(exc, aiohttp.ClientConnectorError):
            return f"cannot connect: {exc.os_error.strerror or exc.os_error}"
        if isinstance(exc, aiohttp.ServerDisconnectedError):
            return "the server closed the connection mid-response"
        if isinstance(exc, aiohttp.ClientPayloadError):
            return f"the response was cut off: {exc}"
        return self.redact(f"{type(exc).__name__}: {exc}")

    def redact(self, text: str) -> str:
        return text.replace(self._api_key, "***") if self._api_key else text


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
        self._endpoints: list[_Endpoint] = []
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
        self._streamer = _Streamer(None, None, tokenizer, self.endpoint_timeout, None)
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
            self._decode_one, self._decode_many = _decoders()
        except ImportError as exc:
            raise RuntimeError(_INSTALL_HINT) from exc
        if self.api_key_env:
            self._api_key = os.environ.get(self.api_key_env)
            if not self._api_key:
                raise ValueError(f"--mlperf-api-key-env: the environment variable "
                                 f"{self.api_key_env} is not set (or empty)")
        self._streamer = _Streamer(self._decode_one, self._decode_many, self.tokenizer,
                                   self.endpoint_timeout, self._api_key)
        self._endpoints = []
        for url in self.system.endpoints:
            base = normalize_endpoint(url)
            self._endpoints.append(_Endpoint(url=base, completions=base + "/v1/completions"))
        self._errors = (aiohttp.ClientError, asyncio.TimeoutError, OSError)
        self._connections = _connection_limit(len(self._endpoints))
        loop, name = _new_loop()
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

    async def _cache_hits(self, endpoint: _Endpoint) -> float | None:
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

    async def _check(self, endpoint: _Endpoint) -> None:
        await self._wait_ready(endpoint)
        await self._check_model(endpoint)
        await self._probe(endpoint)
        self._build_body(endpoint)

    async def _wait_ready(self, endpoint: _Endpoint) -> None:
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

    async def _get_json(self, endpoint: _Endpoint, path: str) -> tuple[int, Any]:
        async with self._session.get(endpoint.url + path) as resp:
            body = await resp.read()
            try:
                return resp.status, json.loads(body) if resp.status == 200 else body[:300]
            except ValueError:
                return resp.status, None

    async def _check_model(self, endpoint: _Endpoint) -> None:
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

    async def _probe(self, endpoint: _Endpoint) -> None:
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
            payloads, _ = _events(body.replace(b"\r\n", b"\n"))
            chunks = [self._decode_one(p) for p in payloads if p != b"[DONE]"]
        except Exception as exc:  # noqa: BLE001 - any decoding error is a malformed stream
            raise EndpointError(endpoint.url, f"malformed stream in a test completion: {exc}") from None
        errors = [c.error for c in chunks if c.error is not None]
        if errors:
            raise EndpointError(endpoint.url, f"a test completion failed: {_error_text(errors[0])}")
        endpoint.output_ids = any(ch.token_ids is not None for c in chunks for ch in c.choices)
        if not (endpoint.prompt_ids and endpoint.output_ids) and self.tokenizer is None:
            raise EndpointError(endpoint.url, "takes or answers text only, and there is no "
                                              "tokenizer to translate (--mlperf-model: a folder "
                                              "with the model's tokenizer)")

    async def _probe_once(self, endpoint: _Endpoint, prompt: Any) -> tuple[int, bytes]:
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

    def _build_body(self, endpoint: _Endpoint) -> None:
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

    def _pick(self) -> _Endpoint:
        endpoints = self._endpoints
        if len(endpoints) == 1:
            return endpoints[0]
        return min(endpoints, key=lambda e: (e.outstanding, e.counts.requests))

    async def _serve(self, query: Query, responder: Responder) -> None:
        endpoint = self._pick()
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

    async def _stream(self, endpoint: _Endpoint, query: Query, responder: Responder) -> tuple[list[int], int]:
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


def new_session(connections: int, timeout: float, headers: dict[str, str]) -> Any:
    """The client's aiohttp session (in the running loop): ``connections`` per endpoint."""
    import aiohttp

    return aiohttp.ClientSession(
        # Idle connections close after 2 s, before the servers' own keep-alive timeout
        # (uvicorn's, behind vLLM, SGLang and TensorRT-LLM: 5 s) can close one under a
        # request being written to it.
        connector=aiohttp.TCPConnector(limit=0, limit_per_host=connections, ttl_dns_cache=None,
                                       keepalive_timeout=KEEPALIVE_S),
        # sock_read: the longest a response may stay silent (a hung server), not the length of
        # a response
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=timeout, sock_read=timeout),
        headers=headers, auto_decompress=False,
    )


async def cancel_and_close(tasks: set[asyncio.Task[None]], session: Any) -> None:
    """Cancel the requests in flight, then close the session."""
    pending = list(tasks)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    if session is not None:
        await session.close()


def _payload(event: bytes) -> bytes | None:
    """The ``data:`` of one server-sent event (None for comments and other fields)."""
    if event.startswith(b"data: "):
        return event[6:]
    if event.startswith(b"data:"):
        return event[5:]
    for line in event.split(b"\n"):
        if line.startswith(b"data:"):
            return line[5:].lstrip(b" ")
    return None


def _events(raw: bytes) -> tuple[list[bytes], bytes]:
    """The ``data:`` payloads of the complete server-sent events in ``raw`` (which begins at
    an event), and the bytes after them (an event still arriving)."""
    end = raw.rfind(b"\n\n")
    if end < 0:
        return [], raw
    body, left = raw[:end], raw[end + 2:]
    # The usual shape, one "data: " line per event, is split in C; anything else (comments,
    # other fields, multi-line data) event by event.
    parts = body.split(b"\n\ndata: ")
    if body.startswith(b"data: ") and body.count(b"\n") == 2 * (len(parts) - 1):
        parts[0] = parts[0][6:]
        return parts, left
    return [p for p in map(_payload, body.split(b"\n\n")) if p is not None], left


def _new_loop() -> tuple[asyncio.AbstractEventLoop, str]:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop(), "asyncio"
    return uvloop.new_event_loop(), f"uvloop {uvloop.__version__}"


def auto_client_processes(cores: int | None = None) -> int:
    """``--mlperf-client-processes=auto``: one loop below 8 usable cores (it is not the limit
    there, and loadgen, the bridge and often the server want the other cores); from 8 cores,
    one process per 2 cores, at most 8. Under xdist the cores are the worker's share."""
    if cores is None:
        from pytest_mlperf.core.cpu import usable_cores

        workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")
        cores = usable_cores() // max(1, int(workers) if workers.isdigit() else 1)
    return 1 if cores < 8 else min(8, cores // 2)


def _connection_limit(endpoints: int) -> int:
    """Connections per endpoint: as many as open files allow (the soft limit raised to the
    hard one), less a reserve, shared by the endpoints."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard == resource.RLIM_INFINITY or hard > soft:
            target = 1 << 20 if hard == resource.RLIM_INFINITY else hard
            with contextlib.suppress(ValueError, OSError):
                resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
                soft = target
    except ImportError:  # not POSIX
        soft = 1024
    return max(16, (soft - 256) // max(1, endpoints))


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
