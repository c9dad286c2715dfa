"""What the harness costs, measured in one run; prints one JSON line per measurement.

(a) Offline: tokens/s through the plugin (``run_loadgen`` + ``VllmBackend`` on ``LLM``) against
    ``LLM.generate`` on the same engine instance, the same prompts and the same sampling
    parameters. Prefix caching is off in the engine, so a pass never reuses an earlier pass's
    KV; passes alternate (raw, plugin, raw, plugin, ...) so that load from elsewhere on the
    machine falls on both alike. Ratio = plugin / raw, from the summed tokens and seconds.
(b) Server, no engine: the highest target QPS that stays VALID through our harness
    (``run_loadgen`` + ``LoadgenResponder``, a backend answering at once) against loadgen's own
    limit with a minimal SUT (``FirstTokenComplete`` + ``QuerySamplesComplete`` straight from
    loadgen's issue callback), both under the same TestSettings, alternating per QPS step.

    python scripts/bench_harness.py [--model DIR --dataset FILE] [--samples 128 --rounds 3]
    python scripts/bench_harness.py --only server     # (b) alone: no vLLM needed
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pytest_mlperf.backends.base import (  # noqa: E402
    Backend,
    GenerationConfig,
    Query,
    Responder,
    SystemSpec,
)
from pytest_mlperf.core.cpu import usable_cores  # noqa: E402
from pytest_mlperf.core.vocabulary import Mode, Profile, Scenario  # noqa: E402
from pytest_mlperf.loadgen.runner import run_loadgen  # noqa: E402
from pytest_mlperf.loadgen.settings import SettingsPlan  # noqa: E402


def emit(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


# --- (a) Offline: plugin against LLM.generate --------------------------------------------------


def bench_offline(model_dir: Path, prompts: list[list[int]], rounds: int, engine_args: dict[str, Any],
                  workdir: Path, warmup: int = 8) -> None:
    from vllm.inputs import TokensPrompt

    from pytest_mlperf.backends import vllm_backend

    args = {"enable_prefix_caching": False, **engine_args}
    backend = vllm_backend.VllmBackend(SystemSpec.local(model_dir), args, GenerationConfig())
    started = time.perf_counter()
    backend.start()
    backend.prepare(Scenario.OFFLINE)  # starts the LLM
    emit(what="engine", startup_s=round(time.perf_counter() - started, 1), **backend.describe())
    llm, params = backend.llm, vllm_backend.sampling_params(backend.generation)
    token_prompts = [TokensPrompt(prompt_token_ids=p) for p in prompts]
    _on_engine_thread(lambda: llm.generate(token_prompts[:warmup], params, use_tqdm=False))  # warm-up

    plan = SettingsPlan(benchmark="llama3.1-8b", scenario=Scenario.OFFLINE, profile=Profile.QUICK,
                        total_count=len(prompts), performance_count=len(prompts))
    totals = {"raw": [0, 0.0], "plugin": [0, 0.0]}
    for i in range(rounds):
        outputs, seconds = _on_engine_thread(lambda: llm.generate(token_prompts, params, use_tqdm=False))
        tokens = sum(len(o.outputs[0].token_ids) for o in outputs)
        totals["raw"][0] += tokens
        totals["raw"][1] += seconds
        emit(what="offline_raw", round=i, prompts=len(prompts), out_tokens=tokens,
             seconds=round(seconds, 3), tok_per_s=round(tokens / seconds, 1))

        timed = _Timed(backend)
        result = run_loadgen(plan=plan, mode=Mode.PERFORMANCE, backend=timed, prompts=prompts,
                             outdir=workdir / f"offline_{i}")
        lg_tps = result.figures.tokens_per_second or 0.0
        # loadgen's own figure: tokens / (last completion - first issue)
        seconds = result.output_tokens / lg_tps if lg_tps else float("nan")
        totals["plugin"][0] += result.output_tokens
        totals["plugin"][1] += seconds
        emit(what="offline_plugin", round=i, prompts=len(prompts), out_tokens=result.output_tokens,
             seconds=round(seconds, 3), tok_per_s=round(lg_tps, 1), validity=result.validity,
             run_wall_s=round(result.wall_seconds, 3), backend_error=result.backend_error,
             # queries reach loadgen as they finish: the first long before the last
             first_completion_s=timed.since_issue(0), median_completion_s=timed.since_issue(0.5),
             last_completion_s=timed.since_issue(1))
    raw = totals["raw"][0] / totals["raw"][1]
    plugin = totals["plugin"][0] / totals["plugin"][1]
    emit(what="offline_ratio", raw_tok_per_s=round(raw, 1), plugin_tok_per_s=round(plugin, 1),
         ratio=round(plugin / raw, 4), target=0.99, rounds=rounds, prompts=len(prompts),
         prefix_caching=args["enable_prefix_caching"])
    backend.close()


class _Timed(Backend):
    """Passes a run to ``inner`` and notes when it was issued and when each query completed."""

    name = "timed"

    def __init__(self, inner: Backend) -> None:
        super().__init__(inner.system, inner.engine_args, inner.generation)
        self.inner, self.issued, self.completed = inner, 0.0, []
        self.streaming = inner.streaming

    def start(self) -> None:
        pass

    def prepare(self, scenario: Scenario) -> None:
        self.inner.prepare(scenario)

    def issue(self, queries: Sequence[Query], responder: Responder) -> None:
        self.issued = self.issued or time.perf_counter()
        outer = self

        class Noting:
            def first_token(self, query: Query, token_id: int) -> None:
                responder.first_token(query, token_id)

            def complete(self, query: Query, tokens: Sequence[int]) -> None:
                outer.completed.append(time.perf_counter())
                responder.complete(query, tokens)

            def fail(self, error: BaseException) -> None:
                responder.fail(error)

        self.inner.issue(queries, Noting())

    def flush(self) -> None:
        self.inner.flush()

    def since_issue(self, quantile: float) -> float | None:
        if not self.completed:
            return None
        done = sorted(self.completed)
        return round(done[min(len(done) - 1, int(quantile * len(done)))] - self.issued, 3)


def _on_engine_thread(work: Callable[[], Any]) -> tuple[Any, float]:
    """Run ``work`` on a fresh thread set up as the backend's generation thread (same OpenMP
    thread count on a CPU), returning its result and its seconds."""
    from pytest_mlperf.backends import vllm_backend

    box: dict[str, Any] = {}

    def run() -> None:
        vllm_backend.configure_engine_thread()
        t0 = time.perf_counter()
        box["result"] = work()
        box["seconds"] = time.perf_counter() - t0

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    return box["result"], box["seconds"]


# --- (b) Server without an engine: how many QPS the harness sustains ---------------------------


class Instant(Backend):
    """Answers every query at once with a first token and four tokens."""

    name = "instant"
    streaming = True

    def start(self) -> None:
        pass

    def issue(self, queries: Sequence[Query], responder: Responder) -> None:
        for q in queries:
            responder.first_token(q, 5)
            responder.complete(q, (5, 6, 7, 8))


def _server_plan(qps: float, samples: int, duration_ms: int) -> SettingsPlan:
    return SettingsPlan(
        benchmark="llama3.1-8b", scenario=Scenario.SERVER, profile=Profile.QUICK,
        total_count=samples, performance_count=samples,
        cli_overrides={"server_target_qps": qps, "min_duration_ms": duration_ms,
                       "min_query_count": 1000},
    )


def run_harness(qps: float, samples: int, duration_ms: int, outdir: Path) -> dict[str, Any]:
    result = run_loadgen(plan=_server_plan(qps, samples, duration_ms), mode=Mode.PERFORMANCE,
                         backend=Instant(SystemSpec.local(".")),
                         prompts=[[1, 2, 3]] * samples, outdir=outdir)
    return {"validity": result.validity, "reason": result.invalid_reason,
            "completed_qps": result.figures.samples_per_second,
            "ttft_p99_ms": (result.figures.ttft_ns.p99 or 0) / 1e6, "wall_s": result.wall_seconds}


def run_minimal(qps: float, samples: int, duration_ms: int, outdir: Path) -> dict[str, Any]:
    """The least a Python SUT can do: answer inside loadgen's issue callback."""
    import mlperf_loadgen as lg
    import numpy as np

    from pytest_mlperf.loadgen.logs import read_detail

    data = np.asarray([5, 6, 7, 8], dtype=np.int32)
    ptr, nbytes = data.ctypes.data, data.nbytes

    def issue(samples_: Sequence[Any]) -> None:
        for s in samples_:
            lg.FirstTokenComplete([lg.QuerySampleResponse(s.id, ptr, 4, 1)])
            lg.QuerySamplesComplete([lg.QuerySampleResponse(s.id, ptr, nbytes, 4)])

    settings = _server_plan(qps, samples, duration_ms).build(Mode.PERFORMANCE)
    outdir.mkdir(parents=True)
    log_settings = lg.LogSettings()
    log_settings.log_output.outdir = str(outdir)
    log_settings.log_output.copy_summary_to_stdout = False
    log_settings.enable_trace = False
    sut = lg.ConstructSUT(issue, lambda: None)
    qsl = lg.ConstructQSL(samples, samples, lambda _: None, lambda _: None)
    t0 = time.perf_counter()
    lg.StartTestWithLogSettings(sut, qsl, settings, log_settings, str(outdir / "audit.config.unused"))
    wall = time.perf_counter() - t0
    lg.DestroyQSL(qsl)
    lg.DestroySUT(sut)
    log = read_detail(outdir / "mlperf_log_detail.txt")
    return {"validity": log.get("result_validity"), "reason": log.get("result_invalid_reason"),
            "completed_qps": log.get("result_completed_samples_per_sec"),
            "ttft_p99_ms": (log.get("result_first_token_99.00_percentile_latency_ns") or 0) / 1e6,
            "wall_s": wall}


