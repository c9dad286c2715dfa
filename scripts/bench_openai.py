"""The openai backend's client, measured in one run; prints one JSON line per measurement.

(a) Ceiling: the highest loadgen Server target QPS that stays VALID through ``run_loadgen`` +
    ``OpenAIBackend`` against a server that answers at once: the fake OpenAI server of
    ``tests/servers.py`` (``--fixed``: every answer 128 streamed tokens, vLLM's chunk format,
    pre-rendered and sent in one write; ``--server-processes`` of them on one port), in
    processes of its own. llama3.1-8b Server settings (TTFT 2 s, TPOT 100 ms, p99),
    ``min_duration`` 10 s, the embedded set's prompts (as token ids); QPS doubled from
    ``--start-qps`` until INVALID, then bisected. Once per ``--processes`` value (the client's
    processes: 1 is the one-loop client, ``auto`` what ``--mlperf-client-processes`` picks here).
    For every run: CPU microseconds per query of the client (its loop thread, or its processes),
    of the rest of this process (loadgen, the bridge, the pool's reader), and of the server, so
    the report says where the time goes.
(s) The server's own ceiling, measured with the same client: the client processes keep
    ``--closed-concurrency`` requests in flight (a new one as each completes, no loadgen) for
    ``--duration-ms``; completed requests/s. The (a) ceilings are printed as ratios of it.
(l) Latency: at ``--latency-qps`` (a rate every client carries), loadgen Server against a fake
    server that waits ``--ttft-ms`` before the first token and ``--rest-ms`` before the rest,
    once per ``--processes`` value; p50/p99 TTFT and TPOT of each, as ratios of the first's.
(b) Against ``vllm bench serve`` on the same fake server: at each ``--rates`` R, loadgen Server
    at R for ``--queries`` queries through our client, and ``vllm bench serve --request-rate R
    --num-prompts N`` (Poisson arrivals both); completed requests/s of each and the ratio.

    python scripts/bench_openai.py --only ceiling --start-qps 500                 # today's client
    python scripts/bench_openai.py --only ceiling,server,latency --processes 1,8 --server-processes 4
    python scripts/bench_openai.py --only vllm-bench --rates 100,400,800 --queries 4000
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pytest_mlperf.backends.base import GenerationConfig, Query, SystemSpec  # noqa: E402
from pytest_mlperf.backends.openai import OpenAIBackend, auto_client_processes  # noqa: E402
from pytest_mlperf.core.cpu import usable_cores  # noqa: E402
from pytest_mlperf.core.vocabulary import Mode, Profile, Scenario  # noqa: E402
from pytest_mlperf.loadgen.runner import run_loadgen  # noqa: E402
from pytest_mlperf.loadgen.settings import SettingsPlan  # noqa: E402
from tests.servers import SERVED_NAME, free_port, vllm_command  # noqa: E402

_TICK = os.sysconf("SC_CLK_TCK")


def emit(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


def _cpu_s(stat_path: str) -> float:
    """utime + stime of a /proc stat file, in seconds."""
    fields = Path(stat_path).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def _tree_cpu_s(pid: int) -> float:
    """CPU seconds of ``pid`` and its children (a fake server's processes)."""
    total = _cpu_s(f"/proc/{pid}/stat")
    with contextlib.suppress(OSError):
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            with contextlib.suppress(OSError):
                total += _cpu_s(f"/proc/{child}/stat")
    return total


class FakeServerProcess:
    """``python -m tests.servers fake --fixed`` on a free port (``processes`` of them, one
    port), stopped on exit."""

    def __init__(self, processes: int = 1, ttft_ms: float = 0.0, rest_ms: float = 0.0) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.servers", "fake", "--fixed", "--port", str(self.port),
             "--processes", str(processes), "--ttft-ms", str(ttft_ms), "--rest-ms", str(rest_ms)],
            cwd=ROOT, stdout=subprocess.PIPE, text=True, start_new_session=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if "listening" not in line:
            raise RuntimeError(f"the fake server did not start: {line!r}")

    def cpu_s(self) -> float:
        return _tree_cpu_s(self.process.pid)

    def __enter__(self) -> FakeServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)


def _plan(qps: float, samples: int, duration_ms: int, queries: int) -> SettingsPlan:
    return SettingsPlan(
        benchmark="llama3.1-8b", scenario=Scenario.SERVER, profile=Profile.QUICK,
        total_count=samples, performance_count=samples,
        cli_overrides={"server_target_qps": qps, "min_duration_ms": duration_ms,
                       "min_query_count": queries},
    )


