"""Reading mlperf_log_accuracy.json: the reference's dedup and order, and loud, precise errors."""

from __future__ import annotations

import json
import struct

import pytest

from pytest_mlperf.accuracy import AccuracyLogError, score_log
from pytest_mlperf.accuracy.log import decode_texts, read_accuracy_log


def _hex(ids, fmt="<i"):
    return b"".join(struct.pack(fmt, i) for i in ids).hex().upper()


def _write(tmp_path, entries, name="mlperf_log_accuracy.json"):
    path = tmp_path / name
    path.write_text(entries if isinstance(entries, str) else json.dumps(entries))
    return path


class WordTokenizer:
    """Decodes id i to word i; rejects ids it does not know, like a real vocabulary."""

    def __init__(self, words):
        self.words = words

    def batch_decode(self, batch, skip_special_tokens=False):
        out = []
        for ids in batch:
            for i in ids:
                if not 0 <= i < len(self.words):
                    raise OverflowError(f"id {i} out of range")
            out.append(" ".join(self.words[i] for i in ids))
        return out


def test_first_entry_per_qsl_idx_in_log_order(tmp_path):
    log = _write(tmp_path, [
        {"seq_id": 0, "qsl_idx": 2, "data": _hex([5, 6])},
        {"seq_id": 1, "qsl_idx": 0, "data": _hex([7])},
        {"seq_id": 2, "qsl_idx": 2, "data": _hex([9, 9, 9])},
        {"seq_id": 3, "qsl_idx": 1, "data": _hex([])},
    ])
    samples = read_accuracy_log(log, n_references=3)
    assert [(s.qsl_idx, s.token_ids, s.entry) for s in samples] == [
        (2, [5, 6], 0), (0, [7], 1), (1, [], 3)]


def test_repeated_entries_are_not_decoded(tmp_path):
    # The reference never decodes a repeat, so a broken repeat must not fail the run.
    log = _write(tmp_path, [
        {"qsl_idx": 0, "data": _hex([1])},
        {"qsl_idx": 0, "data": "XYZ"},
    ])
    assert read_accuracy_log(log, n_references=1)[0].token_ids == [1]


def test_int64_and_lower_case_hex(tmp_path):
    ids = [1, 128009, 2**40]
    log = _write(tmp_path, [{"qsl_idx": 0, "data": _hex(ids, "<q").lower()}])
    assert read_accuracy_log(log, n_references=1, dtype="int64")[0].token_ids == ids
    # The same bytes as int32: each id followed by its high half, as the reference reads them.
    as_int32 = read_accuracy_log(log, n_references=1, dtype="int32")[0].token_ids
    assert as_int32 == list(struct.unpack("<6i", bytes.fromhex(_hex(ids, "<q"))))


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("[{\"qsl_idx\": 0,", "not valid JSON"),
        ("{\"qsl_idx\": 0}", "not a list"),
        ([], "holds no entries"),
        ([[1, 2]], "entry 0: is a list, not an object"),
        ([{"data": "00000000"}], "entry 0, field 'qsl_idx': is missing"),
        ([{"qsl_idx": 0, "data": "00000000"}, {"data": "00"}], "entry 1, field 'qsl_idx'"),
        ([{"qsl_idx": "0", "data": "00000000"}], "field 'qsl_idx': is '0', not an integer"),
        ([{"qsl_idx": True, "data": "00000000"}], "not an integer"),
        ([{"qsl_idx": 3, "data": "00000000"}], "field 'qsl_idx': is 3, outside the 3 references"),
        ([{"qsl_idx": -1, "data": "00000000"}], "is -1, outside"),
        ([{"qsl_idx": 0}], "entry 0, field 'data': is missing"),
        ([{"qsl_idx": 0, "data": 12}], "field 'data': is a int, not a hex string"),
        ([{"qsl_idx": 0, "data": "0000000"}], "odd number of hex digits (7)"),
        ([{"qsl_idx": 0, "data": "00000G00"}], "not hexadecimal (holds 'G')"),
        ([{"qsl_idx": 0, "data": "000000"}], "3 bytes, not a whole number of int32 tokens"),
    ],
)
def test_malformed_logs_name_file_entry_and_field(tmp_path, content, needle):
    log = _write(tmp_path, content)
    with pytest.raises(AccuracyLogError) as caught:
        read_accuracy_log(log, n_references=3)
    message = str(caught.value)
    assert str(log) in message
    assert needle in message
    assert isinstance(caught.value, ValueError)


def test_int32_log_read_as_int64_is_refused(tmp_path):
    log = _write(tmp_path, [{"qsl_idx": 0, "data": _hex([1, 2, 3])}])
    with pytest.raises(AccuracyLogError, match="not a whole number of int64 tokens"):
        read_accuracy_log(log, n_references=1, dtype="int64")


def test_unknown_dtype():
    with pytest.raises(ValueError, match="dtype"):
        read_accuracy_log("whatever.json", n_references=1, dtype="float16")


def test_undecodable_ids_name_the_entry(tmp_path):
    log = _write(tmp_path, [
        {"qsl_idx": 0, "data": _hex([0, 1])},
        {"qsl_idx": 1, "data": _hex([1, 99])},
    ])
    samples = read_accuracy_log(log, n_references=2)
    with pytest.raises(AccuracyLogError, match=r"entry 1, field 'data'.*qsl_idx 1"):
        decode_texts(log, samples, WordTokenizer(["a", "b"]))


def test_score_log_end_to_end(tmp_path):
    words = ["the", "cat", "sat", "on", "mat", "dog", "ran."]
    log = _write(tmp_path, [
        {"qsl_idx": 1, "data": _hex([0, 5, 6])},
        {"qsl_idx": 0, "data": _hex([0, 1, 2, 3, 0, 4])},
        {"qsl_idx": 0, "data": _hex([5])},
    ])
    references = ["the cat sat on the mat", "a dog ran."]
    scores = score_log(log, references, WordTokenizer(words), workers=1)
    assert scores.gen_num == 2
    assert scores.gen_tok_len == 9
    # "the dog ran." against "a dog ran.": 2 of 3 unigrams each way; the other sample is exact
    assert scores.rouge1 == 83.3333
    assert scores.gen_len == len("the dog ran.") + len("the cat sat on the mat")


def test_missing_file_is_an_os_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_accuracy_log(tmp_path / "absent.json", n_references=1)
