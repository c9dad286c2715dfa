"""The openai backend's client, measured in one run; prints one JSON line per measurement.

(a) Ceiling: the highest loadgen Server target QPS that stays VALID through ``run_loadgen`` +
    ``OpenAIBackend`` against a server that answers at once: the fake OpenAI server of
    ``tests/servers.py`` (``--fixed``: every answer 128 streamed tokens, vLLM's chunk format,
    pre-rendered and sent in one write), in a process of its own. llama3.1-8b Server settings
    (TTFT 2 s, TPOT 100 ms, p99), ``min_duration`` 10 s, the embedded set's prompts (as token
    ids); QPS doubled from ``--start-qps`` until INVALID, then bisected. For every run: CPU
    microseconds per query of the backend's loop thread (HTTP, stream parsing), of the rest of
    this process (loadgen, the bridge), and of the server process, so the report says where the
    time goes.
(b) Against ``vllm bench serve`` on the same fake server: at each ``--rates`` R, loadgen Server
    at R for ``--queries`` queries through our client, and ``vllm bench serve --request-rate R
    --num-prompts N`` (Poisson arrivals both); completed requests/s of each and the ratio.

    python scripts/bench_openai.py                    # both parts (b needs vllm installed)
    python scripts/bench_openai.py --only ceiling --start-qps 500
    python scripts/bench_openai.py --only vllm-bench --rates 100,400,800 --queries 4000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pytest_mlperf.backends.base import GenerationConfig, SystemSpec  # noqa: E402
from pytest_mlperf.backends.openai import OpenAIBackend  # noqa: E402
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


class FakeServerProcess:
    """``python -m tests.servers fake --fixed`` on a free port, stopped on exit."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.servers", "fake", "--fixed", "--port", str(self.port)],
            cwd=ROOT, stdout=subprocess.PIPE, text=True, start_new_session=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if "listening" not in line:
            raise RuntimeError(f"the fake server did not start: {line!r}")

    def cpu_s(self) -> float:
        return _cpu_s(f"/proc/{self.process.pid}/stat")

    def __enter__(self) -> FakeServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def _plan(qps: float, samples: int, duration_ms: int, queries: int) -> SettingsPlan:
    return SettingsPlan(
        benchmark="llama3.1-8b", scenario=Scenario.SERVER, profile=Profile.QUICK,
        total_count=samples, performance_count=samples,
        cli_overrides={"server_target_qps": qps, "min_duration_ms": duration_ms,
                       "min_query_count": queries},
    )


def run_client(backend: OpenAIBackend, server: FakeServerProcess, prompts: list[list[int]],
               qps: float, duration_ms: int, queries: int, outdir: Path) -> dict[str, Any]:
    loop_stat = f"/proc/self/task/{backend._thread.native_id}/stat"  # type: ignore[union-attr]
    before = (_cpu_s(loop_stat), _cpu_s("/proc/self/stat"), server.cpu_s(), time.perf_counter())
    result = run_loadgen(plan=_plan(qps, len(prompts), duration_ms, queries), mode=Mode.PERFORMANCE,
                         backend=backend, prompts=prompts, outdir=outdir)
    after = (_cpu_s(loop_stat), _cpu_s("/proc/self/stat"), server.cpu_s(), time.perf_counter())
    done = sum(c["completed"] for c in backend.describe()["endpoint_counts"].values()) or 1
    loop_s, process_s, server_s = (after[i] - before[i] for i in range(3))
    f = result.figures
    return {
        "validity": result.validity, "reason": result.invalid_reason,
        "backend_error": result.backend_error,
        "completed_qps": f.samples_per_second, "scheduled_qps": f.scheduled_samples_per_second,
        "queries": f.query_count,
        "ttft_p99_ms": round((f.ttft_ns.p99 or 0) / 1e6, 2),
        "tpot_p99_ms": round((f.tpot_ns.p99 or 0) / 1e6, 3),
        "tokens_per_query": round(result.output_tokens / done, 1),
        "wall_s": round(after[3] - before[3], 2),
        "cpu_us_per_query": {"client_loop": round(loop_s / done * 1e6, 1),
                             "loadgen_and_bridge": round((process_s - loop_s) / done * 1e6, 1),
                             "server": round(server_s / done * 1e6, 1)},
        "cpu_busy": {"client_loop": round(loop_s / (after[3] - before[3]), 2),
                     "client_process": round(process_s / (after[3] - before[3]), 2),
                     "server": round(server_s / (after[3] - before[3]), 2)},
    }


def bench_ceiling(backend: OpenAIBackend, server: FakeServerProcess, prompts: list[list[int]],
                  start_qps: float, duration_ms: int, steps: int, workdir: Path) -> None:
    best, worst = 0.0, float("inf")
    n = 0

    def probe(qps: float) -> None:
        nonlocal n, best, worst
        n += 1
        r = run_client(backend, server, prompts, qps, duration_ms, 1000, workdir / f"ceiling_{n}_{qps:g}")
        emit(what="ceiling_run", target_qps=qps, **r)
        if r["validity"] == "VALID" and not r["backend_error"]:
            best = max(best, qps)
        else:
            worst = min(worst, qps)

    qps = start_qps
    while worst == float("inf") and qps < 1e6:
        probe(qps)
        qps *= 2
    for _ in range(steps):
        if worst - best <= 0.02 * worst:
            break
        probe(round((best + worst) / 2, -1))
    emit(what="ceiling", max_valid_qps=best, first_invalid_qps=worst, min_duration_ms=duration_ms,
         answer_tokens=128, ttft_ms=2000, tpot_ms=100, percentile=99)


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=("ceiling", "vllm-bench"), default=None)
    parser.add_argument("--start-qps", type=float, default=250.0)
    parser.add_argument("--duration-ms", type=int, default=10_000, help="Server min_duration per run")
    parser.add_argument("--steps", type=int, default=4, help="bisection steps")
    parser.add_argument("--rates", default="100,400", help="request rates for part (b)")
    parser.add_argument("--queries", type=int, default=2000, help="queries per rate in part (b)")
    args = parser.parse_args(argv)

    from importlib.metadata import version

    from pytest_mlperf import embedded
    from pytest_mlperf.data.dataset import load_dataset

    emit(what="versions", python=platform.python_version(), machine=platform.machine(),
         loadgen=version("mlcommons-loadgen"), aiohttp=version("aiohttp"),
         msgspec=version("msgspec"), cpus=usable_cores())
    prompts = load_dataset(embedded.DATASET_PATH).prompts()
    workdir = Path(tempfile.mkdtemp(prefix="bench_openai_"))
    with FakeServerProcess() as server:
        backend = OpenAIBackend(SystemSpec.served(SERVED_NAME, [server.url]), {},
                                GenerationConfig(max_new_tokens=128), None)
        backend.start()
        backend.prepare(Scenario.SERVER)
        emit(what="client", **{k: v for k, v in backend.describe().items() if k != "endpoint_counts"})
        try:
            if args.only in (None, "ceiling"):
                bench_ceiling(backend, server, prompts, args.start_qps, args.duration_ms, args.steps, workdir)
            if args.only in (None, "vllm-bench"):
                rates = [float(r) for r in args.rates.split(",") if r]
                bench_vs_vllm(backend, server, prompts, rates, args.queries, workdir)
        finally:
            backend.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
