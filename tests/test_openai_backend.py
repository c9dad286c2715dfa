"""The openai backend: served endpoints as the system under test, with the real loadgen.

Against the fake server of ``tests/servers.py`` (fast, everywhere): every query in flight at
once, least-outstanding spreading and per-endpoint counts, text-only servers, readiness, every
failure ending the run with the endpoint named, the API key never written. Against two real
``vllm serve`` processes (marker ``servers``; needs vllm): outputs equal the in-process vLLM
backend's token for token in Offline, Server and Interactive, and a server killed mid-run fails
the test within bounded time, naming it, with the logs kept.
"""

from __future__ import annotations

import importlib.util
import json
import re
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pytest_mlperf.backends.base import GenerationConfig, SystemSpec
from pytest_mlperf.backends.openai import OUTPUT_IDS, OUTPUT_TEXT, EndpointError, OpenAIBackend
from pytest_mlperf.core.vocabulary import Mode, Profile, Scenario
from pytest_mlperf.loadgen.runner import RunResult, run_loadgen
from pytest_mlperf.loadgen.settings import SettingsPlan
from tests.probes import loaded_modules
from tests.servers import (
    SERVED_NAME,
    Behaviour,
    FakeServer,
    answer_tokens,
    answer_words,
    free_port,
    vllm_servers,
)

PROMPTS = [[1] + [10 + (7 * i + 3 * k) % 900 for k in range(20 + i % 13)] for i in range(64)]


def _run(backend: Any, scenario: Scenario, mode: Mode, prompts: Sequence[Sequence[int]],
         outdir: Path, **overrides: Any) -> RunResult:
    plan = SettingsPlan(benchmark="llama3.1-8b", scenario=scenario, profile=Profile.QUICK,
                        total_count=len(prompts), performance_count=len(prompts),
                        cli_overrides=overrides)
    return run_loadgen(plan=plan, mode=mode, backend=backend, prompts=prompts, outdir=outdir)


def _outputs(result: RunResult) -> dict[int, dict[str, Any]]:
    """qsl_idx -> {"tokens": [...], "first": [...] or None} from the accuracy log."""
    out: dict[int, dict[str, Any]] = {}
    for entry in json.loads(result.accuracy_log.read_text()):
        first = entry.get("token_data")
        out.setdefault(entry["qsl_idx"], {
            "tokens": np.frombuffer(bytes.fromhex(entry["data"]), dtype=np.int32).tolist(),
            "first": np.frombuffer(bytes.fromhex(first), dtype=np.int32).tolist() if first else None,
        })
    return out


def _backend(*servers: FakeServer, timeout: float = 5.0, tokenizer: Any = None,
             **kwargs: Any) -> OpenAIBackend:
    backend = OpenAIBackend(SystemSpec.served(SERVED_NAME, [s.url for s in servers]), {},
                            GenerationConfig(), tokenizer, endpoint_timeout=timeout, **kwargs)
    backend.start()
    return backend


def test_module_and_construction_import_no_client() -> None:
    code = (
        "from pytest_mlperf.backends.base import SystemSpec\n"
        "from pytest_mlperf.backends.openai import OpenAIBackend\n"
        "OpenAIBackend(SystemSpec.served('m', ['http://node1:8000']))\n"
    )
    assert loaded_modules(code, ("aiohttp", "msgspec", "torch", "transformers", "vllm")) == []


def test_local_system_is_refused_at_start() -> None:
    backend = OpenAIBackend(SystemSpec.local("/models/x"))
    with pytest.raises(ValueError, match="--mlperf-endpoint"):
        backend.start()


# --- against the fake server -------------------------------------------------------------------


