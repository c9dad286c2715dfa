"""Compliance: TEST06 (``compliance/TEST06`` of mlcommons/inference), and stray ``audit.config``.

TEST06 checks that what a system returns in a performance run is what it claims: one audit
run in performance mode logs about 100 sampled responses (the settings of TEST06's
``audit.config``, applied here as TestSettings fields so that no file in the working directory
changes any other run), then three checks over them, as ``run_verification.py`` makes them:

- first token (not Offline): the first token reported (``token_data``) is where the
  response (``data``) starts;
- EOS: a response ends in at most one EOS token (``[eos, eos]`` alone is allowed);
- sample length: a response has as many tokens as it reported (``token_count``).

The result is written as the reference writes it, into the audit run's folder
``<run>/TEST06/``: ``verify_accuracy.txt`` and ``accuracy/mlperf_log_accuracy.json``, the two
files a submission holds under ``results/<system>/<benchmark>/<Scenario>/TEST06/``
(:func:`submission_files`). A miss fails the performance test it ran with.

Loadgen reads a file named ``audit.config`` in the working directory when it is handed one and
turns the run into a compliance run; the runner never hands it that name, and
:func:`stray_audit_config` finds one left behind so that the session reports it.
"""

from __future__ import annotations

import json
import shutil
import struct
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pytest_mlperf.core.record import Compliance

TEST06 = "TEST06"
#: compliance/TEST06/audit.config, verbatim
AUDIT_CONFIG = """\
# The format of this config file is 'key = value'.
# The key has the format 'model.scenario.key'. Value is mostly int64_t.
# Model maybe '*' as wildcard. In that case the value applies to all models.
# All times are in milli seconds

# mode dictionary (0 = submission, 1 = accuracy, 2 = performance, 3 = find peak perf)
*.*.mode = 2
*.*.accuracy_log_rng_seed = 720381539243781796
*.*.accuracy_log_sampling_target = 100
*.*.min_query_count = 100
*.*.min_duration = 0
# Turn off equal issue mode for TEST06
*.*.sample_concatenate_permutation = 0
"""
#: the same, as loadgen TestSettings fields (the run is in performance mode)
AUDIT_SETTINGS: Mapping[str, Any] = {
    "accuracy_log_rng_seed": 720381539243781796,
    "accuracy_log_sampling_target": 100,
    "min_query_count": 100,
    "min_duration_ms": 0,
    "sample_concatenate_permutation": False,
}
#: EOS ids the reference checks with, by benchmark (its tokenizer's)
OFFICIAL_EOS: Mapping[str, tuple[int, ...]] = {
    "llama3.1-8b": (128001, 128008, 128009),
    "llama3.1-8b-edge": (128001, 128008, 128009),
    "llama3.1-405b": (128001, 128008, 128009),
    "llama2-70b": (2,),
    "mixtral-8x7b": (2,),
}
VERIFY_FILE = "verify_accuracy.txt"
ACCURACY_LOG = "mlperf_log_accuracy.json"
#: check name in the record -> its line in verify_accuracy.txt
LINES = {"first_token": "First token check pass", "eos": "EOS check pass",
         "sample_length": "Sample length check pass"}
#: per-sample failures kept in the record
SHOWN = 5


def eos_ids(benchmark: str, generation_eos: Iterable[int] = (), tokenizer: Any = None,
            model_dir: Path | None = None) -> tuple[int, ...]:
    """The EOS ids to check with: the benchmark's official ones, the generation's, the
    tokenizer's and the model folder's (a model of one's own has its own)."""
    ids = list(OFFICIAL_EOS.get(benchmark, ())) + [int(i) for i in generation_eos]
    found: list[Any] = [getattr(tokenizer, "eos_token_id", None)]
    for name in ("generation_config.json", "config.json"):
        try:
            found.append(json.loads((Path(model_dir) / name).read_text(encoding="utf-8")).get("eos_token_id"))
        except (TypeError, OSError, ValueError, AttributeError):
            continue
    for eos in found:
        if isinstance(eos, int) and not isinstance(eos, bool):
            ids.append(eos)
        elif isinstance(eos, (list, tuple)):
            ids.extend(int(i) for i in eos)
    return tuple(dict.fromkeys(ids))


