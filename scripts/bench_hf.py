"""Where the transformers backend's Offline throughput goes; one JSON line per measurement.

The same prompts, the same weights and the same generation, three ways, alternating round by
round (a, b, c, a, b, c, ...) so that load from elsewhere on the machine falls on all three
alike:

(a) ``direct_main``: ``model.generate`` batched exactly as ``HFBackend._generate`` batches
    (prompts sorted by length, ``batch_size`` at a time, left padding, greedy, the same EOS,
    pad and token limits, no streamer) on the main thread;
(b) ``direct_thread``: the same on a fresh thread;
(c) ``plugin``: ``run_loadgen`` + ``HFBackend`` in Offline performance mode (loadgen's own
    ``result_tokens_per_second``).

(a) and (b) set their thread up as the backend sets up its worker (``configure_thread``), so
all three run with the same torch thread count. Every pass runs in a fresh process of its own
(loading the model takes ~2 s): once two threads of one process have run OpenMP regions, libgomp
keeps a thread team for each and throttles its spinning, which changes what is measured
(``--in-process`` runs all passes in this process to show it). Each line carries a hash of the
outputs in prompt order (``outputs_sha``), so passes, thread counts and versions can be checked
to produce the same tokens. Ratios b/a and c/a come from the summed tokens and seconds.

``--busy N`` runs N busy-looping processes beside the passes, standing in for the neighbours a
shared CI machine has.

    python scripts/bench_hf.py [--model DIR --dataset FILE] [--samples 256 --rounds 3] [--busy 1]
    python scripts/bench_hf.py --engine-arg threads=2        # the backend's own engine args
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pytest_mlperf.backends.base import GenerationConfig, Query, SystemSpec  # noqa: E402
from pytest_mlperf.core.cpu import usable_cores  # noqa: E402
from pytest_mlperf.core.vocabulary import Mode, Profile, Scenario  # noqa: E402
from pytest_mlperf.loadgen.runner import run_loadgen  # noqa: E402
from pytest_mlperf.loadgen.settings import SettingsPlan  # noqa: E402

NAMES = {"a": "direct_main", "b": "direct_thread", "c": "plugin"}


def emit(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


def outputs_sha(outputs: Sequence[Sequence[int]]) -> str:
    return hashlib.sha256(json.dumps([list(o) for o in outputs]).encode()).hexdigest()[:16]


# --- the three ways -----------------------------------------------------------------------------


def direct_generate(backend: Any, prompts: Sequence[Sequence[int]]) -> list[list[int]]:
    """``HFBackend._generate``'s batching and ``generate`` call, without loadgen, queue or
    streamer: outputs (up to and including EOS) in prompt order."""
    import torch

    from pytest_mlperf.backends.hf import until_eos

    model, pad, eos, gen = backend._model, backend._pad, backend._eos, backend.generation
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    outputs: list[list[int]] = [[] for _ in prompts]
    for b in range(0, len(order), backend._batch_size):
        idx = order[b : b + backend._batch_size]
        width = max(len(prompts[i]) for i in idx)
        ids = torch.full((len(idx), width), pad, dtype=torch.long)
        mask = torch.zeros((len(idx), width), dtype=torch.long)
        for row, i in enumerate(idx):
            ids[row, width - len(prompts[i]) :] = torch.tensor(list(prompts[i]), dtype=torch.long)
            mask[row, width - len(prompts[i]) :] = 1
        with torch.inference_mode():
            out = model.generate(
                input_ids=ids.to(backend._device), attention_mask=mask.to(backend._device),
                do_sample=False, max_new_tokens=gen.max_new_tokens,
                min_new_tokens=gen.min_new_tokens, eos_token_id=list(eos), pad_token_id=pad,
            )
        new = out[:, width:].tolist()
        for row, i in enumerate(idx):
            outputs[i] = until_eos(new[row], eos)
    return outputs


def configure(backend: Any) -> None:
    """Set the calling thread up as the backend sets up its worker (a no-op for a backend
    from before ``configure_thread`` existed)."""
    getattr(backend, "configure_thread", lambda: None)()


def run_direct(backend: Any, prompts: Sequence[Sequence[int]], warmup: int, *, on_thread: bool) -> dict[str, Any]:
    import torch

    box: dict[str, Any] = {}

    def run() -> None:
        configure(backend)
        if warmup:
            direct_generate(backend, prompts[:warmup])
        box["torch_threads"] = torch.get_num_threads()
        t0 = time.perf_counter()
        outputs = direct_generate(backend, prompts)
        seconds = time.perf_counter() - t0
        tokens = sum(map(len, outputs))
        box.update(out_tokens=tokens, seconds=round(seconds, 3), tok_per_s=round(tokens / seconds, 1),
                   outputs_sha=outputs_sha(outputs))

    if on_thread:
        thread = threading.Thread(target=run, name="bench-hf-direct")
        thread.start()
        thread.join()
    else:
        run()
    return box


class _Tap:
    """Wraps the run's responder: keeps every completion's tokens (by QSL index)."""

    def __init__(self, inner: Any, sink: dict[int, list[int]]) -> None:
        self._inner, self._sink = inner, sink

    def first_token(self, query: Query, token_id: int) -> None:
        self._inner.first_token(query, token_id)

    def complete(self, query: Query, tokens: Sequence[int]) -> None:
        self._sink[query.sample_index] = list(tokens)
        self._inner.complete(query, tokens)

    def fail(self, error: BaseException) -> None:
        self._inner.fail(error)


class _Waiter:
    """A responder for the warm-up: counts completions; records the worker's thread count."""

    def __init__(self, expected: int) -> None:
        self._left = expected
        self._lock = threading.Lock()
        self.done = threading.Event()
        self.error: BaseException | None = None

    def first_token(self, query: Query, token_id: int) -> None:
        pass

    def complete(self, query: Query, tokens: Sequence[int]) -> None:
        with self._lock:
            self._left -= 1
            if self._left == 0:
                self.done.set()

    def fail(self, error: BaseException) -> None:
        self.error = error
        self.done.set()