def test_every_query_in_flight_spread_over_two_endpoints(tmp_path: Path, started: list) -> None:
    """Offline issues 64 queries at once: all 64 are in flight together (the servers hold each
    for 0.5 s), half on each endpoint; outputs and first tokens are the servers' token ids."""
    with FakeServer(Behaviour(delay_s=0.5)) as a, FakeServer(Behaviour(delay_s=0.5)) as b:
        backend = _backend(a, b)
        started.append(backend)
        result = _run(backend, Scenario.OFFLINE, Mode.ACCURACY, PROMPTS, tmp_path / "run")
        assert result.backend_error is None
        assert (a.max_in_flight, b.max_in_flight) == (32, 32)
        assert set(a.prompt_kinds) == set(b.prompt_kinds) == {"ids"}  # the start's probe included
        outputs = _outputs(result)
        assert [outputs[i]["tokens"] for i in range(len(PROMPTS))] == [answer_tokens(p, 128) for p in PROMPTS]
        info = backend.describe()
        assert info["output_tokens"] == OUTPUT_IDS and info["prompts"] == "token ids"
        counts = info["endpoint_counts"]
        assert [counts[s.url]["requests"] for s in (a, b)] == [32, 32]
        assert sum(c["output_tokens"] for c in counts.values()) == result.output_tokens
        assert all(c["server_output_tokens"] == c["output_tokens"] for c in counts.values())


def test_streamed_first_token_reaches_loadgen(tmp_path: Path, started: list) -> None:
    with FakeServer() as server:
        backend = _backend(server)
        started.append(backend)
        result = _run(backend, Scenario.SERVER, Mode.ACCURACY, PROMPTS[:16], tmp_path / "run",
                      server_target_qps=100)
        assert result.backend_error is None
        outputs = _outputs(result)
        for i in range(16):
            assert outputs[i]["first"] == answer_tokens(PROMPTS[i], 128)[:1]


def test_least_outstanding_requests_wins(tmp_path: Path, started: list) -> None:
    """A slow endpoint (0.3 s a request) and a fast one at 100 qps: least-outstanding sends
    the fast one almost everything (round robin would split them evenly)."""
    with FakeServer(Behaviour(delay_s=0.3)) as slow, FakeServer() as fast:
        backend = _backend(slow, fast)
        started.append(backend)
        result = _run(backend, Scenario.SERVER, Mode.PERFORMANCE, PROMPTS, tmp_path / "run",
                      server_target_qps=200, min_query_count=460, min_duration_ms=1000)
        assert result.backend_error is None and result.validity == "VALID"
        counts = backend.describe()["endpoint_counts"]
        assert counts[fast.url]["requests"] > 4 * counts[slow.url]["requests"] > 0
        assert counts[fast.url]["requests"] + counts[slow.url]["requests"] == result.figures.query_count


def test_per_endpoint_counts_are_per_run(tmp_path: Path, started: list) -> None:
    with FakeServer() as server:
        backend = _backend(server)
        started.append(backend)
        for i in range(2):
            _run(backend, Scenario.OFFLINE, Mode.ACCURACY, PROMPTS[:10], tmp_path / f"run{i}")
            assert backend.describe()["endpoint_counts"][server.url]["completed"] == 10


def test_text_only_server_gets_text_and_answers_are_re_encoded(tmp_path: Path, started: list) -> None:
    from transformers import AutoTokenizer

    from pytest_mlperf.embedded import MODEL_DIR

    tokenizer = AutoTokenizer.from_pretrained(MODEL_DIR)
    with FakeServer(Behaviour(token_ids=False)) as server:
        backend = _backend(server, tokenizer=tokenizer)
        started.append(backend)
        result = _run(backend, Scenario.SERVER, Mode.ACCURACY, PROMPTS[:8], tmp_path / "run",
                      server_target_qps=50)
        assert result.backend_error is None
        assert set(server.prompt_kinds) == {"text"}
        info = backend.describe()
        assert info["output_tokens"] == OUTPUT_TEXT and info["prompts"] == "text"
        outputs = _outputs(result)
        for i in range(8):
            words = answer_words(tokenizer.decode(PROMPTS[i]), 128)
            assert outputs[i]["tokens"] == tokenizer.encode("".join(words), add_special_tokens=False)
        counts = info["endpoint_counts"][server.url]
        assert counts["server_output_tokens"] == sum(
            len(answer_words(tokenizer.decode(p), 128)) for p in PROMPTS[:8])


def test_text_only_server_without_a_tokenizer_is_refused(started: list) -> None:
    with FakeServer(Behaviour(token_ids=False)) as server:
        backend = OpenAIBackend(SystemSpec.served(SERVED_NAME, [server.url]), endpoint_timeout=5)
        started.append(backend)
        with pytest.raises(EndpointError, match=f"{server.url}: refuses token-id prompts .*no tokenizer"):
            backend.start()