def bench_server(start_qps: float, duration_ms: int, steps: int, workdir: Path) -> None:
    samples = 1000
    sut_runs: dict[str, Callable[..., dict[str, Any]]] = {"harness": run_harness, "minimal": run_minimal}
    best = {name: 0.0 for name in sut_runs}
    worst = {name: float("inf") for name in sut_runs}
    n = 0

    def probe(name: str, qps: float) -> bool:
        nonlocal n
        n += 1
        r = sut_runs[name](qps, samples, duration_ms, workdir / f"server_{n}_{name}_{qps:g}")
        emit(what="server_instant", sut=name, target_qps=qps, **r)
        ok = r["validity"] == "VALID"
        if ok:
            best[name] = max(best[name], qps)
        else:
            worst[name] = min(worst[name], qps)
        return ok

    # Double until both fail, then bisect each between its last VALID and first INVALID.
    qps = start_qps
    while any(worst[name] == float("inf") for name in sut_runs) and qps < 1e7:
        for name in sut_runs:
            if worst[name] == float("inf"):
                probe(name, qps)
        qps *= 2
    for _ in range(steps):
        for name in sut_runs:
            lo, hi = best[name], worst[name]
            if hi - lo > 0.02 * hi:
                probe(name, round((lo + hi) / 2, -1) if hi > 200 else (lo + hi) / 2)
    emit(what="server_max_valid_qps", harness=best["harness"], minimal=best["minimal"],
         ratio=round(best["harness"] / best["minimal"], 4) if best["minimal"] else None,
         first_invalid={k: v for k, v in worst.items()}, min_duration_ms=duration_ms,
         ttft_ms=2000, tpot_ms=100, percentile=99)