#: where the log cannot be read as run_verification.py reads it, a failure starts with this
MALFORMED = "malformed audit log"


class _Malformed(ValueError):
    """A field the reference cannot read (it would stop with a traceback there)."""


def _tokens(entry: Mapping[str, Any], name: str) -> list[int]:
    """The int32 token ids of ``entry[name]`` (hex); :class:`_Malformed` naming the field where
    the reference's ``np.frombuffer(bytes.fromhex(...), int32)`` would raise."""
    if name not in entry:
        raise _Malformed(f"no '{name}' field")
    value = entry[name]
    if not isinstance(value, str):
        raise _Malformed(f"'{name}' is {json.dumps(value)[:40]}, not a hex string")
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise _Malformed(f"'{name}' is not hex ({value[:40]!r})") from None
    if len(raw) % 4:
        raise _Malformed(f"'{name}' holds {len(raw)} bytes, not whole int32 token ids")
    return list(struct.unpack(f"<{len(raw) // 4}i", raw))


def _token_count(entry: Mapping[str, Any]) -> int:
    """``int(entry["token_count"])`` as the reference reads it."""
    if "token_count" not in entry:
        raise _Malformed("no 'token_count' field")
    value = entry["token_count"]
    try:
        return int(value)
    except (TypeError, ValueError):
        raise _Malformed(f"'token_count' is {json.dumps(value)[:40]}, not a number") from None


def _trailing_eos(data: list[int], eos: set[int]) -> int:
    trailing = 0
    for token in reversed(data):
        if token not in eos:
            break
        trailing += 1
    return trailing


