"""Errors that named the wrong thing, each now named right (issue 19), one row each:
- ``--mlperf-backend=vllm`` without vLLM: an INTERNALERROR traceback at collection;
- a model folder with code of its own: 'signal only works in main thread' (transformers asks on
  the terminal, from the engine's thread);
- a relative path in an ini file: resolved against the current directory, not the ini's folder;
- a data set folder: 'data set file not found';
- a served model's --mlperf-model folder without a tokenizer: transformers' message at the first
  test; an unset API key variable: found at the engine's start."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_mlperf.embedded import MODEL_DIR
from tests.fake_world import CONFTEST

BENCH = '''
import pytest


@pytest.mark.mlperf(benchmark="llama3.1-8b", scenarios=("Offline",))
def test_bench(mlperf_result):
    pass
'''


def _no_vllm(path: Path) -> list[str]:
    (path / "conftest.py").write_text('import sys\nsys.modules["vllm"] = None  # not installed\n')
    return ["--mlperf-backend=vllm", "--mlperf-engine-arg=max_model_len=512"]


def _custom_code(path: Path) -> list[str]:
    model = path / "model"
    shutil.copytree(MODEL_DIR, model)
    config = json.loads((model / "config.json").read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "modeling_mine.MineForCausalLM"}
    (model / "config.json").write_text(json.dumps(config))
    return ["--mlperf-backend=hf", f"--mlperf-model={model}", "--mlperf-mode=performance"]


def _ini_relative(path: Path) -> list[str]:
    conf = path / "conf"
    conf.mkdir()
    namespace: dict = {}
    exec(CONFTEST, namespace)
    namespace["make_dataset"](conf / "data.json", 12)
    (conf / "pytest.ini").write_text("[pytest]\nmlperf_dataset = data.json\n")
    return ["-c", "conf/pytest.ini", "--rootdir", str(path), "--collect-only"]


def _dataset_folder(path: Path) -> list[str]:
    (path / "cnn").mkdir()
    return ["--mlperf-dataset=cnn"]


def _served_config_only(path: Path) -> list[str]:
    (path / "served").mkdir()
    shutil.copy(MODEL_DIR / "config.json", path / "served" / "config.json")
    return ["--mlperf-endpoint=http://127.0.0.1:9", "--mlperf-served-model=m", "--mlperf-model=served"]


def _api_key_unset(path: Path) -> list[str]:
    return ["--mlperf-endpoint=http://127.0.0.1:9", "--mlperf-served-model=m",
            "--mlperf-api-key-env=MLPERF_SURELY_UNSET_KEY"]


# (case, set up -> extra args, exit status, must say, must not say)
CASES: list[tuple[str, Callable[[Path], list[str]], int, str, str]] = [
    ("vllm-not-installed", _no_vllm, pytest.ExitCode.USAGE_ERROR,
     "backend 'vllm' needs vllm, which this Python", "INTERNALERROR"),
    ("model-with-custom-code", _custom_code, pytest.ExitCode.TESTS_FAILED,
     "needs Python code of its own (config.json auto_map: AutoModelForCausalLM: modeling_mine", "signal only works"),
    ("relative-ini-path", _ini_relative, pytest.ExitCode.OK, "dataset={path}/conf/data.json", "no such data set file"),
    ("served-model-folder-without-tokenizer", _served_config_only, pytest.ExitCode.USAGE_ERROR,
     "gives the served model's tokenizer, and {path}/served holds none", "AutoTokenizer"),
    ("api-key-variable-unset", _api_key_unset, pytest.ExitCode.USAGE_ERROR,
     "the environment variable MLPERF_SURELY_UNSET_KEY is not set", "Traceback"),
    ("data-set-folder", _dataset_folder, pytest.ExitCode.USAGE_ERROR,
     "cnn is a folder, not a data set file; name the file in it", "not found"),
]


# the custom-code row starts the transformers engine (it fails at once, but imports torch): once in CI
PARAMS = [pytest.param(*c[1:], id=c[0], marks=[pytest.mark.engine_faults] if c[0] == "model-with-custom-code" else [])
          for c in CASES]


@pytest.mark.parametrize(("setup", "status", "says", "not_says"), PARAMS)
def test_each_error_names_the_right_thing(pytester: pytest.Pytester, setup, status, says, not_says) -> None:
    pytester.makepyfile(test_bench=BENCH)
    args = setup(pytester.path)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--mlperf-scenario=Offline", *args)
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == status, output[-3000:]
    assert says.format(path=pytester.path) in output, output[-3000:]
    assert not_says not in output, output[-3000:]