@pytest.mark.parametrize(("fault", "cause"), [
    ("http500", "HTTP 500 Internal Server Error: .*engine overloaded"),
    ("malformed", "malformed stream"),
    ("cut", "(without \\[DONE\\]|cut off|closed the connection)"),
    ("error_event", "error in the stream: the engine died"),
    ("lost_tokens", "the stream carried .* token ids but the server counted"),
    ("die", "(cannot connect|closed the connection|without \\[DONE\\]|cut off)"),
    ("stall", "no answer for 1 s \\(timeout"),
])
@pytest.mark.parametrize("processes", [1, 2], ids=["one-loop", "2-processes"])
def test_a_failing_endpoint_ends_the_run_naming_it(tmp_path: Path, started: list, fault: str,
                                                   cause: str, processes: int) -> None:
    """B breaks after 20 good answers; the run ends within bounded time with B's URL and the
    cause, every query answered, no request retried; the same through client processes
    (``--mlperf-client-processes=2``)."""
    with FakeServer() as a, FakeServer(Behaviour(fault=fault, fault_after=20)) as b:
        backend = _backend(a, b, timeout=1.0, client_processes=processes)
        started.append(backend)
        began = time.monotonic()
        result = _run(backend, Scenario.SERVER, Mode.PERFORMANCE, PROMPTS, tmp_path / "run",
                      server_target_qps=200, min_query_count=400, min_duration_ms=1000)
        assert time.monotonic() - began < 30
        assert result.backend_error is not None
        assert f"endpoint {b.url}: " in result.backend_error
        assert re.search(cause, result.backend_error), result.backend_error
        assert result.detail_log.is_file()  # logs kept
        counts = backend.describe()["endpoint_counts"]
        assert counts[b.url]["failed"] >= 1
        # no retries: each request a server saw (besides the start's probe) the client made once
        assert a.requests <= counts[a.url]["requests"] + 1 and b.requests <= counts[b.url]["requests"] + 1


def test_connection_refused_at_start_names_the_endpoint() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    backend = OpenAIBackend(SystemSpec.served(SERVED_NAME, [url]), endpoint_timeout=1)
    with pytest.raises(EndpointError, match=f"endpoint {url}: not ready within 1 s .*cannot connect"):
        backend.start()
    assert backend._loop is None  # closed on the way out


def test_not_ready_and_wrong_model_are_named(started: list) -> None:
    with FakeServer(Behaviour(ready=False)) as busy, FakeServer(Behaviour(model="other")) as other:
        backend = OpenAIBackend(SystemSpec.served(SERVED_NAME, [busy.url, other.url]),
                                endpoint_timeout=1)
        with pytest.raises(RuntimeError) as info:
            backend.start()
        message = str(info.value)
        assert f"endpoint {busy.url}: not ready within 1 s" in message and "HTTP 503" in message
        assert f"endpoint {other.url}: serves ['other'], not the model named 'embedded'" in message


# --- through the plugin ------------------------------------------------------------------------

BENCHMARK = """
import pytest

pytestmark = pytest.mark.mlperf(
    benchmark="llama3.1-8b", scenarios=("Offline", "Server"),
    baseline={"rouge1": 1e-9, "rouge2": 1e-9, "rougeL": 1e-9, "rougeLsum": 1e-9},
)

def test_served(mlperf_result):
    pass
"""


def _plugin_args(pytester: pytest.Pytester, *urls: str) -> list[str]:
    # The runs load the embedded tokenizer, which imports torch; pytester drops modules an
    # in-process run imported, and torch cannot be imported twice in one process: load it here.
    import transformers  # noqa: F401
    from transformers import AutoTokenizer  # noqa: F401

    pytester.makepyfile(test_served=BENCHMARK)
    # Short Server runs (early stopping still needs 460 queries), Offline as the profile has it.
    conf = pytester.path / "user.conf"
    conf.write_text("*.Server.target_qps = 200\n*.Server.min_duration = 500\n*.Server.min_query_count = 460\n")
    return [*(f"--mlperf-endpoint={u}" for u in urls), f"--mlperf-served-model={SERVED_NAME}",
            "--mlperf-total-samples=24", f"--mlperf-user-conf={conf}",
            f"--mlperf-output={pytester.path / 'results'}", "-p", "no:cacheprovider"]


