"""Reading loadgen's ``mlperf_log_accuracy.json`` the way the reference evaluation does.

The file is a JSON list of ``{"seq_id", "qsl_idx", "data": HEX, ...}``. Loadgen may log a
sample more than once; like ``language/llama3.1-8b/evaluation.py`` we keep the *first* entry of
each ``qsl_idx`` and keep the log's order (the per-sample scores are averaged in that order,
and floating-point means depend on it). ``data`` is the response's bytes in hex, read as
native-endian ``int32`` token ids (the reference SUT's) or ``int64`` (other harnesses).

Unlike the reference, a log that would make it crash or silently mis-score raises
:class:`AccuracyLogError` naming the file, the entry and the field. Repeated entries are
skipped unread, as the reference skips them, except for their ``qsl_idx``.
"""

from __future__ import annotations

import json
import string
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

#: memoryview formats (native byte order, as the reference's ``np.frombuffer``)
DTYPES = {"int32": "i", "int64": "q"}
_ITEM_SIZE = {"int32": 4, "int64": 8}
_HEX_DIGITS = frozenset(string.hexdigits)


class AccuracyLogError(ValueError):
    """An accuracy log that cannot be scored. The message names the file, entry and field."""

    def __init__(self, path: str | Path, problem: str, *, entry: int | None = None,
                 field: str | None = None) -> None:
        self.path = Path(path)
        self.entry = entry
        self.field = field
        where = str(path) if entry is None else f"{path}: entry {entry}"
        if field is not None:
            where += f", field '{field}'"
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True)
class LoggedSample:
    """The first logged response of one QSL sample."""

    qsl_idx: int
    token_ids: list[int]
    #: position of the entry in the log, for error messages
    entry: int


def _decode_data(path: Path, index: int, data: object, dtype: str) -> list[int]:
    if not isinstance(data, str):
        raise AccuracyLogError(path, f"is a {type(data).__name__}, not a hex string",
                               entry=index, field="data")
    if len(data) % 2:
        raise AccuracyLogError(path, f"has an odd number of hex digits ({len(data)})",
                               entry=index, field="data")
    try:
        raw = bytes.fromhex(data)
    except ValueError:
        bad = next((c for c in data if c not in _HEX_DIGITS), "?")
        raise AccuracyLogError(path, f"is not hexadecimal (holds {bad!r})",
                               entry=index, field="data") from None
    size = _ITEM_SIZE[dtype]
    if len(raw) % size:
        raise AccuracyLogError(
            path, f"holds {len(raw)} bytes, not a whole number of {dtype} tokens "
            f"({size} bytes each); is --dtype right?", entry=index, field="data")
    return memoryview(raw).cast(DTYPES[dtype]).tolist()


def read_accuracy_log(path: str | Path, *, n_references: int,
                      dtype: str = "int32") -> list[LoggedSample]:
    """The first entry of every ``qsl_idx`` in ``path``, in log order, with its token ids.

    ``n_references`` is the number of reference texts: a ``qsl_idx`` outside
    ``0..n_references-1`` is an error (the reference would crash, or for a negative index
    silently score against the wrong target).
    """
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}, not {dtype!r}")
    path = Path(path)
    try:
        with path.open(encoding="utf-8") as f:
            entries = json.load(f)
    except json.JSONDecodeError as e:
        raise AccuracyLogError(
            path, f"is not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})"
        ) from None
    except UnicodeDecodeError as e:
        raise AccuracyLogError(path, f"is not UTF-8 text ({e.reason} at byte {e.start})") from None
    if not isinstance(entries, list):
        raise AccuracyLogError(
            path, f"holds a JSON {type(entries).__name__}, not a list of entries")

    samples: list[LoggedSample] = []
    seen: set[int] = set()
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise AccuracyLogError(path, f"is a {type(entry).__name__}, not an object", entry=index)
        if "qsl_idx" not in entry:
            raise AccuracyLogError(path, "is missing", entry=index, field="qsl_idx")
        qsl_idx = entry["qsl_idx"]
        if not isinstance(qsl_idx, int) or isinstance(qsl_idx, bool):
            raise AccuracyLogError(path, f"is {qsl_idx!r}, not an integer",
                                   entry=index, field="qsl_idx")
        if not 0 <= qsl_idx < n_references:
            raise AccuracyLogError(
                path, f"is {qsl_idx}, outside the {n_references} references "
                f"(0..{n_references - 1}); is this the right data set?",
                entry=index, field="qsl_idx")
        if qsl_idx in seen:
            continue
        seen.add(qsl_idx)
        if "data" not in entry:
            raise AccuracyLogError(path, "is missing", entry=index, field="data")
        token_ids = _decode_data(path, index, entry["data"], dtype)
        samples.append(LoggedSample(qsl_idx, token_ids, index))
    if not samples:
        raise AccuracyLogError(path, "holds no entries; was the run in accuracy mode?")
    return samples


def decode_texts(path: str | Path, samples: Sequence[LoggedSample], tokenizer) -> list[str]:
    """``tokenizer.batch_decode(ids, skip_special_tokens=True)``, as the reference decodes.

    A tokenizer that rejects the ids (out of its vocabulary, typically from a wrong dtype)
    raises :class:`AccuracyLogError` naming the first entry it rejects.
    """
    batch = [sample.token_ids for sample in samples]
    try:
        return list(tokenizer.batch_decode(batch, skip_special_tokens=True))
    except (OverflowError, TypeError, ValueError, IndexError, KeyError) as batch_error:
        for sample in samples:
            try:
                tokenizer.batch_decode([sample.token_ids], skip_special_tokens=True)
            except (OverflowError, TypeError, ValueError, IndexError, KeyError) as e:
                raise AccuracyLogError(
                    path, f"the tokenizer cannot decode its token ids (qsl_idx "
                    f"{sample.qsl_idx}): {e}; is --dtype right?",
                    entry=sample.entry, field="data") from e
        raise AccuracyLogError(path, f"the tokenizer cannot decode the samples: {batch_error}",
                               field="data") from batch_error
