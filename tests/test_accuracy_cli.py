"""python -m pytest_mlperf.accuracy: the reference's printout, a verdict, and exit codes."""

from __future__ import annotations

import ast
import json
import random
import shutil
import struct
import subprocess
import sys
from dataclasses import asdict

import pytest

pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

from pytest_mlperf.accuracy import choose_baseline, score_texts  # noqa: E402
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


def test_benchmark_targets_scale_gen_len_as_the_plugin_does(files, capsys, tmp_path):
    """12 samples against llama3.1-8b: the ROUGE means as they are, gen_len scaled to 12 of
    13,368 by the plugin's own policy (choose_baseline), and labelled as no MLPerf result."""
    report = tmp_path / "report.json"
    assert main(_args(files, "--benchmark", "llama3.1-8b", "--json", str(report))) == 1
    out = capsys.readouterr().out
    assert "accuracy against llama3.1-8b, gen_len scaled to 12 of 13,368 samples " in out
    assert "note: 12 of 13,368 samples: not an MLPerf accuracy result" in out
    plugin = choose_baseline(benchmark="llama3.1-8b", declared=None, ratio=None,
                             dataset_sha256="0" * 64, model_is_embedded=False,
                             sample_indices=range(N), dataset_total=N)
    judged = json.loads(report.read_text())
    assert judged["baseline"] == asdict(plugin.baseline)
    assert judged["baseline"]["gen_len"] == round(8167644 * N / 13368)
    assert (judged["official"], judged["note"]) == (False, plugin.note)
    # The ROUGE figures miss (synthetic text); the length, scaled, does not.
    assert {m["metric"] for m in judged["misses"]} <= {"rouge1", "rouge2", "rougeL", "rougeLsum"}


def test_baseline_with_samples_is_scaled(files, capsys):
    expected = files["expected"]
    at = f"rouge1={expected.rouge1},gen_len={expected.gen_len * 10},samples={N * 10}"
    assert main(_args(files, "--baseline", at)) == 0
    assert f"gen_len scaled to {N} of {N * 10} samples" in capsys.readouterr().out


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
    baseline = parse_baseline("rouge1=38.7792, gen_len=8167644,ratio=0.999,samples=13368")
    assert (baseline.rouge1, baseline.gen_len, baseline.ratio, baseline.samples) == (
        38.7792, 8167644, 0.999, 13368)


def test_module_runs(files):
    done = subprocess.run([sys.executable, "-m", "pytest_mlperf.accuracy", *_args(files)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "'gen_num': 12" in done.stdout


def _embedded_log(path, outputs: dict[int, list[int]]) -> None:
    """A log whose entries answer these records with these token ids, in this order."""
    path.write_text(json.dumps([
        {"seq_id": seq, "qsl_idx": qsl, "data": struct.pack(f"<{len(ids)}i", *ids).hex().upper(),
         "token_count": len(ids)}
        for seq, (qsl, ids) in enumerate(outputs.items())]))


@pytest.fixture(scope="module")
def embedded_files():
    from pytest_mlperf import embedded

    if not (embedded.MODEL_DIR.is_dir() and embedded.DATASET_PATH.is_file()):
        pytest.skip("the embedded model and sample set are not built")
    from transformers import AutoTokenizer

    from pytest_mlperf.data.dataset import load_dataset

    return (embedded, AutoTokenizer.from_pretrained(str(embedded.MODEL_DIR)),
            load_dataset(embedded.DATASET_PATH).references)


def test_embedded_tokenizer_and_dataset(embedded_files, tmp_path, capsys):
    """The references as predictions: ROUGE 100, and judged against the embedded model's own
    figures for those 20 records, whose summaries are shorter than the references."""
    embedded, tokenizer, references = embedded_files
    references = references[:20]
    log = tmp_path / "mlperf_log_accuracy.json"
    _embedded_log(log, {qsl: tokenizer.encode(reference, add_special_tokens=False)
                        for qsl, reference in enumerate(references)})
    expected = score_texts(tokenizer.batch_decode(
        [tokenizer.encode(r, add_special_tokens=False) for r in references],
        skip_special_tokens=True), references)
    assert main(["--accuracy-log", str(log), "--dataset", "embedded", "--tokenizer", "embedded",
                 "--workers", "1"]) == 1
    out = capsys.readouterr().out
    assert float(_printed(out)["rouge1"]) == expected.rouge1 == 100.0
    assert "accuracy against embedded model on the embedded set, 20 of 256 records (0-19) " in out
    bound = embedded.baseline_for(range(20)).gen_len * 1.1
    assert [line.split()[:2] for line in out.splitlines() if line.startswith("  ")] == [
        ["gen_len", str(expected.gen_len)]] and expected.gen_len > bound


def test_embedded_model_outputs_pass_their_own_records(embedded_files, tmp_path, capsys):
    """The embedded model's greedy outputs for 16 records, logged out of QSL order, checked
    against the embedded per-sample baseline with no --benchmark/--baseline; the data set is
    the embedded one by content (a copy under another name), the tokenizer a copy of the
    model folder."""
    import torch
    from transformers import AutoModelForCausalLM

    from pytest_mlperf.embedded import build

    embedded, tokenizer, _ = embedded_files
    torch.set_num_threads(min(2, torch.get_num_threads()))
    model = AutoModelForCausalLM.from_pretrained(embedded.MODEL_DIR).eval()
    records = json.loads(embedded.DATASET_PATH.read_text(encoding="utf-8"))
    chosen = sorted(random.Random(7).sample(range(len(records)), 16))
    eos = list(model.generation_config.eos_token_id)
    outputs, _, _ = build.generate(model, [records[i] for i in chosen], tokenizer.pad_token_id,
                                   eos)
    order = list(zip(chosen, outputs, strict=True))
    random.Random(8).shuffle(order)
    log = tmp_path / "mlperf_log_accuracy.json"
    _embedded_log(log, dict(order))
    dataset = tmp_path / "my_eval.json"
    shutil.copyfile(embedded.DATASET_PATH, dataset)
    model_copy = tmp_path / "model"
    shutil.copytree(embedded.MODEL_DIR, model_copy)
    report = tmp_path / "report.json"
    assert main(["--accuracy-log", str(log), "--dataset", str(dataset), "--tokenizer",
                 str(model_copy), "--workers", "1", "--json", str(report)]) == 0
    out = capsys.readouterr().out
    assert "accuracy against embedded model on the embedded set, 16 of 256 records" in out
    assert "PASS" in out
    judged = json.loads(report.read_text())
    assert judged["baseline"] == asdict(embedded.baseline_for([qsl for qsl, _ in order]))
    assert judged["official"] is False and judged["note"] is None


def test_embedded_set_with_another_tokenizer_checks_nothing(files, embedded_files, capsys):
    args = _args(files)
    args[3] = "embedded"
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "nothing checked: the embedded sample set's baseline is the embedded model's own" in out
    assert "accuracy against" not in out