def test_through_the_plugin_the_key_is_sent_and_never_written(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    key = "sk-test-0123456789abcdef-never-written"
    monkeypatch.setenv("MLPERF_TEST_KEY", key)
    with FakeServer(Behaviour(api_key=key)) as a, FakeServer(Behaviour(api_key=key)) as b:
        args = _plugin_args(pytester, a.url, b.url)
        result = pytester.runpytest("--mlperf-api-key-env=MLPERF_TEST_KEY", "--mlperf-scenario=Offline,Server",
                                    "--junitxml=junit.xml", "-o", "junit_family=xunit1", "-rA", *args)
        # the fake model's answers score no ROUGE-2: accuracy fails, after scoring every log
        result.assert_outcomes(passed=2, failed=2)
        assert result.stdout.str().count("accuracy below baseline 'llama3.1-8b (declared)': rouge2 0.0") >= 2
        assert a.authorizations == b.authorizations == {f"Bearer {key}"}
    written = [p for p in pytester.path.rglob("*") if p.is_file()]
    assert any(p.name == "mlperf_log_detail.txt" for p in written) and (pytester.path / "junit.xml").is_file()
    assert [p for p in written if key.encode() in p.read_bytes()] == []
    assert key not in "\n".join(result.outlines + result.errlines)
    record = json.loads(next(p.get("value") for p in ET.parse(pytester.path / "junit.xml").iter("property")
                             if p.get("name") == "mlperf.record"))
    system = record["system"]
    assert system["backend"] == "openai" and system["kind"] == "served"
    assert system["endpoints"] == [a.url, b.url]
    assert system["extra"]["output_tokens"] == OUTPUT_IDS
    assert set(system["extra"]["endpoint_counts"]) == {a.url, b.url}
    assert system["engine_version"] == "fake-1.0"


def test_a_wrong_or_missing_key_fails_the_test_naming_endpoint_and_variable(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeServer(Behaviour(api_key="right")) as server:
        args = _plugin_args(pytester, server.url)
        monkeypatch.setenv("MLPERF_TEST_KEY", "wrong")
        # Offline only: the user.conf's Server lines would apply to nothing collected (a usage error)
        result = pytester.runpytest("--mlperf-api-key-env=MLPERF_TEST_KEY", "--mlperf-mode=performance",
                                    "--mlperf-scenario=Offline", "--mlperf-endpoint-timeout=2",
                                    *[a for a in args if not a.startswith("--mlperf-user-conf")])
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines([f"*endpoint {server.url}: /health answered HTTP 401*API key*"])
        monkeypatch.delenv("MLPERF_TEST_KEY")
        result = pytester.runpytest("--mlperf-api-key-env=MLPERF_TEST_KEY", "--mlperf-mode=performance", *args)
        # at configure, before collection and the model's tokenizer (it was found at engine start)
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines(["*--mlperf-api-key-env*environment variable MLPERF_TEST_KEY is not set*"])


@pytest.mark.parametrize(("args", "message"), [
    (["--mlperf-endpoint=http://a:8000"], "*--mlperf-served-model*needs the name the servers serve*"),
    (["--mlperf-endpoint=node1:8000", "--mlperf-served-model=m"], "*--mlperf-endpoint*not an http(s) URL*"),
    (["--mlperf-served-model=m"], "*--mlperf-served-model*no endpoint is given*"),
    (["--mlperf-endpoint=http://a:8000", "--mlperf-served-model=m", "--mlperf-endpoint-timeout=0"],
     "*--mlperf-endpoint-timeout*positive number*"),
    (["--mlperf-endpoint=http://a:8000", "--mlperf-served-model=m", "--mlperf-api-key-env=sk-abc"],
     "*--mlperf-api-key-env*NAME of an environment variable*"),
])
def test_option_mistakes_are_usage_errors(pytester: pytest.Pytester, args: list[str], message: str) -> None:
    pytester.makepyfile(test_served=BENCHMARK)
    result = pytester.runpytest(*args, "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_endpoints_select_the_openai_backend_and_a_served_system(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x="""
def test_spec(mlperf_model, mlperf_options):
    print("OPTS", mlperf_options.backend, list(mlperf_options.endpoints), mlperf_options.served_model,
          mlperf_options.endpoint_timeout)
    print("SPEC", mlperf_model.kind, mlperf_model.model, list(mlperf_model.endpoints), mlperf_model.embedded,
          mlperf_model.tokenizer_source is not None)
""")
    result = pytester.runpytest("--mlperf-endpoint=http://n1:8000/v1", "--mlperf-endpoint=http://n2:8000/",
                                "--mlperf-served-model=llama", "-s", "-p", "no:cacheprovider")
    out = result.stdout.str()
    assert "OPTS openai ['http://n1:8000', 'http://n2:8000'] llama 300.0" in out
    assert "SPEC served llama ['http://n1:8000', 'http://n2:8000'] True True" in out


def test_endpoints_from_the_ini_file(pytester: pytest.Pytester) -> None:
    pytester.makeini("""
[pytest]
mlperf_endpoint =
    http://n1:8000
    http://n2:8000
mlperf_served_model = llama
mlperf_endpoint_timeout = 30
""")
    pytester.makepyfile(test_x="""
def test_spec(mlperf_options):
    print("OPTS", mlperf_options.backend, list(mlperf_options.endpoints), mlperf_options.endpoint_timeout)
""")
    result = pytester.runpytest("-s", "-p", "no:cacheprovider")
    assert "OPTS openai ['http://n1:8000', 'http://n2:8000'] 30.0" in result.stdout.str()


# --- against two real vllm serve processes -----------------------------------------------------

needs_vllm = pytest.mark.skipif(
    importlib.util.find_spec("vllm") is None,
    reason="vllm is not installed (CPU: scripts/setup.sh --vllm)",
)
#: Prompts compared token for token with the in-process backend.
COMPARED = 16


@pytest.fixture(scope="module")
def embedded_prompts() -> list[list[int]]:
    from pytest_mlperf.data.dataset import load_dataset
    from pytest_mlperf.embedded import DATASET_PATH

    return load_dataset(DATASET_PATH).prompts()


@pytest.fixture(scope="module")
def vllm_started(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Any]]:
    """Two ``vllm serve`` of the embedded model on 127.0.0.1, stopped after the module."""
    with vllm_servers(2, tmp_path_factory.mktemp("vllm_serve")) as servers:
        yield servers


@pytest.fixture
def vllm_pair(vllm_started: list[Any]) -> list[Any]:
    """The two servers, each running (one a test killed is started again first)."""
    for server in vllm_started:
        if not server.alive():
            server.start()
            server.wait_ready(300)
    return vllm_started


@pytest.fixture(scope="module")
def in_process_outputs(embedded_prompts: list[list[int]], tmp_path_factory: pytest.TempPathFactory) -> list[list[int]]:
    """The in-process vLLM backend's greedy outputs (Offline, through loadgen)."""
    from pytest_mlperf.backends.vllm_backend import VllmBackend
    from pytest_mlperf.embedded import MODEL_DIR

    backend = VllmBackend(SystemSpec.local(Path(MODEL_DIR), embedded=True), {}, GenerationConfig())
    backend.start()
    try:
        result = _run(backend, Scenario.OFFLINE, Mode.ACCURACY, embedded_prompts[:COMPARED],
                      tmp_path_factory.mktemp("in_process") / "run")
        assert result.backend_error is None
        outputs = _outputs(result)
        return [outputs[i]["tokens"] for i in range(COMPARED)]
    finally:
        backend.close()


@pytest.fixture(scope="module")
def served(vllm_started: list[Any]) -> Iterator[OpenAIBackend]:
    from transformers import AutoTokenizer

    from pytest_mlperf.embedded import MODEL_DIR

    backend = OpenAIBackend(SystemSpec.served(SERVED_NAME, [s.url for s in vllm_started],
                                              tokenizer=str(MODEL_DIR)), {}, GenerationConfig(),
                            AutoTokenizer.from_pretrained(MODEL_DIR), endpoint_timeout=60)
    backend.start()
    yield backend
    backend.close()


@needs_vllm
@pytest.mark.servers
@pytest.mark.parametrize(("scenario", "overrides"), [
    (Scenario.OFFLINE, {}),
    (Scenario.SERVER, {"server_target_qps": 8}),
    (Scenario.INTERACTIVE, {"server_target_qps": 8}),
])
def test_outputs_equal_the_in_process_backend(
        served: OpenAIBackend, vllm_pair: list[Any], embedded_prompts: list[list[int]],
        in_process_outputs: list[list[int]], tmp_path: Path, scenario: Scenario,
        overrides: dict[str, Any]) -> None:
    result = _run(served, scenario, Mode.ACCURACY, embedded_prompts[:COMPARED], tmp_path / "run", **overrides)
    assert result.backend_error is None, result.backend_error
    outputs = _outputs(result)
    assert [outputs[i]["tokens"] for i in range(COMPARED)] == in_process_outputs
    if scenario.streaming:
        for i in range(COMPARED):
            assert outputs[i]["first"] == in_process_outputs[i][:1]
    info = served.describe()
    assert info["output_tokens"] == OUTPUT_IDS and info["prompts"] == "token ids"
    assert info["engine"].startswith("vllm") and info["engine_version"]
    counts = info["endpoint_counts"]
    assert sorted(counts) == sorted(s.url for s in vllm_pair)
    assert all(c["requests"] >= 1 and c["failed"] == 0 for c in counts.values())


@needs_vllm
@pytest.mark.servers
def test_outputs_equal_through_client_processes(
        vllm_pair: list[Any], embedded_prompts: list[list[int]], in_process_outputs: list[list[int]],
        tmp_path: Path) -> None:
    """The client over 2 processes (``--mlperf-client-processes=2``) against the real pair,
    Server: the same tokens and first tokens as the in-process engine, both endpoints used."""
    backend = OpenAIBackend(SystemSpec.served(SERVED_NAME, [s.url for s in vllm_pair]), {},
                            GenerationConfig(), None, endpoint_timeout=60, client_processes=2)
    backend.start()
    try:
        assert len(backend.client_pids()) == 2
        result = _run(backend, Scenario.SERVER, Mode.ACCURACY, embedded_prompts[:COMPARED],
                      tmp_path / "run", server_target_qps=8)
        assert result.backend_error is None, result.backend_error
        outputs = _outputs(result)
        assert [outputs[i]["tokens"] for i in range(COMPARED)] == in_process_outputs
        assert [outputs[i]["first"] for i in range(COMPARED)] == [o[:1] for o in in_process_outputs]
        counts = backend.describe()["endpoint_counts"]
        assert all(c["requests"] >= 1 and c["failed"] == 0 for c in counts.values())
    finally:
        backend.close()


@needs_vllm
@pytest.mark.servers
def test_a_server_killed_mid_run_fails_the_test_naming_it(
        pytester: pytest.Pytester, vllm_pair: list[Any]) -> None:
    """Server B (its API server and engine, SIGKILL) goes away 4 s into a Server run through
    the plugin: the test fails within bounded time naming B, and the run's logs are kept."""
    a, b = vllm_pair
    args = _plugin_args(pytester, a.url, b.url)
    killer = threading.Timer(4.0, b.kill)
    began = time.monotonic()
    killer.start()
    try:
        # Planned: 20 s at 8 qps. Loadgen cannot be stopped early, so after the failure the
        # bridge answers the rest of its schedule at once: bounded by the plan, not by a hang.
        result = pytester.runpytest(*args, "--mlperf-scenario=Server", "--mlperf-mode=performance",
                                    "--mlperf-setting=server_target_qps=8", "--mlperf-setting=min_query_count=100",
                                    "--mlperf-setting=min_duration_ms=20000", "--mlperf-total-samples=64")
        elapsed = time.monotonic() - began
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines([f"*engine failed: *EndpointError: endpoint {b.url}: *logs kept in*"])
        assert elapsed < 45, elapsed
        assert list((pytester.path / "results").rglob("mlperf_log_detail.txt"))
        assert a.alive()
    finally:
        killer.cancel()