def warm_worker(backend: Any, prompts: Sequence[Sequence[int]]) -> int | None:
    """Generate ``prompts`` on the backend's worker thread; torch's thread count as that
    thread sees it inside ``generate``."""
    import torch

    seen: list[int] = []
    model = backend._model
    original = model.generate

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(torch.get_num_threads())
        return original(*args, **kwargs)

    waiter = _Waiter(len(prompts))
    model.generate = spy
    try:
        backend.issue([Query(i, i, p) for i, p in enumerate(prompts)], waiter)
        waiter.done.wait(300)
    finally:
        del model.generate
    if waiter.error is not None:
        raise waiter.error
    return seen[0] if seen else None


def run_plugin(backend: Any, prompts: Sequence[Sequence[int]], warmup: int, workdir: Path) -> dict[str, Any]:
    worker_threads = warm_worker(backend, prompts[: max(warmup, 1)])
    plan = SettingsPlan(benchmark="llama3.1-8b", scenario=Scenario.OFFLINE, profile=Profile.QUICK,
                        total_count=len(prompts), performance_count=len(prompts))
    outputs: dict[int, list[int]] = {}
    issue = backend.issue
    backend.issue = lambda queries, responder: issue(queries, _Tap(responder, outputs))
    try:
        result = run_loadgen(plan=plan, mode=Mode.PERFORMANCE, backend=backend, prompts=prompts,
                             outdir=Path(tempfile.mkdtemp(dir=workdir, prefix="offline_")) / "run")
    finally:
        del backend.issue
    lg_tps = result.figures.tokens_per_second or 0.0
    tokens = result.output_tokens
    seconds = tokens / lg_tps if lg_tps else float("nan")  # loadgen: first issue .. last completion
    in_order = [outputs.get(i, []) for i in range(len(prompts))]
    return {"out_tokens": tokens, "seconds": round(seconds, 3), "tok_per_s": round(lg_tps, 1),
            "torch_threads": worker_threads, "outputs_sha": outputs_sha(in_order),
            "validity": result.validity, "run_wall_s": round(result.wall_seconds, 3),
            "backend_error": result.backend_error}


def measure(key: str, backend: Any, prompts: Sequence[Sequence[int]], warmup: int, workdir: Path) -> dict[str, Any]:
    if key == "c":
        return run_plugin(backend, prompts, warmup, workdir)
    return run_direct(backend, prompts, warmup, on_thread=key == "b")


# --- main ---------------------------------------------------------------------------------------


def make_backend(args: argparse.Namespace) -> Any:
    from pytest_mlperf.backends.hf import HFBackend

    model_dir, _ = paths(args)
    backend = HFBackend(SystemSpec.local(model_dir, embedded=args.model is None), engine_args(args),
                        GenerationConfig())
    backend.start()
    return backend


