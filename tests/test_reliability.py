"""Issue 12's classes of failure, one table-driven test (or a few) per class, each row an input a
new user could give. Real loadgen; test-double engines (tests/fake_world.py) except where the
class is about a real engine (weights). Faults of running engines: tests/test_faults*.py;
Ctrl-C: tests/test_interrupt.py; what is promised: docs/reliability.md."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from pytest_mlperf import embedded
from pytest_mlperf.core.vocabulary import Mode, Profile, Scenario
from pytest_mlperf.loadgen.settings import (
    SettingsError,
    SettingsPlan,
    check_overrides,
    setting_fields,
)
from tests.fake_world import setup

USAGE = pytest.ExitCode.USAGE_ERROR


def _run(pytester: pytest.Pytester, *flags: str, **setup_kwargs: Any) -> pytest.RunResult:
    args = setup(pytester, **setup_kwargs)
    return pytester.runpytest("--mlperf-backend=copy", *flags, *args)


def _text(result: pytest.RunResult) -> str:
    return "\n".join(result.outlines + result.errlines)


# --- 1. configuration silently ignored -----------------------------------------------------------

USER_CONF = [
    # (user.conf text, what the error says)
    ("*.Server.min_durtion = 5000\n",
     "user.conf:1: 'min_durtion' is not a key loadgen reads from a user.conf; did you mean min_duration"),
    ("llama3.1-8b.Offline.target_qps = 5\n",
     "user.conf:1: model 'llama3.1-8b' is not a model of loadgen's mlperf.conf, so loadgen never "
     "applies this line; loadgen spells it 'llama3_1-8b'"),
    ("llama-3.1-8b.*.min_query_count = 5\n", "model 'llama-3.1-8b' is not a model*did you mean llama3_1-8b"),
    ("*.Interactive.target_qps = 5\n",
     "scenario 'Interactive' is not one of loadgen's*write e.g. llama3_1-8b-interactive.Server.target_qps"),
    ("*.server.target_qps = 5\n", "scenario 'server' is not one of loadgen's*did you mean Server"),
    ("*.Offline.target_latency = 5\n",
     "loadgen reads 'target_latency' only for SingleStream, MultiStream, Server, never for Offline"),
    ("*.Offline.coalesce_queries = 1\n", "loadgen reads 'coalesce_queries' only for Server, never for Offline"),
    ("*.*.schedule_rng_seed = 5\n", "loadgen takes 'schedule_rng_seed' from its built-in mlperf.conf only"),
    ("*.*.mode = 2\n", "user.conf:1: the test mode is the plugin's to set (--mlperf-mode*"),
    ("*.Server.target_qps=5\n", "user.conf:1: '*.Server.target_qps=5' is not 'model.scenario.key = value'"),
    ("*.Server.target_qps = fast\n", "user.conf:1: value 'fast' is not a number"),
    ("target_qps = 5\n", "'target_qps' is not model.scenario.key"),
    ("# fine\n*.Server.target_qps = 5 # five\n*.Server.min_query_count 5\n",
     "user.conf:3: '*.Server.min_query_count 5' is not 'model.scenario.key = value'"),
]


@pytest.mark.parametrize(("text", "message"), USER_CONF)
def test_user_conf_lines_loadgen_would_skip_are_refused_by_line(
        pytester: pytest.Pytester, text: str, message: str) -> None:
    conf = pytester.path / "user.conf"
    conf.write_text(text)
    result = _run(pytester, f"--mlperf-user-conf={conf}")
    assert result.ret == USAGE
    assert not (pytester.path / "results").exists()
    result.stderr.fnmatch_lines([f"*--mlperf-user-conf (ini mlperf_user_conf): *{message}*"])


def test_user_conf_that_is_a_folder_is_refused(pytester: pytest.Pytester) -> None:
    (pytester.path / "conf").mkdir()
    result = _run(pytester, f"--mlperf-user-conf={pytester.path / 'conf'}")
    assert result.ret == USAGE
    result.stderr.fnmatch_lines(["*conf is a folder, not a user.conf file (loadgen would read nothing*"])


MARKERS = [
    # (marker arguments, scenarios, what the collection error says)
    ("benchmark='llama3-8b'", "Offline", "benchmark='llama3-8b' is not a model of loadgen's mlperf.conf*did you mean llama3.1-8b"),
    ("benchmark='llama3_1_8b'", "Offline", "benchmark='llama3_1_8b' is not a model*"),
    ("benchmark='llama3.1-8b-edge', scenarios=['Interactive']", "Interactive",
     "benchmark='llama3.1-8b-edge' is not a model*(for Interactive: 'llama3_1-8b-edge-interactive')"),
    ("benchmark='llama3.1-8b', scenarios=['Offline'], settings={'server_target_qps': 4}", "Offline",
     "settings: server_target_qps (read by Server, Interactive only): it would change nothing, since none of the scenarios here (Offline) reads it"),
    ("benchmark='llama3.1-8b', scenarios=['Server'], settings={'multi_stream_samples_per_query': 4}", "Server",
     "settings: multi_stream_samples_per_query (read by MultiStream only, which the plugin does not run)*"),
]


@pytest.mark.parametrize(("marker", "scenario", "message"), MARKERS)
def test_marker_values_loadgen_would_ignore_stop_collection(
        pytester: pytest.Pytester, marker: str, scenario: str, message: str) -> None:
    args = setup(pytester)
    pytester.makepyfile(test_bench=f"import pytest\n@pytest.mark.mlperf({marker})\n"
                        "def test_x(mlperf_result): pass\n")
    result = pytester.runpytest("--mlperf-backend=copy", f"--mlperf-scenario={scenario}", *args)
    assert result.ret in (pytest.ExitCode.INTERRUPTED, USAGE)  # a collection error
    assert not (pytester.path / "results").exists()
    result.stdout.fnmatch_lines([f"*test_x: mlperf marker {message}*"])


@pytest.mark.parametrize(("flags", "message"), [
    (("--mlperf-setting=server_target_qps=4",),
     "*--mlperf-setting (ini mlperf_setting): server_target_qps (read by Server, Interactive only): it would change nothing*(Offline)*"),
    (("--mlperf-scenario=Server", "--mlperf-setting=offline_expected_qps=4"),
     "*offline_expected_qps (read by Offline only)*"),
    (("--mlperf-scenario=Offline", "--mlperf-setting=single_stream_expected_latency_ns=4000000"),
     "*single_stream_expected_latency_ns (read by SingleStream only)*"),
])
def test_command_line_settings_no_scenario_reads_are_refused(
        pytester: pytest.Pytester, flags: tuple[str, ...], message: str) -> None:
    result = _run(pytester, *flags)
    assert result.ret == USAGE
    result.stderr.fnmatch_lines([message])


def test_which_settings_took_effect_is_checked_against_the_detail_log(pytester: pytest.Pytester) -> None:
    """user.conf and --mlperf-setting both set min_query_count: the run passes, and says that
    the user.conf value was overridden, by name."""
    conf = pytester.path / "user.conf"
    conf.write_text("llama3_1-8b.Offline.min_query_count = 7\nllama3_1-8b.Server.target_qps = 50\n")
    result = _run(pytester, f"--mlperf-user-conf={conf}", "--mlperf-setting=min_query_count=12",
                  "--mlperf-mode=performance", "-W", "always")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"*MlperfSettingWarning: {conf}: min_query_count = 7 is overridden by "
                                 "--mlperf-setting (min_query_count = 12)*"])


@pytest.mark.parametrize(("log", "problem"), [
    ({"requested_server_target_qps": 4.0}, None),
    ({"requested_server_target_qps": 1.0},
     "server_target_qps = 4.0 (--mlperf-setting) did not take effect: loadgen ran with 1.0"),
    ({"requested_min_duration_ms": 1000, "requested_server_target_qps": 4.0},
     "min_duration_ms = 500 (the mlperf marker) did not take effect: loadgen ran with 1000"),
    ({"requested_server_ttft_latency": 2000000000, "requested_server_target_qps": 4.0},
     "ttft_latency = 1000000000 (the mlperf marker) did not take effect: loadgen ran with 2000000000"),
    ({}, None),  # a setting the log does not show for this scenario is not checked
])
def test_a_setting_loadgen_ran_with_another_value_is_a_failure(log: dict, problem: str | None) -> None:
    from pytest_mlperf.loadgen.logs import DetailLog
    from pytest_mlperf.loadgen.runner import settings_applied

    plan = SettingsPlan("llama3.1-8b", Scenario.SERVER, Profile.QUICK, 8, 8,
                        marker_overrides={"min_duration_ms": 500, "ttft_latency": 1_000_000_000},
                        cli_overrides={"server_target_qps": 4.0})
    values = {"requested_min_duration_ms": 500, "requested_server_ttft_latency": 1_000_000_000, **log}
    problems, _ = settings_applied(plan, DetailLog(Path("detail"), values))
    assert list(problems) == ([problem] if problem else [])


# --- 2. values loadgen cannot survive ------------------------------------------------------------

VALUES = [
    ({"server_target_qps": 0}, "server_target_qps = 0 must be > 0*0 schedules queries without end"),
    ({"server_target_qps": -2.5}, "server_target_qps = -2.5 must be > 0"),
    ({"server_target_qps": float("nan")}, "server_target_qps = nan must be a finite number"),
    ({"offline_expected_qps": float("inf")}, "offline_expected_qps = inf must be a finite number"),
    ({"server_target_qps": 5e7}, "server_target_qps = 50000000.0 must be > 0 and <= 1e+06"),
    ({"offline_expected_qps": 0}, "offline_expected_qps = 0 must be > 0"),
    ({"min_duration_ms": 6_000_000_000}, "min_duration_ms = 6000000000 must be >= 0 and <= 8.64e+07"),
    ({"min_query_count": 10**9}, "min_query_count = 1000000000 must be >= 0 and <= 1e+07*in memory"),
    ({"max_query_count": 10**12}, "max_query_count = 1000000000000 must be"),
    ({"server_num_issue_query_threads": 2}, "server_num_issue_query_threads = 2 must be >= 0 and <= 0*registers no issue threads"),
    ({"accuracy_log_probability": 1.5}, "accuracy_log_probability = 1.5 must be >= 0 and <= 1"),
    ({"ttft_latency": 0}, "ttft_latency = 0 must be > 0"),
    ({"tpot_latency": -1}, "tpot_latency = -1 must not be negative"),
    ({"server_target_latency_percentile": 1.0}, "server_target_latency_percentile = 1.0 must be > 0 and < 1"),
    ({"single_stream_target_latency_percentile": 0}, "single_stream_target_latency_percentile = 0 must be > 0"),
    ({"single_stream_expected_latency_ns": 0}, "single_stream_expected_latency_ns = 0 must be > 0"),
    ({"multi_stream_samples_per_query": 0}, "multi_stream_samples_per_query = 0 must be >= 1"),
    ({"qsl_rng_seed": 2**64}, "qsl_rng_seed = 18446744073709551616 must be >= 0 and <= 1.84467e+19"),
    ({"server_find_peak_qps_decimals_of_precision": 99}, "server_find_peak_qps_decimals_of_precision = 99 must be >= 0 and <= 10"),
]


@pytest.mark.parametrize(("values", "message"), VALUES)
def test_each_value_is_range_checked_before_loadgen_sees_it(values: dict, message: str) -> None:
    import fnmatch

    with pytest.raises(SettingsError) as err:
        check_overrides(values, "--mlperf-setting")
    assert fnmatch.fnmatch(str(err.value), f"--mlperf-setting: {message}*"), str(err.value)


def test_every_loadgen_field_has_a_range() -> None:
    from pytest_mlperf.loadgen.ranges import RANGES

    assert set(setting_fields()) == set(RANGES)


RUNS = [
    # (scenario, settings of a whole run, what is wrong with them together)
    (Scenario.SERVER, {"server_target_qps": 100000, "min_duration_ms": 600000},
     "server_target_qps = 100000 (--mlperf-setting), min_duration_ms = 600000 (--mlperf-setting): "
     "the schedule would hold 60,000,000 queries"),
    (Scenario.SERVER, {"server_target_qps": 0.000001},
     "min_query_count = 838 (mlperf.conf/run profile), server_target_qps = 1e-06 (--mlperf-setting): the schedule would last"),
    (Scenario.OFFLINE, {"max_duration_ms": 1000, "min_duration_ms": 5000},
     "max_duration_ms = 1000 (--mlperf-setting), min_duration_ms = 5000 (--mlperf-setting): loadgen stops at the maximum"),
    (Scenario.OFFLINE, {"max_query_count": 3}, "max_query_count = 3 (--mlperf-setting), min_query_count = 8"),
    (Scenario.OFFLINE, {"offline_expected_qps": 100000, "min_duration_ms": 3600000},
     "the query would hold 360,000,000 samples"),
    (Scenario.SINGLE_STREAM, {"single_stream_expected_latency_ns": 1, "min_duration_ms": 60000},
     "loadgen would lay out 60,000,000,000 queries"),
    (Scenario.OFFLINE, {"performance_sample_count_override": 100},
     "performance_sample_count_override = 100 (--mlperf-setting) is more than the 8 performance samples"),
    (Scenario.OFFLINE, {"accuracy_sample_count_override": 50},
     "accuracy_sample_count_override = 50 (--mlperf-setting) is more than the QSL's 8 samples"),
    (Scenario.OFFLINE, {"performance_issue_same": True, "performance_issue_same_index": 8},
     "performance_issue_same_index = 8 (--mlperf-setting) is not a sample of the QSL's 8"),
]


@pytest.mark.parametrize(("scenario", "values", "message"), RUNS)
def test_a_run_whose_settings_cannot_work_together_is_refused(scenario: Scenario, values: dict, message: str) -> None:
    plan = SettingsPlan("llama3.1-8b", scenario, Profile.QUICK, 8, 8, cli_overrides=values)
    with pytest.raises(SettingsError, match=None) as err:
        plan.build(Mode.PERFORMANCE)
    assert message in str(err.value), str(err.value)


def test_a_user_conf_value_out_of_range_fails_its_test_before_the_engine_starts(pytester: pytest.Pytester) -> None:
    conf = pytester.path / "user.conf"
    conf.write_text("llama3_1-8b.Server.target_qps = 0\n")
    result = _run(pytester, f"--mlperf-user-conf={conf}", "--mlperf-scenario=Offline,Server",
                  "--mlperf-mode=performance")
    result.assert_outcomes(passed=1, failed=1)  # Offline does not read it
    result.stdout.fnmatch_lines([f"*server_target_qps = 0.0 ({conf}) must be > 0*"])
    assert not list((pytester.path / "results").glob("*Server*"))  # no run, no engine start


# --- 4. hangs: a limit for every run, by default ---------------------------------------------------

BUDGETS = [
    # (scenario, mode, settings over the quick profile, QSL size, default limit s, schedule s)
    # Server: 838 queries (two late ones tolerated) rounded up to whole passes of the 256
    # samples (mlperf.conf's sample_concatenate_permutation): 1024 at 4 qps; 60,000 -> 60,160
    (Scenario.SERVER, Mode.PERFORMANCE, {"server_target_qps": 4}, 256, 632, 256),
    (Scenario.SERVER, Mode.PERFORMANCE, {"server_target_qps": 100, "min_duration_ms": 600000}, 256, 1324, 602),
    (Scenario.INTERACTIVE, Mode.ACCURACY, {"server_target_qps": 2}, 256, 376, 128),
    (Scenario.OFFLINE, Mode.PERFORMANCE, {}, 256, 632, 0),
    (Scenario.OFFLINE, Mode.PERFORMANCE, {"offline_expected_qps": 50}, 256, 131, 0),
    (Scenario.OFFLINE, Mode.ACCURACY, {}, 12, 144, 0),
    # SingleStream, quick: min_query_count 64, one pass of 256 samples, 1 s each at most
    (Scenario.SINGLE_STREAM, Mode.PERFORMANCE, {}, 256, 632, 0),
    # with a duration: at least min_duration's worth at the expected latency (10 s / 10 ms =
    # 1,000 -> 1,024, whole passes)
    (Scenario.SINGLE_STREAM, Mode.PERFORMANCE, {"min_duration_ms": 10000}, 256, 2168, 10),
    (Scenario.SINGLE_STREAM, Mode.ACCURACY, {}, 100, 320, 0),
]


@pytest.mark.parametrize(("scenario", "mode", "values", "samples", "limit", "schedule"), BUDGETS)
def test_the_default_run_limit_follows_the_effective_settings(
        scenario: Scenario, mode: Mode, values: dict, samples: int, limit: float, schedule: float) -> None:
    from pytest_mlperf.loadgen.budget import run_budget

    plan = SettingsPlan("llama3.1-8b", scenario, Profile.QUICK, samples, samples, cli_overrides=values)
    budget = run_budget(plan.build(mode), scenario, mode, samples)
    assert (budget.timeout_s, round(budget.schedule_s)) == (limit, schedule)
    assert budget.timeout_s >= budget.schedule_s  # at the limit, loadgen has issued everything


LOGGED = [
    # (scenario, mode, what loadgen logged it laid out, default limit s)
    (Scenario.SINGLE_STREAM, Mode.PERFORMANCE,  # CI's vLLM run: 2048 queries (10 s / 10 ms, rounded up)
     {"generated_query_count": 2048, "generated_samples_per_query": 1, "generated_query_duration": 20480000000,
      "effective_min_query_count": 2048, "effective_min_duration_ms": 10000}, 4216),
    (Scenario.SERVER, Mode.PERFORMANCE,
     {"generated_query_count": 512, "generated_samples_per_query": 1, "generated_query_duration": 128_000_000_000,
      "effective_min_query_count": 460, "effective_min_duration_ms": 10000}, 376),
    (Scenario.OFFLINE, Mode.PERFORMANCE,
     {"generated_query_count": 1, "generated_samples_per_query": 256, "generated_query_duration": 10**12,
      "effective_target_qps": 0.001}, 632),
    (Scenario.OFFLINE, Mode.PERFORMANCE,
     {"generated_query_count": 1, "generated_samples_per_query": 256, "generated_query_duration": 10**12,
      "effective_target_qps": 64}, 128),
    (Scenario.SERVER, Mode.PERFORMANCE, {"effective_min_query_count": 460}, None),  # not logged yet
]


@pytest.mark.parametrize(("scenario", "mode", "values", "limit"), LOGGED)
def test_the_default_limit_is_remade_from_what_loadgen_laid_out(
        scenario: Scenario, mode: Mode, values: dict, limit: float | None) -> None:
    """loadgen rounds counts up (whole passes over the samples, and more); half a second into
    the run the default limit is remade from its own figures."""
    from pytest_mlperf.loadgen.budget import logged_budget
    from pytest_mlperf.loadgen.logs import DetailLog

    budget = logged_budget(DetailLog(Path("detail"), values), scenario, mode)
    assert (budget.timeout_s if budget else None) == limit


# --- 5. weights that did not load ------------------------------------------------------------------


def _variant(tmp: Path, name: str, change: dict) -> Path:
    folder = tmp / name
    shutil.copytree(embedded.MODEL_DIR, folder)
    config = json.loads((folder / "config.json").read_text())
    config.update(change)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


WEIGHTS = [
    # (config.json change, engine arguments, what the error names; None: loads)
    ({}, {}, None),
    ({"num_hidden_layers": 2}, {}, "18 weight(s) in the checkpoint but not in the model (they would be dropped): model.layers.2."),
    ({"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2"}, {},
     "12 weight(s) missing from the checkpoint (they would be random): model.layers.0.self_attn.k_proj.bias"),
    ({"tie_word_embeddings": False}, {}, "1 weight(s) missing from the checkpoint (they would be random): lm_head.weight"),
    ({"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "n_embd": 192, "n_layer": 4, "n_head": 3,
      "n_positions": 2048}, {}, "weight(s) missing from the checkpoint*weight(s) in the checkpoint but not in the model"),
    ({"tie_word_embeddings": False}, {"load_format": "dummy"}, None),  # random weights on purpose
]


@pytest.mark.parametrize(("change", "engine_args", "message"), WEIGHTS)
def test_weights_that_do_not_match_the_config_fail_by_name(
        tmp_path: Path, change: dict, engine_args: dict, message: str | None) -> None:
    """The hf backend for real (transformers' loading report), and the checkpoint check the
    vLLM backend runs before its engine loads (tests/test_faults_engines.py starts vLLM)."""
    import fnmatch

    pytest.importorskip("transformers")
    from pytest_mlperf.backends.base import SystemSpec
    from pytest_mlperf.backends.hf import HFBackend
    from pytest_mlperf.backends.weights import WeightsError, checkpoint_problem

    folder = _variant(tmp_path, "model", change)
    backend = HFBackend(SystemSpec.local(folder), {"batch_size": 2, **engine_args})
    if message is None:
        backend.start()
        backend.close()
        return
    with pytest.raises(WeightsError) as err:
        backend.start()
    expected = f"model folder {folder}: the weights do not match config.json*{message}*load_format=dummy*"
    assert fnmatch.fnmatch(str(err.value), expected), str(err.value)
    assert fnmatch.fnmatch(checkpoint_problem(folder) or "", expected), checkpoint_problem(folder)


def test_a_weights_error_fails_the_test_by_name_without_a_traceback(pytester: pytest.Pytester) -> None:
    pytest.importorskip("transformers")
    folder = _variant(pytester.path, "model", {"tie_word_embeddings": False})
    result = pytester.runpytest("--mlperf-backend=hf", f"--mlperf-model={folder}", "--mlperf-mode=performance",
                                "--mlperf-total-samples=4", "--mlperf-output=results", "-p", "no:cacheprovider",
                                "--mlperf-engine-arg=batch_size=2",
                                "--rootdir", str(pytester.path), str(Path(__file__).parents[1] / "benchmarks" / "test_llama3_1_8b.py"))
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*failed to start: WeightsError: model folder *: 1 weight(s) missing*lm_head.weight*"])
    assert "Traceback" not in result.stdout.str()


# --- 6. late and noisy errors: checked once, before any engine ------------------------------------

LATE = [
    # (flags, where the message is, what it says)
    (("--mlperf-scenario=SingleStream",), "stderr",
     "*--mlperf-scenario (ini mlperf_scenario): no collected benchmark runs SingleStream (llama3.1-8b declares Offline, Server)*"),
    (("--mlperf-scenario=SingleStream,Interactive",), "stderr", "*no collected benchmark runs SingleStream, Interactive*"),
    (("--mlperf-output=data.json",), "stderr", "*--mlperf-output (ini mlperf_output): invalid value*data.json is a file; name a folder*"),
    (("--mlperf-output=data.json/logs",), "stderr", "*--mlperf-output*lies under the file*data.json; name a folder*"),
    (("--mlperf-run-timeout=0",), "stderr", "*--mlperf-run-timeout*'0'; expected a positive number of seconds*"),
    (("--mlperf-engine-timeout=soon",), "stderr", "*--mlperf-engine-timeout*'soon'; expected a positive number of seconds*"),
    (("--mlperf-setting=server_target_qps=0", "--mlperf-scenario=Server"), "stderr",
     "*--mlperf-setting: server_target_qps = 0 must be > 0*"),
    (("--mlperf-backend=tensorrt",), "stdout", "*unknown backend 'tensorrt'; known: *"),
    (("--mlperf-run-timeout=5", "--mlperf-scenario=Server", "--mlperf-setting=server_target_qps=4",
      "--mlperf-mode=performance"), "stdout",
     "*--mlperf-run-timeout=5 s is shorter than this run's schedule*"),
]


@pytest.mark.parametrize(("flags", "stream", "message"), LATE)
def test_bad_input_is_named_before_any_engine_starts(
        pytester: pytest.Pytester, flags: tuple[str, ...], stream: str, message: str) -> None:
    args = setup(pytester)
    pytester.makeconftest((pytester.path / "conftest.py").read_text() + STARTS)
    result = pytester.runpytest("--mlperf-backend=copy", *args, *flags)
    assert result.ret != pytest.ExitCode.OK
    getattr(result, stream).fnmatch_lines([message])
    assert not (pytester.path / "started").exists()  # no engine started
    assert "Traceback" not in _text(result)


STARTS = '''
_start = CopyBackend.start


def _recorded(self):
    open("started", "a").write("x")
    _start(self)


CopyBackend.start = _recorded
'''


def test_hf_engine_arguments_are_checked_at_collection(pytester: pytest.Pytester) -> None:
    args = setup(pytester)
    pytester.makeconftest("import pytest\n")  # the built-in backends only
    result = pytester.runpytest("--mlperf-backend=hf", "--mlperf-engine-arg=batch_size=0",
                                "--mlperf-engine-arg=dtype=fp33", *args)
    assert result.ret == USAGE
    result.stderr.fnmatch_lines(["*--mlperf-engine-arg (ini mlperf_engine_arg): backend 'hf': "
                                 "batch_size=0 must be a positive integer; dtype='fp33' is not one of float32*"])


MODEL = '''

@pytest.fixture(scope="session")
def mlperf_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("model")
    (folder / "config.json").write_text(json.dumps(CONFIG))
    return SystemSpec.local(folder)
'''


@pytest.mark.parametrize(("config", "message"), [
    ({"max_position_embeddings": 10, "vocab_size": 500},
     "*data.json: 12 prompt(s) longer than the model's context of 10 positions (*config.json): "
     "record 0 (13 tokens), record 1 (13 tokens), record 2 (13 tokens) and 9 more; *--mlperf-total-samples*"),
    ({"max_position_embeddings": 2048, "vocab_size": 100},
     "*data.json: token ids outside the model's vocabulary of 100 ids (*config.json): record 10 field "
     "'tok_input' item 10 = 100, record 11 field 'tok_input' item 8 = 101; the records were tokenized for "
     "another model: drop 'tok_input' to tokenize them with this model's tokenizer*"),
])
def test_prompts_that_do_not_fit_the_model_fail_once_and_stop_the_session(
        pytester: pytest.Pytester, config: dict, message: str) -> None:
    args = setup(pytester)
    conftest = (pytester.path / "conftest.py").read_text()
    pytester.makeconftest(conftest + STARTS + f"\nCONFIG = {config!r}\n" + MODEL)
    result = pytester.runpytest("--mlperf-backend=copy", "--mlperf-scenario=Offline,Server", *args)
    result.assert_outcomes(failed=1)  # the others would fail the same way: not run
    result.stdout.fnmatch_lines([message, "*mlperf: the data set does not fit the model*"])
    assert not (pytester.path / "started").exists()


def test_tracebacks_only_with_verbose(pytester: pytest.Pytester) -> None:
    args = setup(pytester)
    pytester.makeconftest((pytester.path / "conftest.py").read_text()
                          + "\ndef _boom(self):\n    raise OSError('no such device')\n\nCopyBackend.start = _boom\n")
    quiet = pytester.runpytest("--mlperf-backend=copy", "--mlperf-mode=performance", *args)
    quiet.assert_outcomes(failed=1)
    quiet.stdout.fnmatch_lines(["*backend 'copy' (CopyBackend) failed to start: OSError: no such device*"])
    assert "Traceback" not in quiet.stdout.str()
    verbose = pytester.runpytest("--mlperf-backend=copy", "--mlperf-mode=performance", "-v", *args)
    verbose.stdout.fnmatch_lines(["*failed to start: OSError: no such device*", "Traceback (most recent call last):",
                                  "*in _boom*"])


@pytest.mark.parametrize(("flags", "message"), [
    (("--mlperf-scenario=SingleStream",), "*--mlperf-scenario*no collected benchmark runs SingleStream*"),
    (("--mlperf-backend=tensorrt",), "*unknown backend 'tensorrt'*"),
])
def test_the_checks_hold_under_xdist(pytester: pytest.Pytester, flags: tuple[str, ...], message: str) -> None:
    """An xdist worker cannot end the session at collection: its first test fails with the
    message instead, and the session stops (not "2 skipped", not an INTERNALERROR)."""
    pytest.importorskip("xdist")
    args = setup(pytester)
    result = pytester.runpytest("-n", "2", "--mlperf-backend=copy", *args, *flags)
    assert result.ret not in (pytest.ExitCode.OK, pytest.ExitCode.INTERNAL_ERROR)
    result.stdout.fnmatch_lines([message])
    assert "INTERNALERROR" not in result.stdout.str()
    assert not list((pytester.path / "results").rglob("mlperf_log_detail.txt"))


def test_a_model_folder_without_a_tokenizer_runs_performance_and_refuses_accuracy_before_the_run(
        pytester: pytest.Pytester) -> None:
    """A folder of only config.json (dummy weights, the H200 measurements): token ids in and out
    need no tokenizer; accuracy does, and says so before any run, naming the folder."""
    from tests.fake_world import CONFTEST, setup

    args = setup(pytester)
    pytester.makeconftest(CONFTEST.replace("def mlperf_tokenizer():", "def _unused_tokenizer():"))
    # the fake world's model folder is empty
    result = pytester.runpytest(*args, "--mlperf-backend=copy", "--mlperf-scenario=Offline", "-rA")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "*the model folder *model0 (--mlperf-model) holds no tokenizer (tokenizer.json, "
        "tokenizer_config.json, tokenizer.model)*--mlperf-mode=performance*",
        "FAILED test_bench.py::test_bench?Offline-accuracy?*"])
    assert not list((pytester.path / "results").rglob("*accuracy*/run_*/mlperf_log_accuracy.json"))
