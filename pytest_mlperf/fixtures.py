"""Fixtures a benchmark uses; override any of them in a conftest.py.

Session scope: the options, the model (a :class:`~pytest_mlperf.SystemSpec`), engine
arguments, tokenizer, data set, QSL, generation parameters and the engine pool. Function scope:
this test's spec, scenario, mode, loadgen settings, SUT, runner, baseline and the result. Nothing
here starts an engine or runs loadgen at setup: the plugin runs the benchmark in the test's call
phase (:mod:`pytest_mlperf.run.benchmark`). Registered as a plugin by ``pytest_configure``; heavy
modules load inside the fixtures.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_mlperf.backends.base import TOKENIZER_FILES, Backend, GenerationConfig, SystemSpec
from pytest_mlperf.core import stash
from pytest_mlperf.core.vocabulary import Mode, Scenario
from pytest_mlperf.options import MlperfOptions
from pytest_mlperf.run.benchmark import BenchmarkResult, new_run_dir
from pytest_mlperf.spec import BenchmarkSpec

if TYPE_CHECKING:
    from pytest_mlperf.accuracy.baselines import BaselineChoice
    from pytest_mlperf.data.dataset import QSL, Dataset
    from pytest_mlperf.loadgen.runner import RunResult
    from pytest_mlperf.loadgen.settings import SettingsPlan
    from pytest_mlperf.run.engines import EnginePool


@pytest.fixture(scope="session")
def mlperf_options(pytestconfig: pytest.Config) -> MlperfOptions:
    return pytestconfig.stash[stash.OPTIONS]


@pytest.fixture(scope="session")
def mlperf_model(mlperf_options: MlperfOptions) -> SystemSpec:
    """What is benchmarked: ``--mlperf-model``'s folder, else the embedded tiny Llama. With
    ``--mlperf-endpoint``: the model served there under ``--mlperf-served-model``, its tokenizer
    from ``--mlperf-model``'s folder, else the embedded model's (the served model is then taken
    to be the embedded one, as its baseline is). An override may return
    ``SystemSpec.served(name, [url, ...], tokenizer=...)``."""
    if mlperf_options.endpoints:
        import dataclasses

        from pytest_mlperf import embedded

        folder = mlperf_options.model or embedded.MODEL_DIR
        served = SystemSpec.served(mlperf_options.served_model or "", mlperf_options.endpoints,
                                   tokenizer=folder)
        return dataclasses.replace(served, embedded=embedded.is_embedded_model(folder))
    if mlperf_options.model is not None:
        from pytest_mlperf import embedded

        return SystemSpec.local(mlperf_options.model,
                                embedded=embedded.is_embedded_model(mlperf_options.model))
    from pytest_mlperf import embedded

    return SystemSpec.local(embedded.MODEL_DIR, embedded=True)


@pytest.fixture(scope="session")
def mlperf_engine_args(mlperf_options: MlperfOptions) -> Mapping[str, Any]:
    """``--mlperf-engine-arg`` values; they win over the marker's ``engine_args``."""
    return dict(mlperf_options.engine_args)


@pytest.fixture(scope="session")
def mlperf_tokenizer(mlperf_model: SystemSpec) -> Any:
    """The Hugging Face tokenizer of the model (decodes outputs for scoring)."""
    source = mlperf_model.tokenizer_source
    if source is None and mlperf_model.kind == "served":
        pytest.fail(
            f"no tokenizer for the served model '{mlperf_model.model}': give "
            "SystemSpec.served(..., tokenizer=<folder or hub name>)", pytrace=False,
        )
    if source is None:
        pytest.fail(
            f"the model folder {mlperf_model.model} (--mlperf-model) holds no tokenizer "
            f"({', '.join(TOKENIZER_FILES)}), which decoding outputs for ROUGE needs: copy the "
            "model's tokenizer files into it, or run --mlperf-mode=performance (token ids in and "
            "out need none)", pytrace=False,
        )
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(source)