def check_log(log: Path, *, streaming: bool, eos: Iterable[int]) -> tuple[dict[str, str], list[str], int]:
    """TEST06's three checks over an accuracy log: (check -> "True"/"False"/"Skipped",
    per-sample failures, samples checked). Responses are int32 token ids, as the bridge sends.

    The verdict is ``run_verification.py``'s on every log it reads. Where it would stop with
    a traceback (a log that is not JSON, an entry that is not an object, a ``data`` that is no
    int32 hex, a ``token_count`` missing or not a number), the checks it could not make are
    "False" and the failure names the entry and field, starting with :data:`MALFORMED`.
    Deliberately stricter (docs/reports.md, "TEST06"): every EOS id counts, and a log of no
    responses (``[]``, ``{}``), which the reference passes having checked nothing, fails."""
    failures: dict[str, list[str]] = {name: [] for name in LINES}
    malformed: list[str] = []
    try:
        entries = json.loads(log.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return ({name: "False" for name in LINES},
                [f"{MALFORMED}: {log}: cannot read it as JSON ({exc}); run_verification.py stops there too"], 0)
    if entries in ([], {}, ""):
        what = "" if entries == [] else f" (the top level is {json.dumps(entries)}, not a list)"
        failures["sample_length"].append(f"{log}: no sampled responses{what}: the audit run verified nothing "
                                         "(run_verification.py passes such a log; pytest-mlperf does not)")
        entries = []
    elif not isinstance(entries, list):
        kind = {dict: "an object", str: "a string"}.get(type(entries), f"{json.dumps(entries)[:20]}")
        malformed.append(f"{log}: the top level is {kind}, not a list of responses")
        entries = []
    eos_set = set(eos)
    for n, entry in enumerate(entries):
        if not isinstance(entry, dict):
            malformed.append(f"entry {n} is {json.dumps(entry)[:40]}, not an object")
            for name in LINES:
                failures[name].append(f"entry {n}: not an object")
            continue
        where = f"qsl_idx {entry.get('qsl_idx')} (entry {n})"
        try:
            data = _tokens(entry, "data")
        except _Malformed as exc:
            malformed.append(f"{where}: {exc}")
            for name in LINES:
                failures[name].append(f"{where}: {exc}")
            continue
        if streaming:
            try:
                first = _tokens(entry, "token_data")
            except _Malformed as exc:  # the reference fails the check here, and goes on
                failures["first_token"].append(f"{where}: {exc} (the first token loadgen was given)")
            else:
                if any(a != b for a, b in zip(data, first, strict=False)):
                    failures["first_token"].append(f"{where}: first token {first[:1]} but the response starts {data[:3]}")
        trailing = _trailing_eos(data, eos_set)
        if trailing >= 2 and len(data) != 2:
            failures["eos"].append(f"{where}: ends in {trailing} EOS tokens")
        try:
            count = _token_count(entry)
        except _Malformed as exc:
            malformed.append(f"{where}: {exc}")
            failures["sample_length"].append(f"{where}: {exc}")
            continue
        if count != len(data):
            failures["sample_length"].append(f"{where}: {len(data)} tokens, token_count {count}")
    # a log the reference cannot read passes no check
    checks = {name: "False" if failures[name] or malformed else "True" for name in LINES}
    if not streaming:
        checks["first_token"] = "Skipped"
    shown = [f"{MALFORMED}: {m}; run_verification.py stops with a traceback there" for m in malformed[:1]]
    shown += [f"{LINES[name].removesuffix(' pass')}: {f}" for name in LINES for f in failures[name]]
    return checks, shown, len(entries)


def verify_text(checks: Mapping[str, str]) -> str:
    """``verify_accuracy.txt`` as ``run_verification.py`` writes it."""
    lines = [f"{LINES[name]}: {checks[name]}" for name in LINES]
    ok = all(checks[name] in ("True", "Skipped") for name in LINES)
    lines.append("TEST06 verification complete" if ok else "TEST06 verification failed")
    return "\n".join(lines) + "\n"


def verify_test06(run: Any, *, streaming: bool, eos: Iterable[int]) -> Compliance:
    """Check an audit run (a RunResult) and write ``verify_accuracy.txt`` and the
    ``accuracy/`` copy of its log beside its logs."""
    outdir = Path(run.outdir)
    checks, failures, samples = check_log(outdir / ACCURACY_LOG, streaming=streaming, eos=eos)
    (outdir / VERIFY_FILE).write_text(verify_text(checks), encoding="utf-8")
    if (outdir / ACCURACY_LOG).is_file():
        (outdir / "accuracy").mkdir(exist_ok=True)
        shutil.copy2(outdir / ACCURACY_LOG, outdir / "accuracy" / ACCURACY_LOG)
    if run.backend_error:
        failures.insert(0, f"the audit run's engine failed: {run.backend_error}")
    passed = all(v in ("True", "Skipped") for v in checks.values()) and not run.backend_error
    return Compliance(test=TEST06, passed=passed, checks=checks, failures=tuple(failures[:SHOWN]),
                      samples=samples, outdir=str(outdir))


def explain(result: Compliance) -> str:
    """The verdict's reason for a failed compliance test."""
    missed = ", ".join(LINES[k].removesuffix(" pass") for k, v in result.checks.items() if v == "False")
    detail = "; ".join(result.failures[:3])
    return (f"{result.test} failed ({missed or 'audit run'}; {result.samples} samples): {detail} "
            f"(see {Path(result.outdir) / VERIFY_FILE})")


def submission_files(result: Compliance) -> dict[str, Path]:
    """Where the submission tree holds this result, relative to
    ``results/<system>/<benchmark>/<Scenario>/``, -> the file to copy there."""
    outdir = Path(result.outdir)
    files = {f"{result.test}/{VERIFY_FILE}": outdir / VERIFY_FILE,
             f"{result.test}/accuracy/{ACCURACY_LOG}": outdir / "accuracy" / ACCURACY_LOG}
    return {rel: path for rel, path in files.items() if path.is_file()}


def stray_audit_config(*folders: Path) -> list[Path]:
    """``audit.config`` files where loadgen would look for one (the working directory)."""
    return [f / "audit.config" for f in dict.fromkeys(Path(f).resolve() for f in folders)
            if (f / "audit.config").is_file()]
