"""Fixtures a benchmark uses; each can be overridden in a conftest.py.

Session scope: the options, model, tokenizer, data set, QSL and the engine pool (one engine per
backend/model/engine-args, closed at session end). Function scope: this test's spec, loadgen
settings, SUT, run folder, runner, baseline and the judged result.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pytest_mlperf import stash
from pytest_mlperf.backends.base import Backend, GenerationConfig, ModelSource
from pytest_mlperf.dataset import Dataset, load_dataset
from pytest_mlperf.loadgen.runner import RunResult, run_loadgen
from pytest_mlperf.loadgen.settings import Mode, Scenario, SettingsPlan
from pytest_mlperf.options import MlperfOptions
from pytest_mlperf.spec import BenchmarkSpec
from pytest_mlperf.verdict import Verdict, judge_accuracy, judge_performance


@dataclass(frozen=True)
class QSL:
    """The query sample library: prompt token ids by index, and loadgen's two counts."""

    prompts: Sequence[Sequence[int]]
    total_count: int
    performance_count: int


@pytest.fixture(scope="session")
def mlperf_options(pytestconfig: pytest.Config) -> MlperfOptions:
    return pytestconfig.stash[stash.OPTIONS]


@pytest.fixture(scope="session")
def mlperf_model(mlperf_options: MlperfOptions) -> ModelSource:
    """The model folder (default: the embedded tiny Llama) and the CLI's engine arguments."""
    if mlperf_options.model is not None:
        return ModelSource(path=mlperf_options.model, embedded=False, engine_args=mlperf_options.engine_args)
    from pytest_mlperf import embedded

    return ModelSource(path=embedded.MODEL_DIR, embedded=True, engine_args=mlperf_options.engine_args)


@pytest.fixture(scope="session")
def mlperf_tokenizer(mlperf_model: ModelSource) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(mlperf_model.path)


@pytest.fixture(scope="session")
def mlperf_dataset(mlperf_options: MlperfOptions) -> Dataset:
    """The data set (default: the embedded sample set), cut to ``--mlperf-total-samples``."""
    if mlperf_options.dataset is not None:
        path = mlperf_options.dataset
    else:
        from pytest_mlperf import embedded

        path = embedded.DATASET_PATH
    return load_dataset(path, limit=mlperf_options.total_samples)


@pytest.fixture(scope="session")
def mlperf_qsl(request: pytest.FixtureRequest, mlperf_dataset: Dataset, mlperf_options: MlperfOptions) -> QSL:
    encode = None
    if any(r.tok_input is None for r in mlperf_dataset.records):
        tokenizer = request.getfixturevalue("mlperf_tokenizer")
        encode = tokenizer.encode
    prompts = mlperf_dataset.prompts(encode)
    total = len(prompts)
    performance = min(total, mlperf_options.performance_samples or total)
    return QSL(prompts=prompts, total_count=total, performance_count=performance)


class EnginePool:
    """One started backend per (class, model, engine args); all closed at session end."""

    def __init__(self, generation: GenerationConfig) -> None:
        self._generation = generation
        self._backends: dict[tuple[Any, ...], Backend] = {}

    def get(self, cls: type[Backend], model: ModelSource) -> Backend:
        key = (cls, str(model.path), tuple(sorted((k, repr(v)) for k, v in model.engine_args.items())))
        backend = self._backends.get(key)
        if backend is None:
            backend = cls(model, self._generation)
            backend.start()
            self._backends[key] = backend
        return backend

    def close(self) -> None:
        errors = []
        for backend in self._backends.values():
            try:
                backend.close()
            except Exception as exc:  # noqa: BLE001 - close every engine even if one fails
                errors.append(f"{backend.name}: {exc}")
        self._backends.clear()
        if errors:
            raise RuntimeError("closing engines failed: " + "; ".join(errors))


@pytest.fixture(scope="session")
def mlperf_generation() -> GenerationConfig:
    """The reference SUT's generation parameters (greedy, 128 new tokens)."""
    return GenerationConfig()


@pytest.fixture(scope="session")
def mlperf_engines(mlperf_generation: GenerationConfig) -> Iterator[EnginePool]:
    pool = EnginePool(mlperf_generation)
    yield pool
    pool.close()