@pytest.fixture(scope="session")
def mlperf_dataset(mlperf_options: MlperfOptions) -> Dataset:
    """The data set (default: the embedded sample set), cut to ``--mlperf-total-samples``."""
    from pytest_mlperf.data.dataset import DatasetError, load_dataset

    if mlperf_options.dataset is not None:
        path = mlperf_options.dataset
    else:
        from pytest_mlperf import embedded

        path = embedded.DATASET_PATH
    try:
        return load_dataset(path, limit=mlperf_options.total_samples)
    except DatasetError as exc:
        pytest.fail(f"--mlperf-dataset: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def mlperf_qsl(request: pytest.FixtureRequest, mlperf_dataset: Dataset, mlperf_options: MlperfOptions) -> QSL:
    """Prompt token ids by index (``tok_input``, else the tokenizer's encoding) and loadgen's
    total and performance counts."""
    from pytest_mlperf.data.dataset import build_qsl

    encode = None
    if any(r.tok_input is None for r in mlperf_dataset.records):
        encode = request.getfixturevalue("mlperf_tokenizer").encode
    return build_qsl(mlperf_dataset, performance_samples=mlperf_options.performance_samples, encode=encode)


@pytest.fixture(scope="session")
def mlperf_generation() -> GenerationConfig:
    """The reference SUT's generation parameters (greedy, 128 new tokens)."""
    return GenerationConfig()


@pytest.fixture(scope="session")
def mlperf_engines(pytestconfig: pytest.Config, mlperf_generation: GenerationConfig) -> Iterator[EnginePool]:
    from pytest_mlperf.run.engines import EnginePool

    pool = EnginePool(pytestconfig, mlperf_generation)
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
    from pytest_mlperf.loadgen.settings import SettingsPlan

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
    mlperf_model: SystemSpec,
    mlperf_engine_args: Mapping[str, Any],
    mlperf_engines: EnginePool,
) -> Backend:
    """The session's backend for this test's system and engine arguments (made, not started:
    the run starts it). The marker's engine arguments are the benchmark's defaults; the
    command line wins."""
    tokenizer = request.getfixturevalue("mlperf_tokenizer") if mlperf_model.tokenizer_source else None
    return mlperf_engines.get(
        name=mlperf_options.backend, scenario=mlperf_scenario, system=mlperf_model,
        engine_args={**mlperf_spec.engine_args, **mlperf_engine_args}, tokenizer=tokenizer,
    )


def _safe(nodeid: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid).strip("_")[:180]


@pytest.fixture
def mlperf_runner(
    request: pytest.FixtureRequest, mlperf_settings: SettingsPlan, mlperf_sut: Backend, mlperf_qsl: QSL,
    mlperf_options: MlperfOptions,
) -> Callable[..., RunResult]:
    """Runs loadgen once in the given mode into a new folder
    ``<output>/<test id>/run_<n>/<label or mode>/`` (never overwritten); ``overrides`` are
    TestSettings over every other source (a peak search's rate, TEST06's audit settings)."""
    base: Path = mlperf_options.output / _safe(request.node.nodeid)

    def run(mode: Mode, overrides: Mapping[str, Any] | None = None, label: str | None = None) -> RunResult:
        import dataclasses

        from pytest_mlperf.live.progress import track_run
        from pytest_mlperf.loadgen.runner import run_loadgen

        plan = mlperf_settings
        if overrides:
            plan = dataclasses.replace(plan, cli_overrides={**plan.cli_overrides, **overrides})
        outdir = new_run_dir(base) / (label or mode.value)
        tracker = track_run(request, plan, mode, outdir)  # status file, live progress, details
        result = run_loadgen(
            plan=plan, mode=mode, backend=mlperf_sut, prompts=mlperf_qsl.prompts,
            outdir=outdir, timeout_s=mlperf_options.run_timeout,
            on_progress=tracker.update, progress_interval_s=tracker.interval_s,
        )
        tracker.run_done()
        return result

    return run


@pytest.fixture
def mlperf_baseline(
    mlperf_spec: BenchmarkSpec, mlperf_model: SystemSpec, mlperf_dataset: Dataset, mlperf_qsl: QSL
) -> BaselineChoice:
    """What accuracy is judged against: the marker's baseline, else what the data set is (the
    embedded model's per-sample scores on the embedded set, else the MLCommons targets),
    exact for the samples used."""
    from pytest_mlperf.accuracy.baselines import BaselineError, choose_baseline

    try:
        return choose_baseline(
            benchmark=mlperf_spec.benchmark, declared=mlperf_spec.baseline,
            ratio=mlperf_spec.rouge_ratio, dataset_sha256=mlperf_dataset.sha256,
            model_is_embedded=mlperf_model.embedded,
            sample_indices=range(mlperf_qsl.total_count), dataset_total=mlperf_dataset.total_records,
        )
    except BaselineError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def mlperf_result(request: pytest.FixtureRequest, mlperf_spec: BenchmarkSpec, mlperf_scenario: Scenario,
                  mlperf_mode: Mode) -> BenchmarkResult:
    """This test's benchmark, run by the plugin at the start of the call phase; the test body
    sees the finished result, and the plugin fails the test when its verdict fails."""
    result = BenchmarkResult(request, scenario=mlperf_scenario, mode=mlperf_mode)
    request.node.stash[stash.RESULT] = result
    return result