def _client_cpu_s(backend: OpenAIBackend) -> tuple[float, float]:
    """(the client's CPU seconds: its processes, or its loop thread; this process's)."""
    pids = backend.client_pids()
    if pids:
        client = sum(_cpu_s(f"/proc/{pid}/stat") for pid in pids)
        return client, _cpu_s("/proc/self/stat")
    native = backend._thread.native_id  # type: ignore[union-attr]
    return _cpu_s(f"/proc/self/task/{native}/stat"), _cpu_s("/proc/self/stat")


def run_client(backend: OpenAIBackend, server: FakeServerProcess, prompts: list[list[int]],
               qps: float, duration_ms: int, queries: int, outdir: Path) -> dict[str, Any]:
    backend.prepare(Scenario.SERVER)
    separate = bool(backend.client_pids())
    before = (*_client_cpu_s(backend), server.cpu_s(), time.perf_counter())
    result = run_loadgen(plan=_plan(qps, len(prompts), duration_ms, queries), mode=Mode.PERFORMANCE,
                         backend=backend, prompts=prompts, outdir=outdir)
    after = (*_client_cpu_s(backend), server.cpu_s(), time.perf_counter())
    done = sum(c["completed"] for c in backend.describe()["endpoint_counts"].values()) or 1
    loop_s, process_s, server_s = (after[i] - before[i] for i in range(3))
    if not separate:  # the loop thread is part of this process
        process_s -= loop_s
    f = result.figures
    return {
        "validity": result.validity, "reason": result.invalid_reason,
        "backend_error": result.backend_error,
        "completed_qps": f.samples_per_second, "scheduled_qps": f.scheduled_samples_per_second,
        "queries": f.query_count,
        "ttft_p50_ms": round((f.ttft_ns.p50 or 0) / 1e6, 3),
        "ttft_p99_ms": round((f.ttft_ns.p99 or 0) / 1e6, 3),
        "tpot_p50_ms": round((f.tpot_ns.p50 or 0) / 1e6, 4),
        "tpot_p99_ms": round((f.tpot_ns.p99 or 0) / 1e6, 4),
        "tokens_per_query": round(result.output_tokens / done, 1),
        "wall_s": round(after[3] - before[3], 2),
        "cpu_us_per_query": {"client": round(loop_s / done * 1e6, 1),
                             "loadgen_and_bridge": round(process_s / done * 1e6, 1),
                             "server": round(server_s / done * 1e6, 1)},
        "cpu_busy": {"client": round(loop_s / (after[3] - before[3]), 2),
                     "loadgen_and_bridge": round(process_s / (after[3] - before[3]), 2),
                     "server": round(server_s / (after[3] - before[3]), 2)},
    }


def bench_ceiling(backend: OpenAIBackend, server: FakeServerProcess, prompts: list[list[int]],
                  start_qps: float, duration_ms: int, steps: int, workdir: Path) -> float:
    best, worst = 0.0, float("inf")
    n = 0
    processes = backend.describe().get("client_processes", 1)

    def probe(qps: float) -> None:
        nonlocal n, best, worst
        n += 1
        r = run_client(backend, server, prompts, qps, duration_ms, 1000,
                       workdir / f"ceiling_p{processes}_{n}_{qps:g}")
        emit(what="ceiling_run", processes=processes, target_qps=qps, **r)
        if r["validity"] == "VALID" and not r["backend_error"]:
            best = max(best, qps)
        else:
            worst = min(worst, qps)

    qps = start_qps
    while worst == float("inf") and qps < 1e6:
        probe(qps)
        qps *= 2
    while best == 0.0 and worst > 1:
        probe(round(worst / 2))
    for _ in range(steps):
        if worst - best <= 0.02 * worst:
            break
        probe(round((best + worst) / 2, -1))
    emit(what="ceiling", processes=processes, max_valid_qps=best, first_invalid_qps=worst,
         min_duration_ms=duration_ms, answer_tokens=128, ttft_ms=2000, tpot_ms=100, percentile=99)
    return best


