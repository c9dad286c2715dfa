"""python -m pytest_mlperf.accuracy: the reference's printout, a verdict, and exit codes."""

from __future__ import annotations

import ast
import json
import struct
import subprocess
import sys

import pytest

pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

from pytest_mlperf.accuracy import score_texts  # noqa: E402
from pytest_mlperf.accuracy.__main__ import main, parse_baseline  # noqa: E402
from pytest_mlperf.accuracy.synthetic import news_pairs  # noqa: E402

N = 12


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A data set, a saved tokenizer and the accuracy log of a SUT answering its summaries."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    root = tmp_path_factory.mktemp("cli")
    predictions, references = news_pairs(N, seed=5)
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(predictions + references, trainers.BpeTrainer(
        vocab_size=600, show_progress=False, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|eot_id|>",
                                        clean_up_tokenization_spaces=False)
    tokenizer.save_pretrained(root / "tokenizer")

    dataset = root / "cnn_eval.json"
    dataset.write_text(json.dumps([{"input": f"article {i}", "output": ref}
                                   for i, ref in enumerate(references)]))
    entries = []
    for seq, qsl in enumerate(reversed(range(N))):
        ids = tokenizer.encode(predictions[qsl])
        data = struct.pack(f"<{len(ids)}i", *ids).hex().upper()
        entries.append({"seq_id": seq, "qsl_idx": qsl, "data": data, "token_count": len(ids)})
    log = root / "mlperf_log_accuracy.json"
    log.write_text(json.dumps(entries))
    expected = score_texts([predictions[e["qsl_idx"]] for e in entries],
                           [references[e["qsl_idx"]] for e in entries])
    return {"log": log, "dataset": dataset, "tokenizer": root / "tokenizer",
            "expected": expected, "root": root}


def _args(files, *extra):
    return ["--accuracy-log", str(files["log"]), "--dataset", str(files["dataset"]),
            "--tokenizer", str(files["tokenizer"]), "--workers", "1", *extra]


def _printed(out: str) -> dict:
    lines = out.splitlines()
    assert lines[:3] == ["", "Results", ""]
    return ast.literal_eval(lines[3])


def test_prints_the_reference_dict(files, capsys):
    assert main(_args(files)) == 0
    printed = _printed(capsys.readouterr().out)
    expected = files["expected"]
    assert printed == {k: (f"{v}" if k.startswith("rouge") else v)
                       for k, v in expected.as_dict().items()}


def test_pass_and_fail_against_a_baseline(files, capsys):
    expected = files["expected"]
    at = f"rouge1={expected.rouge1},rougeL={expected.rougeL},gen_len={expected.gen_len}"
    assert main(_args(files, "--baseline", at)) == 0
    assert "PASS" in capsys.readouterr().out

    above = f"rouge1={expected.rouge1 * 1.05}"
    assert main(_args(files, "--baseline", above)) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "  rouge1 " in out


def test_benchmark_targets(files, capsys):
    # 12 samples are nowhere near llama3.1-8b's generated length: the window must say so.
    assert main(_args(files, "--benchmark", "llama3.1-8b")) == 1
    assert "gen_len" in capsys.readouterr().out


def test_json_report(files, tmp_path):
    out = tmp_path / "scores.json"
    expected = files["expected"]
    assert main(_args(files, "--baseline", f"rouge1={expected.rouge1 + 10}",
                      "--json", str(out))) == 1
    report = json.loads(out.read_text())
    assert report["scores"]["rouge1"] == expected.rouge1
    assert report["passed"] is False
    assert report["misses"][0]["metric"] == "rouge1"
    assert report["misses"][0]["message"].startswith("rouge1 ")


def test_bad_log_exits_2_naming_file_and_entry(files, tmp_path, capsys):
    entries = json.loads(files["log"].read_text())
    entries[3]["data"] = entries[3]["data"][:-1]
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(entries))
    args = _args(files)
    args[1] = str(broken)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert str(broken) in err and "entry 3" in err and "'data'" in err


def test_missing_dataset_exits_2(files, tmp_path, capsys):
    args = _args(files)
    args[3] = str(tmp_path / "absent.json")
    assert main(args) == 2
    assert "absent.json" in capsys.readouterr().err


def test_log_larger_than_the_dataset_exits_2(files, tmp_path, capsys):
    small = tmp_path / "small.json"
    small.write_text(json.dumps(json.loads(files["dataset"].read_text())[:3]))
    args = _args(files)
    args[3] = str(small)
    assert main(args) == 2
    assert "qsl_idx" in capsys.readouterr().err


@pytest.mark.parametrize(
    "text", ["rouge1", "rouge9=1", "rouge1=x", "ratio=0.9", "rouge1=1,ratio=2"])
def test_bad_baseline_values(text):
    import argparse

    with pytest.raises(argparse.ArgumentTypeError):
        parse_baseline(text)


def test_baseline_values():
    baseline = parse_baseline("rouge1=38.7792, gen_len=8167644,ratio=0.999")
    assert (baseline.rouge1, baseline.gen_len, baseline.ratio) == (38.7792, 8167644, 0.999)


def test_module_runs(files):
    done = subprocess.run([sys.executable, "-m", "pytest_mlperf.accuracy", *_args(files)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "'gen_num': 12" in done.stdout


def test_embedded_tokenizer_and_dataset(tmp_path, capsys):
    from pytest_mlperf import embedded

    if not (embedded.MODEL_DIR.is_dir() and embedded.DATASET_PATH.is_file()):
        pytest.skip("the embedded model and sample set are not built")
    from transformers import AutoTokenizer

    from pytest_mlperf.dataset import load_dataset

    tokenizer = AutoTokenizer.from_pretrained(str(embedded.MODEL_DIR))
    references = load_dataset(embedded.DATASET_PATH).references[:20]
    entries = []
    for qsl, reference in enumerate(references):
        ids = tokenizer.encode(reference, add_special_tokens=False)
        entries.append({"seq_id": qsl, "qsl_idx": qsl,
                        "data": struct.pack(f"<{len(ids)}i", *ids).hex().upper()})
    log = tmp_path / "mlperf_log_accuracy.json"
    log.write_text(json.dumps(entries))
    expected = score_texts(tokenizer.batch_decode(
        [tokenizer.encode(r, add_special_tokens=False) for r in references],
        skip_special_tokens=True), references)
    assert main(["--accuracy-log", str(log), "--dataset", "embedded", "--tokenizer", "embedded",
                 "--workers", "1"]) == 0
    assert float(_printed(capsys.readouterr().out)["rouge1"]) == expected.rouge1