# --- main --------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=("offline", "server"), default=None)
    parser.add_argument("--model", type=Path, default=None, help="model folder (default: embedded)")
    parser.add_argument("--dataset", type=Path, default=None, help="cnn_eval.json-style file (default: embedded)")
    parser.add_argument("--samples", type=int, default=128, help="prompts per Offline pass")
    parser.add_argument("--rounds", type=int, default=3, help="alternating raw/plugin Offline passes")
    parser.add_argument("--engine-arg", action="append", default=[], metavar="KEY=JSON")
    parser.add_argument("--start-qps", type=float, default=1000.0)
    parser.add_argument("--duration-ms", type=int, default=10_000, help="Server min_duration per step")
    parser.add_argument("--steps", type=int, default=4, help="bisection steps per SUT")
    args = parser.parse_args(argv)
    # vLLM logs to stdout by default; keep stdout for the JSON lines.
    import os

    os.environ.setdefault("VLLM_LOGGING_STREAM", "ext://sys.stderr")

    from importlib.metadata import version

    emit(what="versions", python=platform.python_version(), machine=platform.machine(),
         loadgen=version("mlcommons-loadgen"), cpus=usable_cores())
    workdir = Path(tempfile.mkdtemp(prefix="bench_harness_"))
    if args.only in (None, "offline"):
        from pytest_mlperf.data.dataset import load_dataset

        if args.model is None or args.dataset is None:
            from pytest_mlperf import embedded
        model = args.model or Path(embedded.MODEL_DIR)
        dataset = args.dataset or Path(embedded.DATASET_PATH)
        prompts = load_dataset(dataset).prompts()[: args.samples]
        from pytest_mlperf.options import parse_engine_args

        engine_args = parse_engine_args(args.engine_arg)
        bench_offline(model, prompts, args.rounds, engine_args, workdir)
    if args.only in (None, "server"):
        bench_server(args.start_qps, args.duration_ms, args.steps, workdir)
    return 0




if __name__ == "__main__":
    raise SystemExit(main())