class _ClosedLoop:
    """A responder that issues a new query as each one completes (no loadgen)."""

    def __init__(self, backend: OpenAIBackend, prompts: list[list[int]], concurrency: int) -> None:
        self.backend = backend
        self.prompts = prompts
        self.concurrency = concurrency
        self.completed = 0
        self.next_id = 1
        self.stop = False
        self.error: BaseException | None = None
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.wake = threading.Event()
        self.owed = 0

    def _queries(self, n: int) -> list[Query]:
        with self.lock:
            first, self.next_id = self.next_id, self.next_id + n
        return [Query(rid, rid % len(self.prompts), self.prompts[rid % len(self.prompts)])
                for rid in range(first, first + n)]

    def first_token(self, query: Query, token_id: int) -> None:
        pass

    def complete(self, query: Query, tokens: Any) -> None:
        with self.lock:
            self.completed += 1
            self.owed += 1
        self.wake.set()

    def _issuer(self) -> None:
        """Issues what completed since its last turn, off the client's reader thread."""
        while not self.stop:
            self.wake.wait(0.1)
            self.wake.clear()
            with self.lock:
                owed, self.owed = self.owed, 0
            if owed and not self.stop:
                self.backend.issue(self._queries(owed), self)

    def fail(self, error: BaseException) -> None:
        self.error = error
        self.done.set()

    def run(self, seconds: float) -> float:
        self.backend.prepare(Scenario.SERVER)
        self.backend.issue(self._queries(self.concurrency), self)
        issuer = threading.Thread(target=self._issuer, daemon=True)
        issuer.start()
        time.sleep(1.0)  # connections open, the pipes fill
        with self.lock:
            c0, t0 = self.completed, time.perf_counter()
        self.done.wait(seconds)
        with self.lock:
            c1, t1 = self.completed, time.perf_counter()
        self.stop = True
        time.sleep(1.0)
        if self.error is not None:
            raise self.error
        return (c1 - c0) / (t1 - t0)


def bench_server(backend: OpenAIBackend, server: FakeServerProcess, prompts: list[list[int]],
                 concurrency: int, duration_ms: int) -> float:
    cpu0, began = server.cpu_s(), time.perf_counter()
    qps = _ClosedLoop(backend, prompts, concurrency).run(duration_ms / 1000)
    busy = (server.cpu_s() - cpu0) / (time.perf_counter() - began)
    emit(what="server_ceiling", completed_qps=round(qps, 1), concurrency=concurrency,
         client_processes=backend.describe().get("client_processes", 1), server_cpu_busy=round(busy, 2),
         seconds=duration_ms / 1000)
    return qps


def bench_latency(backends: list[OpenAIBackend], server: FakeServerProcess, prompts: list[list[int]],
                  qps: float, queries: int, workdir: Path) -> None:
    first: dict[str, Any] | None = None
    keys = ("ttft_p50_ms", "ttft_p99_ms", "tpot_p50_ms", "tpot_p99_ms")
    for backend in backends:
        processes = backend.describe().get("client_processes", 1)
        r = run_client(backend, server, prompts, qps, 0, queries, workdir / f"latency_p{processes}")
        emit(what="latency_run", processes=processes, target_qps=qps, **r)
        if first is None:
            first = r
            continue
        emit(what="latency", processes=processes, target_qps=qps,
             **{f"{k}_ratio": round(r[k] / first[k], 4) if first[k] else None for k in keys})


def bench_vs_vllm(backend: OpenAIBackend, server: FakeServerProcess, prompts: list[list[int]],
                  rates: list[float], queries: int, workdir: Path) -> None:
    from pytest_mlperf import embedded

    input_len = round(sum(map(len, prompts)) / len(prompts))
    for rate in rates:
        ours = run_client(backend, server, prompts, rate, 0, queries, workdir / f"ours_{rate:g}")
        emit(what="ours", rate=rate, **ours)
        result_dir = workdir / f"vllm_bench_{rate:g}"
        command = vllm_command(
            "bench", "serve", "--backend", "openai", "--base-url", server.url,
            "--endpoint", "/v1/completions", "--model", SERVED_NAME,
            "--tokenizer", str(embedded.MODEL_DIR), "--dataset-name", "random",
            "--random-input-len", str(input_len), "--random-output-len", "128",
            "--ignore-eos", "--num-prompts", str(queries), "--request-rate", str(rate),
            "--disable-tqdm", "--save-result", "--result-dir", str(result_dir),
            "--result-filename", "result.json", "--seed", "0")
        cpu0 = server.cpu_s()
        began = time.perf_counter()
        proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True,
                              env={**os.environ, "VLLM_TARGET_DEVICE": os.environ.get("VLLM_TARGET_DEVICE", "cpu")})
        wall = time.perf_counter() - began
        if proc.returncode != 0:
            emit(what="vllm_bench", rate=rate, error=proc.stderr[-2000:])
            continue
        data = json.loads((result_dir / "result.json").read_text())
        theirs = {"completed": data.get("completed"), "duration_s": data.get("duration"),
                  "completed_qps": data.get("request_throughput"),
                  "ttft_p99_ms": data.get("p99_ttft_ms"),
                  "tokens_per_query": round(data.get("total_output_tokens", 0) / max(1, data.get("completed") or 1), 1),
                  "server_cpu_us_per_query": round((server.cpu_s() - cpu0) / max(1, data.get("completed") or 1) * 1e6, 1),
                  "wall_s": round(wall, 1)}
        emit(what="vllm_bench", rate=rate, **theirs)
        if ours["completed_qps"] and theirs["completed_qps"]:
            # Both draw Poisson arrivals with their own seeds: a run's realized rate differs from R
            # by ~1/sqrt(N) either way. ours_of_scheduled is loadgen's completed / scheduled rate.
            emit(what="compare", rate=rate, queries=queries, ours_qps=ours["completed_qps"],
                 vllm_bench_qps=theirs["completed_qps"],
                 ratio=round(ours["completed_qps"] / theirs["completed_qps"], 4),
                 ours_of_scheduled=round(ours["completed_qps"] / ours["scheduled_qps"], 4)
                 if ours["scheduled_qps"] else None)