@pytest.fixture
def mlperf_spec(request: pytest.FixtureRequest) -> BenchmarkSpec:
    spec = request.node.stash.get(stash.SPEC, None)
    if spec is None:
        raise pytest.UsageError(f"{request.node.nodeid}: mlperf fixtures need an @pytest.mark.mlperf(...) marker")
    return spec


@pytest.fixture
def mlperf_scenario(request: pytest.FixtureRequest) -> Scenario:
    """Parametrized by the plugin from ``--mlperf-scenario``."""
    return getattr(request, "param", Scenario.OFFLINE)


@pytest.fixture
def mlperf_mode(request: pytest.FixtureRequest) -> Mode:
    """Parametrized by the plugin from ``--mlperf-mode``."""
    return getattr(request, "param", Mode.PERFORMANCE)


@pytest.fixture
def mlperf_settings(
    mlperf_spec: BenchmarkSpec, mlperf_scenario: Scenario, mlperf_options: MlperfOptions, mlperf_qsl: QSL
) -> SettingsPlan:
    """Loadgen settings: mlperf.conf < run profile < user.conf < marker < command line."""
    return SettingsPlan(
        benchmark=mlperf_spec.benchmark,
        scenario=mlperf_scenario,
        profile=mlperf_options.profile,
        total_count=mlperf_qsl.total_count,
        performance_count=mlperf_qsl.performance_count,
        user_conf=mlperf_options.user_conf,
        marker_overrides=mlperf_spec.settings,
        cli_overrides=mlperf_options.settings,
    )


@pytest.fixture
def mlperf_sut(
    request: pytest.FixtureRequest,
    mlperf_options: MlperfOptions,
    mlperf_spec: BenchmarkSpec,
    mlperf_scenario: Scenario,
    mlperf_model: ModelSource,
    mlperf_engines: EnginePool,
) -> Backend:
    """The started backend for this test's scenario, shared by every test that can share it."""
    cls = request.config.hook.pytest_mlperf_backend_class(name=mlperf_options.backend, scenario=mlperf_scenario)
    if mlperf_scenario.streaming and not cls.streaming:
        pytest.fail(
            f"backend '{mlperf_options.backend}' ({cls.__name__}) cannot report first tokens, "
            f"which {mlperf_scenario.value} needs", pytrace=False,
        )
    # Marker engine arguments are the benchmark's defaults; the command line wins.
    engine_args: Mapping[str, Any] = {**mlperf_spec.engine_args, **mlperf_model.engine_args}
    model = ModelSource(path=mlperf_model.path, embedded=mlperf_model.embedded, engine_args=engine_args)
    return mlperf_engines.get(cls, model)


def _safe(nodeid: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid).strip("_")[:180]


@pytest.fixture
def mlperf_run_dir(request: pytest.FixtureRequest, mlperf_options: MlperfOptions) -> Path:
    """``<output>/<test>/run_<n>``: a new folder for every run, never reused."""
    base = mlperf_options.output / _safe(request.node.nodeid)
    base.mkdir(parents=True, exist_ok=True)
    n = 1
    while True:
        candidate = base / f"run_{n}"
        try:
            candidate.mkdir()  # atomic: two xdist workers can never get the same folder
            return candidate
        except FileExistsError:
            n += 1


@pytest.fixture
def mlperf_runner(
    mlperf_settings: SettingsPlan, mlperf_sut: Backend, mlperf_qsl: QSL, mlperf_run_dir: Path,
    mlperf_options: MlperfOptions,
) -> Callable[[Mode], RunResult]:
    """Runs loadgen once in the given mode into this test's run folder."""

    def run(mode: Mode) -> RunResult:
        return run_loadgen(
            plan=mlperf_settings, mode=mode, backend=mlperf_sut,
            prompts=mlperf_qsl.prompts, outdir=mlperf_run_dir / mode.value,
            timeout_s=mlperf_options.run_timeout,
        )

    return run


