"""A user.conf, line by line, checked against what loadgen will do with it.

loadgen's parser skips what it does not know without a word: a misspelled key, a model it
spells differently (``llama3.1-8b.Server.target_qps``, where loadgen's model is
``llama3_1-8b``), a scenario it has no such key for (``*.Offline.target_latency``), a folder
given as the file. Each of those is an error here, naming the line and saying what loadgen
expects. Which keys loadgen reads is asked of loadgen itself (in a child process: each key set
alone, and its TestSettings compared before and after), and the models it knows come from its
built-in mlperf.conf; nothing is copied from its source.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from pytest_mlperf.loadgen.mlperf_conf import known_models
from pytest_mlperf.loadgen.settings import SettingsError

LOADGEN_SCENARIOS = ("SingleStream", "MultiStream", "Server", "Offline")
#: user.conf keys loadgen 6.0 reads, for suggestions only (whether a key is read is asked of
#: loadgen itself)
KNOWN_KEYS = (
    "mode", "min_duration", "max_duration", "min_query_count", "max_query_count",
    "qsl_rng_seed", "sample_index_rng_seed", "schedule_rng_seed", "accuracy_log_rng_seed",
    "accuracy_log_probability", "accuracy_log_sampling_target", "print_timestamps",
    "performance_issue_unique", "performance_issue_same", "performance_issue_same_index",
    "performance_sample_count_override", "accuracy_sample_count_override",
    "sample_concatenate_permutation", "use_token_latencies", "ttft_latency", "tpot_latency",
    "infer_token_latencies", "token_latency_scaling_factor", "target_latency_percentile",
    "target_latency", "target_qps", "samples_per_query", "max_async_queries",
    "coalesce_queries", "test05", "test05_qsl_rng_seed", "test05_sample_index_rng_seed",
    "test05_schedule_rng_seed",
)
_NUMBER = re.compile(r"^[+-]?(0[xX][0-9a-fA-F]+|(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|inf|nan)$")


@dataclass(frozen=True)
class ConfLine:
    path: Path
    number: int
    model: str
    scenario: str
    key: str
    value: str

    @property
    def where(self) -> str:
        return f"{self.path}:{self.number}"

    def applies_to(self, model: str, loadgen_scenario: str) -> bool:
        return self.model in ("*", model) and self.scenario in ("*", loadgen_scenario)


def read_user_conf(path: Path) -> list[ConfLine]:
    """The settings lines of ``path``, with loadgen's grammar (``model.scenario.key = value``,
    ``#`` comments); :class:`SettingsError` names the file, the line and the fix."""
    if not path.exists():
        raise SettingsError(f"{path}: no such user.conf file")
    if not path.is_file():
        raise SettingsError(f"{path} is a folder, not a user.conf file (loadgen would read "
                            "nothing from it and run with defaults): name the file itself")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{path}: cannot read this user.conf ({exc})") from None
    lines = []
    for number, raw in enumerate(text.splitlines(), 1):
        words = raw.split()
        if "#" in words:
            words = words[: words.index("#")]
        if not words:
            continue
        where = f"{path}:{number}"
        if len(words) != 3 or words[1] != "=":
            raise SettingsError(f"{where}: {raw.strip()!r} is not 'model.scenario.key = value' "
                                "(spaces around '='; loadgen rejects the whole file otherwise)")
        name, _, value = words
        if not _NUMBER.match(value):
            raise SettingsError(f"{where}: value {value!r} is not a number")
        parts = name.rsplit(".", 2)
        if len(parts) != 3 or not all(parts):
            raise SettingsError(f"{where}: {name!r} is not model.scenario.key (e.g. "
                                "llama3_1-8b.Server.target_qps; '*' for any model or scenario)")
        lines.append(ConfLine(path, number, parts[0], parts[1], parts[2], value))
    return lines


