"""The ``cnn_eval.json`` schema: load, validate, tokenize when ``tok_input`` is absent.

The file is a JSON list of records ``{"instruction": ..., "input": article, "tok_input": [int],
"output": highlights}``; only ``input`` and ``output`` are required. ``instruction`` holds the
prompt template, published in two layouts: a mapping ``{"llama": TEMPLATE}`` or the template as
a plain string; without it the MLCommons :data:`TEMPLATE` applies. GPT-J's file (``instruction``
a bare instruction, or GPT-J's prompt with ``{instruction}``) is refused with that cause named.
Every :class:`DatasetError` names the file, the record index and the field, and says what to
change.

A leaf module: it imports nothing of the package.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["QSL", "TEMPLATE", "Dataset", "DatasetError", "Record", "build_qsl", "load_dataset"]

#: The MLCommons llama3.1-8b prompt template (no chat template is applied).
TEMPLATE = (
    "Summarize the following news article in 128 tokens. Please output the summary only, "
    "without any other text.\n\nArticle:\n{input}\n\nSummary:"
)

_SCHEMA = (
    'a cnn_eval.json-schema file is a JSON list of records {"input": article, '
    '"output": summary} (optionally with "instruction" and "tok_input")'
)
_REQUIRED = {"input": "the article", "output": "the reference summary"}
#: The raw CNN/DailyMail column names and their cnn_eval.json names.
_RENAMES = {"article": "input", "highlights": "output"}


class DatasetError(ValueError):
    """A data set file that cannot be used; the message names the file, record and field."""


@dataclass(frozen=True, slots=True)
class Record:
    input: str
    output: str
    template: str
    tok_input: tuple[int, ...] | None


@dataclass(frozen=True)
class Dataset:
    """A validated data set: its records and what identifies the file by content."""

    path: Path
    records: tuple[Record, ...]
    #: Hex SHA-256 of the file's bytes: tells data sets apart by content, not by name.
    sha256: str
    #: Records in the file, before ``limit`` cut them to :attr:`records`.
    total_records: int

    def __len__(self) -> int:
        return len(self.records)

    @property
    def references(self) -> list[str]:
        """The target summaries, by QSL index."""
        return [r.output for r in self.records]

    @property
    def needs_tokenizer(self) -> bool:
        """Whether some record lacks ``tok_input``, so :meth:`prompts` needs ``encode``."""
        return any(r.tok_input is None for r in self.records)

    def prompts(self, encode: Callable[[str], Sequence[int]] | None = None) -> list[list[int]]:
        """Prompt token ids by QSL index: ``tok_input`` where present, else ``encode`` of the
        templated article (the tokenizer must add BOS as Llama 3's does)."""
        out: list[list[int]] = []
        for i, r in enumerate(self.records):
            if r.tok_input is not None:
                out.append(list(r.tok_input))
            elif encode is None:
                raise DatasetError(
                    f"{self.path}: record {i} lacks the field 'tok_input', so its prompt must "
                    "be tokenized, and no tokenizer was given: pass encode= (the model "
                    "tokenizer's encode), or give every record 'tok_input'"
                )
            else:
                out.append(list(encode(r.template.format(input=r.input))))
        return out


@dataclass(frozen=True)
class QSL:
    """The query sample library: prompt token ids by index, and loadgen's two counts."""

    prompts: Sequence[Sequence[int]]
    total_count: int
    performance_count: int


def build_qsl(
    dataset: Dataset,
    *,
    performance_samples: int | None = None,
    encode: Callable[[str], Sequence[int]] | None = None,
) -> QSL:
    """The QSL of ``dataset``: every record's prompt, and ``performance_samples`` (default:
    all) as loadgen's performance count. ``encode`` is needed only when some record lacks
    ``tok_input`` (see :attr:`Dataset.needs_tokenizer`)."""
    if performance_samples is not None and performance_samples < 0:
        raise ValueError(f"performance_samples must be >= 0, got {performance_samples}")
    prompts = dataset.prompts(encode)
    total = len(prompts)
    return QSL(
        prompts=prompts,
        total_count=total,
        performance_count=min(total, performance_samples or total),
    )


def load_dataset(path: str | Path, *, limit: int | None = None) -> Dataset:
    """Read and validate a ``cnn_eval.json``-schema file; ``limit`` keeps its first records.

    Raises :class:`DatasetError` at once for a file that cannot serve: unreadable, not JSON,
    not a non-empty list of records, or a kept record with a missing or malformed field.
    """
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be a positive number of records, got {limit}")
    path = Path(path)
    if path.is_dir():
        raise DatasetError(f"{path} is a folder, not a data set file; name the cnn_eval.json file in it")
    if not path.is_file():
        raise DatasetError(f"{path}: data set file not found; check the path")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read the data set file ({exc})") from exc
    raw = _parse(path, data)
    records = tuple(_record(path, i, r) for i, r in enumerate(raw[:limit]))
    return Dataset(
        path=path,
        records=records,
        sha256=hashlib.sha256(data).hexdigest(),
        total_records=len(raw),
    )


def _parse(path: Path, data: bytes) -> list:
    try:
        raw = json.loads(data)  # bytes: json detects UTF-8/16/32 and a BOM itself
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not JSON text ({exc}); {_SCHEMA}") from exc
    except json.JSONDecodeError as exc:
        hint = ""
        if exc.msg == "Extra data" and _is_json_lines(data):
            hint = (
                " it looks like JSON Lines (one record per line): put the records in one "
                "JSON list [record, record, ...];"
            )
        raise DatasetError(
            f"{path}: not JSON ({exc.msg} at line {exc.lineno}, column {exc.colno});{hint} "
            f"{_SCHEMA}"
        ) from exc
    if isinstance(raw, dict):
        raise DatasetError(f"{path}: the top level is a JSON object, not a list of records; "
                           f"{_object_hint(raw)}")
    if not isinstance(raw, list):
        raise DatasetError(
            f"{path}: the top level is a JSON {_json_type(raw)}, not a list of records; {_SCHEMA}"
        )
    if not raw:
        raise DatasetError(f"{path}: the list of records is empty; give at least one record")
    return raw


def _is_json_lines(data: bytes) -> bool:
    try:
        first = data.lstrip().splitlines()[0]
        return isinstance(json.loads(first), dict)
    except (IndexError, ValueError):
        return False


def _object_hint(raw: dict) -> str:
    lists = [k for k, v in raw.items() if isinstance(v, list) and v and isinstance(v[0], dict)]
    if lists:
        named = ", ".join(f"'{k}' ({len(raw[k])} records)" for k in lists)
        return (f"the records seem to be the list under the key {named}: "
                "save that list alone as the file")
    if "input" in raw and "output" in raw:
        if isinstance(raw["input"], str):
            return "it looks like a single record: wrap it in a list [ ... ]"
        return ("it looks like a table stored column by column (pandas' default to_json): "
                "write it record by record (to_json(orient='records'))")
    return _SCHEMA


def _json_type(value: object) -> str:
    names = {dict: "object", list: "list", str: "string", bool: "boolean", type(None): "null",
             int: "number", float: "number"}
    return names.get(type(value), type(value).__name__)


def _record(path: Path, i: int, raw: object) -> Record:
    if not isinstance(raw, dict):
        raise DatasetError(
            f"{path}: record {i} is a JSON {_json_type(raw)}, not an object; {_SCHEMA}"
        )
    article, output = (_text(path, i, raw, name) for name in ("input", "output"))
    return Record(input=article, output=output, template=_template(path, i, raw),
                  tok_input=_tok_input(path, i, raw))


def _text(path: Path, i: int, raw: dict, name: str) -> str:
    meaning = _REQUIRED[name]
    if name not in raw:
        has = ", ".join(f"'{k}'" for k in list(raw)[:8]) or "no fields"
        renames = [f"'{old}' to '{new}'" for old, new in _RENAMES.items() if old in raw]
        hint = f"; rename {' and '.join(renames)}" if renames else ""
        raise DatasetError(
            f"{path}: record {i} lacks the field '{name}' ({meaning}; it has {has}): every "
            f"record needs 'input' and 'output'{hint}; is this a cnn_eval.json-schema file?"
        )
    value = raw[name]
    if not isinstance(value, str):
        raise DatasetError(
            f"{path}: record {i} field '{name}' ({meaning}) must be a string, "
            f"got a JSON {_json_type(value)}"
        )
    return value


def _template(path: Path, i: int, raw: dict) -> str:
    value = raw.get("instruction")
    if value is None:  # absent, or null as pandas writes a missing value
        return TEMPLATE
    field = "'instruction'"
    if isinstance(value, dict):
        if "llama" in value:
            field = "'instruction' key 'llama'"
            value = value["llama"]
        elif len(value) == 1:
            key = next(iter(value))
            field = f"'instruction' key '{key}'"
            value = value[key]
        else:
            keys = f"the keys {', '.join(repr(k) for k in value)}" if value else "no keys"
            raise DatasetError(
                f"{path}: record {i} field 'instruction' is an object with {keys} and no "
                "'llama': name the Llama prompt template 'llama', give the template as a "
                "string, or drop 'instruction' to use the MLCommons template"
            )
    if not isinstance(value, str):
        raise DatasetError(
            f"{path}: record {i} field {field} must be the prompt template, a string holding "
            f"'{{input}}' (or {{\"llama\": template}}), got a JSON {_json_type(value)}"
        )
    if field == "'instruction'" and _gptj_layout(value):
        raise DatasetError(
            f"{path}: record {i} field 'instruction' is {_shorten(value)}: the GPT-J layout of "
            "cnn_eval.json, where 'instruction' is an instruction for GPT-J's prompt, not a Llama "
            "prompt template: drop 'instruction' from the records (the MLCommons llama3.1-8b "
            "template then applies, as in the Llama layout), or use the Llama layout's file "
            f"(\"instruction\": {{\"llama\": template with '{{input}}'}})"
        )
    problem = _template_problem(value)
    if problem:
        raise DatasetError(f"{path}: record {i} field {field}: {problem}")
    return value


@functools.lru_cache(maxsize=64)
def _gptj_layout(value: str) -> bool:
    """A plain-string ``instruction`` of the GPT-J layout: a bare instruction (no placeholder
    at all, as in "Summarize the following news article:") or GPT-J's own prompt template,
    which places ``{instruction}``."""
    return "{" not in value or "{instruction}" in value


def _shorten(value: str, limit: int = 60) -> str:
    return json.dumps(value if len(value) <= limit else value[:limit] + "...")


@functools.lru_cache(maxsize=64)
def _template_problem(template: str) -> str | None:
    """Why ``template.format(input=...)`` would not place the article, or None."""
    mark = "\x00article\x00"
    try:
        filled = template.format(input=mark)
    except (KeyError, IndexError, ValueError, AttributeError, TypeError) as exc:
        return (f"the template is not a format string with '{{input}}' alone ({exc!r}); "
                "write literal braces as '{{' and '}}'")
    if mark not in filled:
        return "the template lacks '{input}': put '{input}' where the article goes"
    return None


def _tok_input(path: Path, i: int, raw: dict) -> tuple[int, ...] | None:
    value = raw.get("tok_input")
    if value is None:  # absent or null: the templated input is tokenized instead
        return None
    fix = ("fix it, or drop 'tok_input' to tokenize the templated 'input' with the model's "
           "tokenizer")
    if not isinstance(value, list) or not value:
        got = "an empty list" if value == [] else f"a JSON {_json_type(value)}"
        raise DatasetError(
            f"{path}: record {i} field 'tok_input' must be a non-empty list of token ids, "
            f"got {got}; {fix}"
        )
    # type() is int, not isinstance: JSON true/false must not pass as ids 1/0
    if not all(type(t) is int for t in value) or min(value) < 0:
        j, bad = next((j, t) for j, t in enumerate(value) if type(t) is not int or t < 0)
        raise DatasetError(
            f"{path}: record {i} field 'tok_input' item {j} is {json.dumps(bad)}, not a token id "
            f"(a non-negative integer); {fix}"
        )
    return tuple(value)