def _backend(url: str, processes: int | None) -> OpenAIBackend:
    backend = OpenAIBackend(SystemSpec.served(SERVED_NAME, [url]), {},
                            GenerationConfig(max_new_tokens=128), None, client_processes=processes)
    backend.start()
    return backend


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="ceiling,vllm-bench",
                        help="comma-separated: ceiling, server, latency, vllm-bench")
    parser.add_argument("--processes", default="1", help="client processes to measure, e.g. 1,auto,8")
    parser.add_argument("--server-processes", type=int, default=1, help="fake server processes")
    parser.add_argument("--start-qps", type=float, default=250.0)
    parser.add_argument("--duration-ms", type=int, default=10_000, help="Server min_duration per run")
    parser.add_argument("--steps", type=int, default=4, help="bisection steps")
    parser.add_argument("--closed-concurrency", type=int, default=1024, help="(s): requests in flight")
    parser.add_argument("--latency-qps", type=float, default=400.0)
    parser.add_argument("--latency-queries", type=int, default=8000)
    parser.add_argument("--ttft-ms", type=float, default=20.0)
    parser.add_argument("--rest-ms", type=float, default=127.0)
    parser.add_argument("--rates", default="100,400", help="request rates for part (b)")
    parser.add_argument("--queries", type=int, default=2000, help="queries per rate in part (b)")
    args = parser.parse_args(argv)
    parts = set(args.only.split(","))
    counts = [None if p == "auto" else int(p) for p in args.processes.split(",") if p]

    from importlib.metadata import version

    from pytest_mlperf import embedded
    from pytest_mlperf.data.dataset import load_dataset

    emit(what="versions", python=platform.python_version(), machine=platform.machine(),
         loadgen=version("mlcommons-loadgen"), aiohttp=version("aiohttp"),
         msgspec=version("msgspec"), cpus=usable_cores(), auto_client_processes=auto_client_processes())
    prompts = load_dataset(embedded.DATASET_PATH).prompts()
    workdir = Path(tempfile.mkdtemp(prefix="bench_openai_"))
    ceilings: dict[int, float] = {}
    with FakeServerProcess(args.server_processes) as server:
        for count in counts:
            backend = _backend(server.url, count)
            try:
                emit(what="client", **{k: v for k, v in backend.describe().items() if k != "endpoint_counts"})
                if "ceiling" in parts:
                    ceilings[backend.describe()["client_processes"]] = bench_ceiling(
                        backend, server, prompts, args.start_qps, args.duration_ms, args.steps, workdir)
                if "server" in parts and count == counts[-1]:
                    own = bench_server(backend, server, prompts, args.closed_concurrency, args.duration_ms)
                    for processes, best in ceilings.items():
                        emit(what="ceiling_of_server", processes=processes, max_valid_qps=best,
                             server_ceiling_qps=round(own, 1), ratio=round(best / own, 4))
                if "vllm-bench" in parts:
                    rates = [float(r) for r in args.rates.split(",") if r]
                    bench_vs_vllm(backend, server, prompts, rates, args.queries, workdir)
            finally:
                backend.close()
    if "latency" in parts:
        with FakeServerProcess(args.server_processes, args.ttft_ms, args.rest_ms) as server:
            backends = [_backend(server.url, count) for count in counts]
            try:
                bench_latency(backends, server, prompts, args.latency_qps, args.latency_queries, workdir)
            finally:
                for backend in backends:
                    backend.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