def check_user_conf(path: Path) -> list[ConfLine]:
    """Read ``path`` and refuse every line loadgen would skip: :class:`SettingsError` naming
    the line, what loadgen expects instead and, where close, the likely meant name."""
    lines = read_user_conf(path)
    models = known_models()
    problems = []
    for line in lines:
        if line.model != "*" and models and line.model not in models:
            spelled = line.model.replace(".", "_")
            hint = (f"loadgen spells it '{spelled}'" if spelled in models
                    else _did_you_mean(line.model, models))
            problems.append(f"{line.where}: model '{line.model}' is not a model of loadgen's "
                            f"mlperf.conf, so loadgen never applies this line; {hint}")
        if line.key == "mode":
            problems.append(f"{line.where}: the test mode is the plugin's to set (--mlperf-mode "
                            "runs performance and accuracy as separate tests); remove this line")
        if line.scenario != "*" and line.scenario not in LOADGEN_SCENARIOS:
            hint = _did_you_mean(line.scenario, LOADGEN_SCENARIOS)
            if line.scenario.lower() == "interactive":
                hint = ("Interactive is loadgen's Server scenario of the '-interactive' model: "
                        "write e.g. llama3_1-8b-interactive.Server." + line.key)
            problems.append(f"{line.where}: scenario '{line.scenario}' is not one of loadgen's "
                            f"({', '.join(LOADGEN_SCENARIOS)}, or '*'); {hint}")
    if problems:
        raise SettingsError("; ".join(problems))
    table = _probe_keys(tuple(sorted({*KNOWN_KEYS, *(line.key for line in lines)})))

    def read(key: str, scenario: str) -> bool:
        return any(table[s][key] for s in (LOADGEN_SCENARIOS if scenario == "*" else (scenario,)))

    for line in lines:
        if read(line.key, line.scenario):
            continue
        if read(line.key, "*"):
            scenarios = [s for s in LOADGEN_SCENARIOS if read(line.key, s)]
            problems.append(f"{line.where}: loadgen reads '{line.key}' only for "
                            f"{', '.join(scenarios)}, never for {line.scenario}")
        elif line.key in KNOWN_KEYS:
            problems.append(f"{line.where}: loadgen takes '{line.key}' from its built-in "
                            "mlperf.conf only and ignores it in a user.conf (for a run that is "
                            "not a submission, set the TestSettings field with --mlperf-setting)")
        else:
            problems.append(f"{line.where}: '{line.key}' is not a key loadgen reads from a "
                            f"user.conf; {_did_you_mean(line.key, KNOWN_KEYS)}")
    if problems:
        raise SettingsError("; ".join(problems))
    return lines


def _did_you_mean(word: str, choices: tuple[str, ...] | frozenset[str]) -> str:
    close = difflib.get_close_matches(word, sorted(choices), n=3, cutoff=0.6)
    return f"did you mean {' or '.join(close)}?" if close else "check its spelling"


_PROBE = r"""
import json, os, sys, tempfile
import mlperf_loadgen as lg

keys = json.loads(sys.argv[1])


def snapshot(s):
    out = {}
    for name in dir(s):
        if name.startswith("_") or name == "FromConfig":
            continue
        value = getattr(s, name)
        out[name] = value if isinstance(value, (bool, int, float, str)) else str(value)
    return out


def apply(text, scenario, flags):
    with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as f:
        f.write(text)
    s = lg.TestSettings()
    s.scenario = getattr(lg.TestScenario, scenario)
    for name in flags:  # some keys are read only when a flag is on (token latencies)
        setattr(s, name, True)
    s.FromConfig(f.name, "probe-model", scenario, 1)
    os.unlink(f.name)
    return snapshot(s)


apply("", "Offline", ())  # the first user.conf call of a process re-applies mlperf.conf: spend it
out = {}
for scenario in ("SingleStream", "MultiStream", "Server", "Offline"):
    out[scenario] = dict.fromkeys(keys, False)
    for flags in ((), ("use_token_latencies",), ("infer_token_latencies",)):
        base = apply("", scenario, flags)
        for key in keys:
            out[scenario][key] = out[scenario][key] or any(
                apply(f"probe-model.{scenario}.{key} = {v}\n", scenario, flags) != base for v in (0, 1))
print(json.dumps(out))
"""


@functools.cache
def _probe_keys(keys: tuple[str, ...]) -> dict[str, dict[str, bool]]:
    proc = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(list(keys))],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SettingsError(f"asking loadgen which user.conf keys it reads failed: {proc.stderr.strip()[-500:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])
