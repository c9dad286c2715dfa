"""The ``cnn_eval.json`` schema: load, validate, tokenize when ``tok_input`` is absent.

A record is ``{"instruction": {"llama": TEMPLATE}, "input": article, "tok_input": [int],
"output": highlights}``. Errors name the file, the record index and the field.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

#: The MLCommons llama3.1-8b prompt template (no chat template is applied).
TEMPLATE = (
    "Summarize the following news article in 128 tokens. Please output the summary only, "
    "without any other text.\n\nArticle:\n{input}\n\nSummary:"
)


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
    path: Path
    records: tuple[Record, ...]

    def __len__(self) -> int:
        return len(self.records)

    @property
    def references(self) -> list[str]:
        """The target summaries, by QSL index."""
        return [r.output for r in self.records]

    def prompts(self, encode: Callable[[str], Sequence[int]] | None = None) -> list[list[int]]:
        """Prompt token ids by QSL index: ``tok_input`` where present, else ``encode`` of the
        templated article (the tokenizer must add BOS as Llama 3's does)."""
        out: list[list[int]] = []
        for i, r in enumerate(self.records):
            if r.tok_input is not None:
                out.append(list(r.tok_input))
            elif encode is None:
                raise DatasetError(
                    f"{self.path}: record {i} has no 'tok_input' and no tokenizer was given"
                )
            else:
                out.append(list(encode(r.template.format(input=r.input))))
        return out


def _field(path: Path, i: int, raw: dict, name: str, kind: type) -> object:
    if name not in raw:
        raise DatasetError(f"{path}: record {i} lacks the field '{name}'")
    value = raw[name]
    if not isinstance(value, kind):
        raise DatasetError(
            f"{path}: record {i} field '{name}' must be {kind.__name__}, "
            f"got {type(value).__name__}"
        )
    return value


def _record(path: Path, i: int, raw: object) -> Record:
    if not isinstance(raw, dict):
        raise DatasetError(f"{path}: record {i} must be an object, got {type(raw).__name__}")
    article = _field(path, i, raw, "input", str)
    output = _field(path, i, raw, "output", str)
    template = TEMPLATE
    if "instruction" in raw:
        instruction = _field(path, i, raw, "instruction", dict)
        template = instruction.get("llama", TEMPLATE)  # type: ignore[union-attr]
        if not isinstance(template, str) or "{input}" not in template:
            raise DatasetError(
                f"{path}: record {i} field 'instruction.llama' must be a template holding '{{input}}'"
            )
    tok_input = raw.get("tok_input")
    if tok_input is not None:
        if not isinstance(tok_input, list) or not tok_input or not all(
            isinstance(t, int) and not isinstance(t, bool) and t >= 0 for t in tok_input
        ):
            raise DatasetError(
                f"{path}: record {i} field 'tok_input' must be a non-empty list of token ids"
            )
        tok_input = tuple(tok_input)
    return Record(input=article, output=output, template=template, tok_input=tok_input)  # type: ignore[arg-type]


def load_dataset(path: str | Path, *, limit: int | None = None) -> Dataset:
    """Read and validate a ``cnn_eval.json``-schema file; ``limit`` keeps its first records."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: data set file not found")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(raw, list) or not raw:
        raise DatasetError(f"{path}: expected a non-empty JSON list of records")
    if limit is not None:
        raw = raw[:limit]
    return Dataset(path=path, records=tuple(_record(path, i, r) for i, r in enumerate(raw)))