@pytest.fixture
def mlperf_baseline(
    mlperf_spec: BenchmarkSpec, mlperf_model: ModelSource, mlperf_options: MlperfOptions, mlperf_qsl: QSL
) -> Any:
    """The accuracy baseline: the marker's, else the embedded model's own scores on the
    embedded set, else the official MLCommons targets for the benchmark. A generated-length
    target is a total over the full set: it is scaled when fewer samples are scored."""
    from pytest_mlperf.accuracy import TARGETS, Baseline

    declared = mlperf_spec.baseline
    full_count = None
    if isinstance(declared, Mapping):
        baseline = Baseline(name=f"{mlperf_spec.benchmark} (declared)", **_baseline_fields(declared), ratio=mlperf_spec.rouge_ratio)
        full_count = declared.get("gen_num")
    elif isinstance(declared, str):
        if declared not in TARGETS:
            pytest.fail(f"mlperf marker baseline={declared!r} is not one of {sorted(TARGETS)}", pytrace=False)
        baseline = TARGETS[declared]
    elif mlperf_model.embedded and mlperf_options.dataset is None:
        from pytest_mlperf import embedded

        measured = embedded.baseline()
        baseline = Baseline(name="embedded model on the embedded set", **_baseline_fields(measured), ratio=mlperf_spec.rouge_ratio)
        full_count = measured.get("gen_num")
    elif mlperf_spec.benchmark in TARGETS:
        baseline = TARGETS[mlperf_spec.benchmark]
    else:
        pytest.fail(
            f"no accuracy baseline for '{mlperf_spec.benchmark}': declare baseline={{...}} in its mlperf marker",
            pytrace=False,
        )
    if baseline.gen_len and full_count is None:
        from pytest_mlperf.loadgen.settings import conf_model, conf_values

        model_key = conf_model(mlperf_spec.benchmark, Scenario.OFFLINE)
        full_count = conf_values(model_key, "Offline", {}, None).get("performance_sample_count_override")
    if baseline.gen_len and full_count and full_count != mlperf_qsl.total_count:
        baseline = dataclasses.replace(
            baseline,
            gen_len=round(baseline.gen_len * mlperf_qsl.total_count / full_count),
            name=f"{baseline.name}, gen_len scaled to {mlperf_qsl.total_count} of {full_count} samples",
        )
    return baseline


def _baseline_fields(values: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("rouge1", "rouge2", "rougeL", "rougeLsum", "gen_len", "tokens_per_sample")
    return {k: values.get(k) for k in keys}


@dataclass(frozen=True)
class BenchmarkResult:
    """One benchmark test's run, scores and verdict, and the JSON-able record of it."""

    run: RunResult
    verdict: Verdict
    record: dict[str, Any]


@pytest.fixture
def mlperf_result(
    request: pytest.FixtureRequest,
    mlperf_spec: BenchmarkSpec,
    mlperf_mode: Mode,
    mlperf_options: MlperfOptions,
    mlperf_model: ModelSource,
    mlperf_dataset: Dataset,
    mlperf_runner: Callable[[Mode], RunResult],
    mlperf_sut: Backend,
) -> BenchmarkResult:
    """Runs this test's benchmark and judges it. The plugin fails the test when the verdict
    fails (after the test body, which may check more)."""
    run = mlperf_runner(mlperf_mode)
    record: dict[str, Any] = {
        "benchmark": mlperf_spec.benchmark,
        "scenario": run.scenario.value,
        "mode": mlperf_mode.value,
        "profile": mlperf_options.profile.value,
        "backend": mlperf_sut.name,
        "model": "embedded" if mlperf_model.embedded else str(mlperf_model.path),
        "dataset": str(mlperf_dataset.path),
        "samples": len(mlperf_dataset),
        "run": run.as_dict(),
    }
    if mlperf_mode is Mode.ACCURACY:
        baseline = request.getfixturevalue("mlperf_baseline")
        scores = None
        if run.accuracy_log.is_file() and not run.backend_error:
            from pytest_mlperf.accuracy import score_log

            tokenizer = request.getfixturevalue("mlperf_tokenizer")
            scores = score_log(run.accuracy_log, mlperf_dataset.references, tokenizer)
            record["accuracy"] = scores.as_dict()
        record["baseline"] = {"name": baseline.name, "ratio": baseline.ratio,
                              **{k: getattr(baseline, k) for k in ("rouge1", "rouge2", "rougeL", "rougeLsum", "gen_len")}}
        verdict = judge_accuracy(run, scores, baseline, baseline.ratio)
    else:
        verdict = judge_performance(run, mlperf_spec)
    record["verdict"] = verdict.as_dict()
    result = BenchmarkResult(run=run, verdict=verdict, record=record)
    request.node.stash[stash.RESULT] = result
    request.config.hook.pytest_mlperf_result(item=request.node, result=record)
    return result
