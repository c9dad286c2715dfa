"""``--mlperf-compare-fail=outputs``: every sample's output token ids against the stored run's.

Greedy decoding gives the same tokens on one machine with one engine version, so where a
throughput figure moves by tens of percent between two sessions on a shared CPU, the outputs of
an accuracy run do not move at all: a change in them is a change in the model, its weights, the
engine or the decoding, never noise. ``--mlperf-save`` stores the token ids of every accuracy
run (read from its ``mlperf_log_accuracy.json``) beside its records; the gate reads today's log
and names the first sample and token that differ.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pytest_mlperf.core.record import BenchmarkRecord, GateResult

#: the pseudo-figure ``--mlperf-compare-fail`` takes for this gate
NAME = "outputs"
LOG = "mlperf_log_accuracy.json"


def read_outputs(record: BenchmarkRecord) -> dict[int, list[int]] | None:
    """QSL index -> output token ids of an accuracy run (its log's first entry per sample), or
    None when the record is no accuracy run or its log is gone or unreadable."""
    from pytest_mlperf.accuracy.log import AccuracyLogError, read_accuracy_log

    if record.mode != "accuracy":
        return None
    path = Path(record.run.outdir) / LOG
    if not path.is_file():
        return None
    limit = max(record.dataset.total_records, record.dataset.samples) or 1 << 62
    try:
        return {s.qsl_idx: s.token_ids for s in read_accuracy_log(path, n_references=limit)}
    except (AccuracyLogError, OSError):
        return None


def outputs_to_store(records: Sequence[BenchmarkRecord]) -> dict[str, dict[str, list[int]]]:
    """Node id -> {QSL index: token ids} for every accuracy record whose log is readable: what
    a stored session keeps for this gate (JSON keys are strings)."""
    out = {}
    for record in records:
        found = read_outputs(record)
        if found is not None:
            out[record.nodeid] = {str(k): v for k, v in sorted(found.items())}
    return out


@dataclass(frozen=True)
class OutputsComparison:
    gate: GateResult
    #: why it failed (None when it passed), naming the first differing sample and token
    reason: str | None


def compare_outputs(stored: Mapping[str, Sequence[int]], now: Mapping[int, Sequence[int]],
                    against: str) -> OutputsComparison:
    """Today's outputs against the stored ones, sample by sample in QSL order."""
    old = {int(k): list(v) for k, v in stored.items()}
    differ = [idx for idx in sorted(set(old) | set(now))
              if idx not in old or idx not in now or list(old[idx]) != list(now[idx])]
    total = len(old)
    same = total - len(set(differ) & set(old))
    gate = GateResult(name=NAME, bound="exact", stored=float(total), value=float(same),
                      ratio=same / total if total else None, passed=not differ, method="exact")
    if not differ:
        return OutputsComparison(gate, None)
    idx = differ[0]
    a, b = old.get(idx), now.get(idx)
    if a is None or b is None:
        first = f"sample {idx} {'is new' if a is None else 'is missing today'}"
    else:
        pos = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
        was = a[pos] if pos < len(a) else "end of output"
        got = b[pos] if pos < len(b) else "end of output"
        first = f"sample {idx}, token {pos} of {len(a)}: {was} stored, {got} now"
    reason = (f"outputs differ from the stored run in {len(differ)} of {total} samples; first: {first} "
              f"(stored in {against}; --mlperf-compare-fail={NAME})")
    return OutputsComparison(gate, reason)
