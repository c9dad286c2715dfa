"""The cnn_eval.json schema: both instruction layouts, errors that say what to change, the QSL."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from pytest_mlperf import embedded
from pytest_mlperf.data.dataset import TEMPLATE, DatasetError, build_qsl, load_dataset

CUSTOM = "Summarize:\n{input}\n\nSummary:"


def encode(text: str) -> list[int]:
    """A tokenizer double: one id per byte, after a BOS of 1."""
    return [1] + list(text.encode("utf-8"))


def write(path: Path, records: object) -> Path:
    path.write_text(json.dumps(records), encoding="utf-8")
    return path


def articles(n: int = 3, **extra: object) -> list[dict]:
    return [{"input": f"Article {i}. It rained.", "output": f"Summary {i}.", **extra}
            for i in range(n)]


# --- the layouts ---------------------------------------------------------------------------


def test_instruction_as_mapping(tmp_path):
    data = load_dataset(write(tmp_path / "d.json", articles(instruction={"llama": CUSTOM})))
    assert [r.template for r in data.records] == [CUSTOM] * 3
    assert data.prompts(encode)[1] == encode(CUSTOM.format(input="Article 1. It rained."))


def test_instruction_as_string_prompts_equal_the_mapping_layout(tmp_path):
    as_mapping = load_dataset(write(tmp_path / "m.json", articles(instruction={"llama": CUSTOM})))
    as_string = load_dataset(write(tmp_path / "s.json", articles(instruction=CUSTOM)))
    assert as_string.prompts(encode) == as_mapping.prompts(encode)
    # the template is the record's, not the MLCommons default
    assert as_string.prompts(encode) != load_dataset(
        write(tmp_path / "none.json", articles())).prompts(encode)


def test_mapping_with_llama_and_other_keys_uses_llama(tmp_path):
    instruction = {"mistral": "[INST] {input} [/INST]", "llama": CUSTOM}
    data = load_dataset(write(tmp_path / "d.json", articles(instruction=instruction)))
    assert data.records[0].template == CUSTOM


def test_mapping_without_llama_but_one_template_is_used(tmp_path):
    data = load_dataset(write(tmp_path / "d.json", articles(instruction={"llama3": CUSTOM})))
    assert data.records[0].template == CUSTOM


def test_records_without_instruction_use_the_mlcommons_template(tmp_path):
    data = load_dataset(write(tmp_path / "d.json", articles()))
    assert data.records[2].template == TEMPLATE
    assert data.prompts(encode)[2] == encode(TEMPLATE.format(input="Article 2. It rained."))
    assert data.references == ["Summary 0.", "Summary 1.", "Summary 2."]


def test_null_instruction_and_tok_input_count_as_absent(tmp_path):
    # pandas writes a missing value as null
    data = load_dataset(write(tmp_path / "d.json", articles(instruction=None, tok_input=None)))
    assert data.records[0].template == TEMPLATE and data.needs_tokenizer


def test_tok_input_is_used_as_is(tmp_path):
    records = articles(instruction=CUSTOM)
    for i, r in enumerate(records):
        r["tok_input"] = [1, 100 + i, 7]
    data = load_dataset(write(tmp_path / "d.json", records))
    assert not data.needs_tokenizer
    assert data.prompts() == [[1, 100, 7], [1, 101, 7], [1, 102, 7]]


def test_embedded_set_reads_as_the_mapping_layout():
    data = load_dataset(embedded.DATASET_PATH)
    raw = json.loads(embedded.DATASET_PATH.read_text(encoding="utf-8"))
    assert len(data) == data.total_records == len(raw)
    assert isinstance(raw[0]["instruction"], dict)
    assert [r.template for r in data.records] == [r["instruction"]["llama"] for r in raw]
    assert data.prompts() == [r["tok_input"] for r in raw]
    assert data.references == [r["output"] for r in raw]


def test_embedded_set_in_the_string_layout_tokenizes_to_its_tok_input(tmp_path):
    """Rewritten with instruction as a string and no tok_input, the embedded set's prompts,
    tokenized by the embedded tokenizer, are the token ids it ships."""
    transformers = pytest.importorskip("transformers")
    tokenizer = transformers.AutoTokenizer.from_pretrained(embedded.MODEL_DIR)
    raw = json.loads(embedded.DATASET_PATH.read_text(encoding="utf-8"))[:32]
    shipped = [r["tok_input"] for r in raw]
    rewritten = [{"instruction": r["instruction"]["llama"], "input": r["input"],
                  "output": r["output"]} for r in raw]
    data = load_dataset(write(tmp_path / "string_layout.json", rewritten))
    assert data.needs_tokenizer
    assert data.prompts(tokenizer.encode) == shipped


# --- identity and limit --------------------------------------------------------------------


@pytest.mark.parametrize("path", [embedded.DATASET_PATH, None], ids=["embedded", "tmp"])
def test_sha256_is_the_files_digest(tmp_path, path):
    if path is None:
        path = tmp_path / "d.json"
        path.write_bytes(b'\xef\xbb\xbf[{"input": "caf\xc3\xa9", "output": "x"}]\n')  # BOM
    assert load_dataset(path).sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_sha256_tells_files_apart_by_content_not_name(tmp_path):
    a = load_dataset(write(tmp_path / "cnn_eval.json", articles(3)))
    b = load_dataset(write(tmp_path / "renamed.json", articles(3)))
    c = load_dataset(write(tmp_path / "other.json", articles(4)))
    assert a.sha256 == b.sha256 != c.sha256


def test_limit_keeps_the_first_records_and_the_total(tmp_path):
    data = load_dataset(write(tmp_path / "d.json", articles(5)), limit=2)
    assert len(data) == 2 and data.total_records == 5
    assert data.references == ["Summary 0.", "Summary 1."]
    assert load_dataset(tmp_path / "d.json", limit=50).total_records == 5


def test_limit_validates_only_the_kept_records(tmp_path):
    records = articles(3)
    del records[2]["output"]
    assert len(load_dataset(write(tmp_path / "d.json", records), limit=2)) == 2
    with pytest.raises(DatasetError, match="record 2 lacks the field 'output'"):
        load_dataset(tmp_path / "d.json")


# --- the QSL -------------------------------------------------------------------------------


@pytest.mark.parametrize(("performance_samples", "expected"),
                         [(None, 5), (0, 5), (2, 2), (5, 5), (9, 5)])
def test_build_qsl_counts(tmp_path, performance_samples, expected):
    data = load_dataset(write(tmp_path / "d.json", articles(5)))
    qsl = build_qsl(data, performance_samples=performance_samples, encode=encode)
    assert qsl.total_count == len(qsl.prompts) == 5
    assert qsl.performance_count == expected
    assert list(qsl.prompts) == data.prompts(encode)


def test_build_qsl_counts_the_limited_set(tmp_path):
    data = load_dataset(write(tmp_path / "d.json", articles(5)), limit=3)
    assert build_qsl(data, encode=encode).total_count == 3


def test_build_qsl_needs_encode_only_without_tok_input(tmp_path):
    records = articles(2, tok_input=[1, 2, 3])
    assert build_qsl(load_dataset(write(tmp_path / "full.json", records))).prompts == [
        [1, 2, 3], [1, 2, 3]]
    del records[1]["tok_input"]
    path = write(tmp_path / "partial.json", records)
    with pytest.raises(DatasetError) as info:
        build_qsl(load_dataset(path))
    message = str(info.value)
    assert str(path) in message and "record 1" in message and "'tok_input'" in message
    assert "pass encode=" in message


def test_build_qsl_rejects_a_negative_count(tmp_path):
    with pytest.raises(ValueError, match="performance_samples"):
        build_qsl(load_dataset(write(tmp_path / "d.json", articles(2))), performance_samples=-1,
                  encode=encode)


# --- errors: each names the file, the record and the field, and says what to change ---------


def _bad(records: list, index: int, **change: object) -> list:
    records[index] = {**records[index], **change}
    return records


def _without(records: list, index: int, field: str) -> list:
    del records[index][field]
    return records


RECORD_ERRORS = {
    "output missing": (
        _without(articles(6), 5, "output"), 5, "output",
        "every record needs 'input' and 'output'; is this a cnn_eval.json-schema file"),
    "raw CNN/DailyMail names": (
        [{"article": "a", "highlights": "h"}], 0, "input",
        "rename 'article' to 'input' and 'highlights' to 'output'"),
    "input not a string": (
        _bad(articles(), 1, input=["a", "b"]), 1, "input", "must be a string"),
    "record not an object": (
        ["just text"], 0, None, 'list of records {"input": article'),
    "instruction as a number": (
        _bad(articles(), 2, instruction=3), 2, "instruction", "must be the prompt template"),
    "instruction with several keys, no llama": (
        _bad(articles(), 1, instruction={"mistral": CUSTOM, "gemma": CUSTOM}), 1, "instruction",
        "the keys 'mistral', 'gemma' and no 'llama': name the Llama prompt template 'llama'"),
    "instruction string without {input}": (
        _bad(articles(), 0, instruction="Summarize {{input}}"), 0, "instruction",
        "put '{input}' where the article goes"),
    "instruction.llama without {input}": (
        _bad(articles(), 1, instruction={"llama": "Summarize {{input}}"}), 1, "instruction",
        "put '{input}' where the article goes"),
    "instruction with another placeholder": (
        _bad(articles(), 0, instruction="{system} {input}"), 0, "instruction",
        "write literal braces as '{{' and '}}'"),
    "instruction with an empty mapping": (
        _bad(articles(), 0, instruction={}), 0, "instruction", "drop 'instruction'"),
    "tok_input a string": (
        _bad(articles(), 1, tok_input="1 2 3"), 1, "tok_input", "drop 'tok_input'"),
    "tok_input empty": (
        _bad(articles(), 0, tok_input=[]), 0, "tok_input", "drop 'tok_input'"),
    "tok_input negative": (
        _bad(articles(), 2, tok_input=[1, 5, -3]), 2, "tok_input", "item 2 is -3"),
    "tok_input boolean": (
        _bad(articles(), 0, tok_input=[1, True]), 0, "tok_input", "item 1 is true"),
    "tok_input float": (
        _bad(articles(), 0, tok_input=[1, 2.0]), 0, "tok_input", "item 1 is 2.0"),
}


@pytest.mark.parametrize(("records", "index", "field", "fix"), RECORD_ERRORS.values(),
                         ids=RECORD_ERRORS.keys())
def test_record_errors_name_file_record_field_and_fix(tmp_path, records, index, field, fix):
    path = write(tmp_path / "cnn_eval.json", records)
    with pytest.raises(DatasetError) as info:
        load_dataset(path)
    message = str(info.value)
    assert message.startswith(f"{path}: record {index} ")
    if field is not None:
        assert f"'{field}'" in message
    assert fix in message
    assert "\n" not in message


FILE_ERRORS = {
    "object with a list of records": (
        json.dumps({"version": 1, "data": articles(4)}),
        "top level is a JSON object, not a list of records; the records seem to be the list "
        "under the key 'data' (4 records): save that list alone"),
    "one record, not a list": (
        json.dumps(articles(1)[0]), "a single record: wrap it in a list"),
    "pandas column layout": (
        json.dumps({"input": {"0": "a"}, "output": {"0": "b"}}), "to_json(orient='records')"),
    "other object": (json.dumps({"a": 1}), "top level is a JSON object"),
    "empty list": ("[]", "the list of records is empty; give at least one record"),
    "a string": ('"cnn_eval"', "top level is a JSON string, not a list of records"),
    "not JSON": ("input,output\na,b\n", "not JSON (Expecting value at line 1, column 1)"),
    "JSON Lines": ("\n".join(json.dumps(r) for r in articles(2)),
                   "JSON Lines (one record per line): put the records in one JSON list"),
    "truncated": (json.dumps(articles(2))[:-5], "not JSON"),
}


@pytest.mark.parametrize(("text", "fix"), FILE_ERRORS.values(), ids=FILE_ERRORS.keys())
def test_file_errors_name_the_file_and_the_fix(tmp_path, text, fix):
    path = tmp_path / "cnn_eval.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DatasetError) as info:
        load_dataset(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    assert fix in message


def test_not_utf8_and_missing_file(tmp_path):
    path = tmp_path / "latin1.json"
    path.write_bytes('[{"input": "caf\xe9", "output": "x"}]'.encode("latin-1"))
    with pytest.raises(DatasetError, match=re.escape(f"{path}: not JSON text")):
        load_dataset(path)
    with pytest.raises(DatasetError, match=re.escape(f"{tmp_path / 'nowhere.json'}: data set "
                                                     "file not found; check the path")):
        load_dataset(tmp_path / "nowhere.json")


def test_errors_come_from_load_not_later(tmp_path):
    """A bad record far down fails loading, before any prompt is built."""
    path = write(tmp_path / "d.json", _bad(articles(40), 37, instruction="no placeholder"))
    with pytest.raises(DatasetError, match="record 37 field 'instruction'"):
        load_dataset(path)


def test_limit_must_be_positive(tmp_path):
    with pytest.raises(ValueError, match="limit"):
        load_dataset(write(tmp_path / "d.json", articles()), limit=0)


# --- errors in the order of their cause ------------------------------------------------------

#: GPT-J's cnn_eval.json: the instruction GPT-J's prompt wraps, not a template for the article
GPTJ_INSTRUCTION = "Summarize the following news article:"
GPTJ_PROMPT = ("Below is an instruction that describes a task, paired with an input that provides "
               "further context. Write a response that appropriately completes the request.\n\n"
               "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:")

GPTJ_LAYOUTS = {
    "GPT-J file (bare instruction)": (GPTJ_INSTRUCTION, '"Summarize the following news article:"'),
    "GPT-J's prompt as instruction": (GPTJ_PROMPT, '"Below is an instruction that describes a task, paired with a..."'),
    "another bare instruction": ("Summarise this.", '"Summarise this."'),
}


@pytest.mark.parametrize(("instruction", "shown"), GPTJ_LAYOUTS.values(), ids=GPTJ_LAYOUTS.keys())
def test_gptj_layout_says_drop_instruction_not_edit_a_template(tmp_path, instruction, shown):
    records = articles(4, instruction=instruction, tok_input=[1, 50000, 50300])
    path = write(tmp_path / "cnn_eval.json", records)
    with pytest.raises(DatasetError) as info:
        load_dataset(path)
    message = str(info.value)
    assert message.startswith(f"{path}: record 0 field 'instruction' is {shown}: the GPT-J layout of cnn_eval.json")
    assert "drop 'instruction' from the records" in message and "use the Llama layout" in message
    # the wrong causes are not named
    assert "put '{input}'" not in message and "literal braces" not in message


def test_templates_of_the_llama_layout_are_not_taken_for_gptj(tmp_path):
    """A string template with '{input}', or a llama key without it, is a template to edit."""
    assert load_dataset(write(tmp_path / "a.json", articles(instruction=CUSTOM))).records[0].template == CUSTOM
    with pytest.raises(DatasetError, match="put '{input}' where the article goes"):
        load_dataset(write(tmp_path / "b.json", articles(instruction={"llama": GPTJ_INSTRUCTION})))


#: (prompts, vocabulary, context) -> the start of the message, or None
PROMPT_CASES = {
    "fits": ([[1, 2, 3], [1, 4]], 10, 8, None),
    "ids outside the vocabulary, all short": (
        [[1, 2], [1, 12, 3]], 10, 8,
        "token ids outside the model's vocabulary of 10 ids (config.json): record 1 field 'tok_input' item 1 = 12; "
        "the records were tokenized for another model: drop 'tok_input'"),
    "too long and ids outside: the vocabulary first": (
        [[1] * 9, [1, 2, 30] + [1] * 7], 10, 8,
        "token ids outside the model's vocabulary of 10 ids (config.json): record 1 field 'tok_input' item 2 = 30; "
        "the records were tokenized for another model (2 prompt(s) are also longer than the model's context of 8 "
        "positions, as tokenized now): drop 'tok_input'"),
    "too long only": (
        [[1] * 9, [1, 2]], 10, 8,
        "1 prompt(s) longer than the model's context of 8 positions (config.json): record 0 (9 tokens)"),
    "no vocabulary known": ([[1, 99] * 5], None, 8, "1 prompt(s) longer than the model's context of 8"),
    "no context known": ([[1, 99] * 5], 50, None, "token ids outside the model's vocabulary of 50 ids"),
    "the last id of the vocabulary fits": ([[0, 9]], 10, 2, None),
}


@pytest.mark.parametrize(("prompts", "vocab", "context", "expected"), PROMPT_CASES.values(), ids=PROMPT_CASES.keys())
def test_prompt_problems_in_the_order_of_their_cause(tmp_path, prompts, vocab, context, expected):
    from pytest_mlperf.run.preflight import prompt_problem

    path = tmp_path / "data.json"
    problem = prompt_problem(prompts, path, vocab=vocab, context=context, where="config.json")
    if expected is None:
        assert problem is None
    else:
        assert problem is not None and problem.startswith(f"{path}: {expected}"), problem