def paths(args: argparse.Namespace) -> tuple[Path, Path]:
    if args.model is None or args.dataset is None:
        from pytest_mlperf import embedded

        return args.model or Path(embedded.MODEL_DIR), args.dataset or Path(embedded.DATASET_PATH)
    return args.model, args.dataset


def engine_args(args: argparse.Namespace) -> dict[str, Any]:
    from pytest_mlperf.options import parse_engine_args

    return parse_engine_args(args.engine_arg)


def load_prompts(args: argparse.Namespace) -> list[Sequence[int]]:
    from pytest_mlperf.data.dataset import load_dataset

    return load_dataset(paths(args)[1]).prompts()[: args.samples]


def child(args: argparse.Namespace) -> int:
    """One pass in this process: prints one JSON object (the parent adds the rest)."""
    prompts = load_prompts(args)
    backend = make_backend(args)
    try:
        print(json.dumps(measure(args.child, backend, prompts, args.warmup, Path(args.workdir))), flush=True)
    finally:
        backend.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=None, help="model folder (default: embedded)")
    parser.add_argument("--dataset", type=Path, default=None, help="cnn_eval.json-style file (default: embedded)")
    parser.add_argument("--samples", type=int, default=256, help="prompts per pass")
    parser.add_argument("--rounds", type=int, default=3, help="alternating a/b/c passes")
    parser.add_argument("--engine-arg", action="append", default=[], metavar="KEY=JSON",
                        help="HFBackend engine argument (batch_size, threads, device, dtype)")
    parser.add_argument("--only", default="abc", help="which of a, b, c to run, in this order (default abc)")
    parser.add_argument("--warmup", type=int, default=8, help="prompts generated before each pass, on its thread")
    parser.add_argument("--busy", type=int, default=0, help="busy-looping neighbour processes during the passes")
    parser.add_argument("--in-process", action="store_true", help="every pass in this process, one backend")
    parser.add_argument("--child", choices=tuple(NAMES), help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args)

    from importlib.metadata import version

    import pytest_mlperf.backends.hf as hf

    prompts = load_prompts(args)
    workdir = Path(tempfile.mkdtemp(prefix="bench_hf_"))
    emit(what="versions", python=platform.python_version(), machine=platform.machine(), cpus=usable_cores(),
         transformers=version("transformers"), torch=version("torch"), loadgen=version("mlcommons-loadgen"),
         hf_backend=hf.__file__, omp_num_threads=os.environ.get("OMP_NUM_THREADS"),
         load_avg=[round(x, 2) for x in os.getloadavg()])
    emit(what="setup", prompts=len(prompts), rounds=args.rounds, only=args.only, warmup=args.warmup,
         busy=args.busy, in_process=args.in_process, engine_args=engine_args(args),
         backend_threads=hf.generation_threads(engine_args(args).get("threads"), "cpu")
         if hasattr(hf, "generation_threads") else "torch default (before the fix)")

    backend = make_backend(args) if args.in_process else None
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
    totals = {NAMES[k]: [0, 0.0] for k in args.only}
    try:
        for i in range(args.rounds):
            for key in args.only:
                if backend is not None:
                    fields = measure(key, backend, prompts, args.warmup, workdir)
                else:
                    fields = _in_child(key, argv if argv is not None else sys.argv[1:], workdir)
                emit(what=NAMES[key], round=i, prompts=len(prompts), **fields)
                totals[NAMES[key]][0] += fields["out_tokens"]
                totals[NAMES[key]][1] += fields["seconds"]
    finally:
        for proc in busy:
            proc.kill()
            proc.wait()
        if backend is not None:
            backend.close()
    rates = {name: t[0] / t[1] for name, t in totals.items() if t[1]}
    summary: dict[str, Any] = {f"{name}_tok_per_s": round(r, 1) for name, r in rates.items()}
    base = rates.get("direct_main")
    for name in ("direct_thread", "plugin"):
        if base and name in rates:
            summary[f"{name}_over_direct_main"] = round(rates[name] / base, 4)
    emit(what="summary", rounds=args.rounds, prompts=len(prompts), busy=args.busy,
         engine_args=engine_args(args), in_process=args.in_process, **summary)
    return 0


def _in_child(key: str, argv: Sequence[str], workdir: Path) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), *argv, "--child", key, "--workdir", str(workdir)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode or not lines:
        raise RuntimeError(f"pass {key} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1])




if __name__ == "__main__":
    raise SystemExit(main())
