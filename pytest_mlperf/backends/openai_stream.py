"""The wire of the openai backend: one streamed ``/v1/completions`` read and checked, the
HTTP session, and the errors that name an endpoint. Shared by the one-loop client
(:mod:`pytest_mlperf.backends.openai`) and its client processes
(:mod:`pytest_mlperf.backends.openai_pool`), so both check every answer the same way."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

#: Seconds an idle connection is kept for the next request.
KEEPALIVE_S = 2.0


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
class Endpoint:
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


def least_busy(endpoints: Sequence[Endpoint]) -> int:
    """The index of the endpoint to send the next request to: the fewest outstanding requests,
    then the fewest sent this run (the one-loop client's and the client processes' rule)."""
    if len(endpoints) == 1:
        return 0
    return min(range(len(endpoints)), key=lambda i: (endpoints[i].outstanding, endpoints[i].counts.requests))


def decoders() -> tuple[Any, Any]:
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


def error_text(error: Any) -> str:
    if isinstance(error, dict):
        return str(error.get("message") or error)
    return str(error)


class Streamer:
    """Reads one streamed completion and names what went wrong: the one-loop client's and each
    client process's (``openai_pool``) code, so both check every answer the same way."""

    def __init__(self, decode_one: Any, decode_many: Any, tokenizer: Any, timeout: float,
                 api_key: str | None) -> None:
        self.decode_one = decode_one
        self.decode_many = decode_many
        self.tokenizer = tokenizer
        self.timeout = timeout
        self._api_key = api_key

    async def stream(self, session: Any, endpoint: Endpoint, body: bytes, prompt_len: int,
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
                payloads, pending = events(pending)
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
            rest += events(raw)[0]
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
                    raise EndpointError(endpoint.url, f"error in the stream: {error_text(chunk.error)}")
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

    def _first_chunk(self, endpoint: Endpoint, prompt_len: int, on_first: Callable[[int], None],
                     payload: bytes, tokens: list[int], text: list[str]) -> None:
        """Decode a chunk before the first token; report the first token as it arrives."""
        try:
            chunk = self.decode_one(payload)
        except Exception as exc:  # noqa: BLE001 - any decoding error is a malformed stream
            raise EndpointError(endpoint.url, f"malformed stream: {exc}") from None
        if chunk.error is not None:
            raise EndpointError(endpoint.url, f"error in the stream: {error_text(chunk.error)}")
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


def payload(event: bytes) -> bytes | None:
    """The ``data:`` of one server-sent event (None for comments and other fields)."""
    if event.startswith(b"data: "):
        return event[6:]
    if event.startswith(b"data:"):
        return event[5:]
    for line in event.split(b"\n"):
        if line.startswith(b"data:"):
            return line[5:].lstrip(b" ")
    return None


def events(raw: bytes) -> tuple[list[bytes], bytes]:
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
    return [p for p in map(payload, body.split(b"\n\n")) if p is not None], left


def new_loop() -> tuple[asyncio.AbstractEventLoop, str]:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop(), "asyncio"
    return uvloop.new_event_loop(), f"uvloop {uvloop.__version__}"


def connection_limit(endpoints: int) -> int:
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
