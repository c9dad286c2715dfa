"""Bad endpoints fail at the start within seconds, naming the endpoint and what it answered.
Before: a closed port or a plain HTTP server was polled for the whole --mlperf-endpoint-timeout
(300 s by default) in silence."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator

import pytest

from tests.servers import free_port

BENCH = '''
import pytest


@pytest.mark.mlperf(benchmark="llama3.1-8b", scenarios=("Offline",))
def test_served(mlperf_result):
    pass
'''


@pytest.fixture
def plain_http_server(tmp_path) -> Iterator[str]:
    """A web server that is no OpenAI server: 404 for /health and /v1/models."""
    handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=str(tmp_path))  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("kind", ["closed-port", "plain-http-server"])
def test_a_bad_endpoint_fails_within_seconds_by_name(pytester: pytest.Pytester, request, kind: str) -> None:
    pytest.importorskip("aiohttp")
    url = f"http://127.0.0.1:{free_port()}" if kind == "closed-port" else request.getfixturevalue("plain_http_server")
    says = "connection refused for 5 s: nothing listens there" if kind == "closed-port" else \
        "is not an OpenAI-compatible server: /health and /v1/models answered HTTP 404"
    pytester.makepyfile(test_served=BENCH)
    began = time.monotonic()
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--mlperf-endpoint={url}", "--mlperf-served-model=m",
                                "--mlperf-mode=performance", "--mlperf-scenario=Offline",
                                "--mlperf-endpoint-timeout=300")
    took = time.monotonic() - began
    result.assert_outcomes(failed=1)
    assert took < 60, took  # not the 300 s of the endpoint timeout
    out = result.stdout.str()
    assert url in out and says in out, out[-3000:]
