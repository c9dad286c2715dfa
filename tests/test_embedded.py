"""The embedded default: artifacts load offline, match their schema and really summarize."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from pytest_mlperf import embedded
from pytest_mlperf.accuracy import Baseline, check, score_log, score_texts
from pytest_mlperf.accuracy.recipe import score_chunk
from pytest_mlperf.embedded import build, news

SUBSET = 64

TEMPLATE = (
    "Summarize the following news article in 128 tokens. Please output the summary only, "
    "without any other text.\n\nArticle:\n{input}\n\nSummary:"
)


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="module")
def records():
    return json.loads(embedded.DATASET_PATH.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(embedded.MODEL_DIR, local_files_only=True)


@pytest.fixture(scope="module")
def model():
    import torch
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(min(2, torch.get_num_threads()))
    return AutoModelForCausalLM.from_pretrained(embedded.MODEL_DIR, local_files_only=True).eval()


def test_import_is_light():
    code = (
        "import sys, pytest_mlperf.embedded as e; "
        "assert e.MODEL_DIR.is_dir() and e.DATASET_PATH.is_file(); "
        "assert e.is_embedded_dataset(e.DATASET_SHA256) and e.is_embedded_model(e.MODEL_DIR); "
        "assert e.baseline()['gen_num'] == 256; "
        "heavy = {'torch', 'transformers', 'tokenizers', 'numpy'} & set(sys.modules); "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_model_is_a_small_llama():
    config = json.loads((embedded.MODEL_DIR / "config.json").read_text())
    assert config["model_type"] == "llama"
    assert config["architectures"] == ["LlamaForCausalLM"]
    assert config["head_dim"] == 64
    assert config["hidden_size"] // config["num_attention_heads"] == 64
    assert config["num_key_value_heads"] < config["num_attention_heads"]
    assert config["max_position_embeddings"] >= 1024
    weights = embedded.MODEL_DIR / "model.safetensors"
    assert weights.stat().st_size <= 10_000_000


def test_eos_ids_are_listed(tokenizer):
    eos = [tokenizer.convert_tokens_to_ids(t) for t in ("<|end_of_text|>", "<|eot_id|>")]
    generation = json.loads((embedded.MODEL_DIR / "generation_config.json").read_text())
    config = json.loads((embedded.MODEL_DIR / "config.json").read_text())
    assert generation["eos_token_id"] == eos
    assert config["eos_token_id"] == eos
    assert tokenizer.eos_token_id in eos
    assert tokenizer.pad_token_id not in eos


def test_tokenizer_is_llama3_like(tokenizer):
    text = ("Storm Agnes hit the Gulf coast.\nWinds of 90 mph,  \u00a3 and \u20ac signs "
            "\u2014 all kept.")
    ids = tokenizer.encode(text)
    assert ids[0] == tokenizer.bos_token_id
    assert tokenizer.convert_ids_to_tokens(ids[0]) == "<|begin_of_text|>"
    assert tokenizer.decode(ids, skip_special_tokens=True) == text
    assert tokenizer.batch_decode([ids + [tokenizer.eos_token_id]],
                                  skip_special_tokens=True) == [text]
    # The special tokens sit at the end of the vocabulary, as Llama 3's do.
    assert min(tokenizer.all_special_ids) >= len(tokenizer) - len(build.SPECIAL_TOKENS)


def test_sample_set_schema(records, tokenizer):
    assert len(records) == build.SAMPLE_SIZE
    for record in records:
        assert list(record) == ["instruction", "input", "tok_input", "output"]
        assert record["instruction"] == {"llama": TEMPLATE}
        assert record["tok_input"] == tokenizer.encode(TEMPLATE.format(input=record["input"]))
        assert 2 < record["output"].count("\n") + 1 <= 4
    lengths = [len(r["tok_input"]) for r in records]
    assert 150 <= min(lengths) and max(lengths) <= 600


def test_sample_set_is_the_held_out_articles(records):
    for i in (0, 1, 100, build.SAMPLE_SIZE - 1):
        article = news.generate(build.SAMPLE_SEED + i)
        assert (records[i]["input"], records[i]["output"]) == (article.text, article.highlights)
    assert build.TRAIN_SEED >= build.SAMPLE_SEED + build.SAMPLE_SIZE


def test_generator_is_deterministic_and_varied():
    assert news.generate(42) == news.generate(42)
    assert news.generate(42) != news.generate(43)
    batch = list(news.articles(500, 60))
    assert {a.category for a in batch} == set(news.CATEGORIES)
    words = [len(a.text.split()) for a in batch]
    assert 150 <= min(words) and max(words) <= 380


def test_baseline_is_recorded():
    scores = embedded.baseline()
    assert list(scores) == ["rouge1", "rouge2", "rougeL", "rougeLsum", "gen_len", "gen_num",
                            "gen_tok_len"]
    assert scores["gen_num"] == build.SAMPLE_SIZE
    assert scores["rouge1"] >= 25
    assert scores["rouge1"] > scores["rouge2"] > 0
    assert scores["gen_len"] > 0
    assert embedded.baseline() is not embedded.baseline()


def test_per_sample_values_reduce_to_the_summary():
    recorded = json.loads(embedded.BASELINE_PATH.read_text(encoding="utf-8"))
    per_sample = recorded["per_sample"]
    for key in ("rouge1", "rouge2", "rougeL", "rougeLsum", "gen_len", "gen_tok_len"):
        assert len(per_sample[key]) == build.SAMPLE_SIZE, key
    assert all(isinstance(v, int) for v in per_sample["gen_len"] + per_sample["gen_tok_len"])
    summary = embedded.baseline()
    expected = embedded.expected_for(range(build.SAMPLE_SIZE))
    assert expected.as_dict() == {**summary, "tokens_per_sample": expected.tokens_per_sample}
    whole = embedded.baseline_for(range(build.SAMPLE_SIZE))
    assert whole.name == "embedded model on the embedded set" and whole.samples == 256
    assert (whole.rouge1, whole.gen_len, whole.tokens_per_sample) == (
        summary["rouge1"], summary["gen_len"], None)


def test_baseline_is_for_these_files():
    per_sample = json.loads(embedded.BASELINE_PATH.read_text(encoding="utf-8"))["per_sample"]
    assert per_sample["dataset_sha256"] == embedded.DATASET_SHA256
    assert per_sample["model_sha256"] == embedded.sha256_file(
        embedded.MODEL_DIR / "model.safetensors")


def test_baseline_for_names_the_records_and_refuses_bad_ones():
    assert embedded.baseline_for([5, 0, 1, 2, 9]).name == (
        "embedded model on the embedded set, 5 of 256 records (0-2, 5, 9)")
    assert embedded.baseline_for(range(0, 20, 2)).name.endswith("(0, 2, 4, 6, ...)")
    for bad, message in (([], "no samples"), ([1, 1], "repeated"), ([256], "outside")):
        with pytest.raises(ValueError, match=message):
            embedded.baseline_for(bad)


def test_dataset_identity_is_by_content(tmp_path):
    copy = tmp_path / "cnn_eval.json"
    shutil.copyfile(embedded.DATASET_PATH, copy)
    assert embedded.is_embedded_dataset(embedded.sha256_file(copy))
    assert embedded.is_embedded_dataset(embedded.DATASET_SHA256.upper())
    records = json.loads(copy.read_text(encoding="utf-8"))
    copy.write_text(json.dumps(records), encoding="utf-8")  # same records, other bytes
    assert not embedded.is_embedded_dataset(embedded.sha256_file(copy))


def test_model_identity(tmp_path, monkeypatch):
    assert embedded.is_embedded_model(embedded.MODEL_DIR)
    assert embedded.is_embedded_model(str(embedded.MODEL_DIR / ".." / "model"))
    monkeypatch.chdir(embedded.MODEL_DIR.parent)
    assert embedded.is_embedded_model("model")
    copy = tmp_path / "copy"
    shutil.copytree(embedded.MODEL_DIR, copy)
    assert embedded.is_embedded_model(copy)
    assert embedded.is_embedded_model(copy / "model.safetensors")
    weights = bytearray((copy / "model.safetensors").read_bytes())
    weights[-1] ^= 1  # same size, one bit of one weight
    (copy / "model.safetensors").write_bytes(bytes(weights))
    assert not embedded.is_embedded_model(copy)
    for other in (None, "meta-llama/Llama-3.1-8B-Instruct", tmp_path / "absent", tmp_path):
        assert not embedded.is_embedded_model(other)


def test_greedy_generation_summarizes(model, tokenizer, records):
    """A working model scores well on a few samples; the same output cut in half (a backend
    that stops early) falls far below it."""
    sample = records[:8]
    eos = [tokenizer.convert_tokens_to_ids(t) for t in ("<|end_of_text|>", "<|eot_id|>")]
    outputs, _, _ = build.generate(model, sample, tokenizer.pad_token_id, eos, batch_size=8)
    predictions = tokenizer.batch_decode(outputs, skip_special_tokens=True)
    references = [r["output"] for r in sample]
    full = build.score(predictions, references)
    assert full["rouge1"] > 30, predictions
    halves = tokenizer.batch_decode([o[: len(o) // 2] for o in outputs], skip_special_tokens=True)
    assert build.score(halves, references)["rouge1"] < 0.9 * full["rouge1"]


@pytest.fixture(scope="module")
def subset_outputs(model, tokenizer, records):
    """The embedded model's greedy outputs for the first SUBSET records, generated on their
    own (other batches than the baseline's 256), and each one's generated token count."""
    eos = [tokenizer.convert_tokens_to_ids(t) for t in ("<|end_of_text|>", "<|eot_id|>")]
    outputs, produced, _ = build.generate(model, records[:SUBSET], tokenizer.pad_token_id, eos)
    return outputs, produced


def test_subset_is_judged_against_its_own_records(subset_outputs, tokenizer, records):
    """The issue: 64 records of the embedded set failed 0.99 x the 256-record mean. They pass
    against the same model's figures for those 64 records, and the old bound still fails."""
    outputs, _ = subset_outputs
    predictions = tokenizer.batch_decode(outputs, skip_special_tokens=True)
    scores = score_texts(predictions, [r["output"] for r in records[:SUBSET]])
    assert check(scores, embedded.baseline_for(range(SUBSET))) == []
    full = embedded.baseline()
    full_mean = Baseline("full-set mean", full["rouge1"], full["rouge2"], full["rougeL"],
                         full["rougeLsum"], gen_len=full["gen_len"], samples=full["gen_num"])
    missed = {m.metric for m in check(scores, full_mean.scaled_to(SUBSET))}
    assert "rouge1" in missed, scores  # measured: rouge1 57.6377 < 59.5768


def _run_loadgen(outdir, responses, batch_size=32):
    """A real AccuracyOnly Offline run; the SUT answers in batches of similar prompt length,
    as the transformers backend does, so the log is not in QSL order."""
    import numpy as np

    lg = pytest.importorskip("mlperf_loadgen")
    outdir.mkdir(parents=True, exist_ok=True)
    settings = lg.TestSettings()
    settings.scenario = lg.TestScenario.Offline
    settings.mode = lg.TestMode.AccuracyOnly
    settings.offline_expected_qps = 1000
    settings.use_token_latencies = True
    arrays = [np.asarray(r, dtype=np.int32) for r in responses]

    def issue(query_samples):
        waiting = sorted(query_samples, key=lambda s: (len(arrays[s.index]), s.index))
        for b in range(0, len(waiting), batch_size):
            answers = []
            for sample in waiting[b:b + batch_size]:
                data = arrays[sample.index]
                address, _ = data.__array_interface__["data"]
                answers.append(lg.QuerySampleResponse(sample.id, address, data.nbytes, len(data)))
            lg.QuerySamplesComplete(answers)

    sut = lg.ConstructSUT(issue, lambda: None)
    qsl = lg.ConstructQSL(len(arrays), len(arrays), lambda s: None, lambda s: None)
    log_settings = lg.LogSettings()
    log_settings.log_output.outdir = str(outdir)
    log_settings.log_output.copy_summary_to_stdout = False
    try:
        lg.StartTestWithLogSettings(sut, qsl, settings, log_settings,
                                    str(outdir / "no-audit.config"))
    finally:
        lg.DestroyQSL(qsl)
        lg.DestroySUT(sut)
    return outdir / "mlperf_log_accuracy.json"


def test_loadgen_log_of_the_subset_scores_the_expected_figures(subset_outputs, tokenizer,
                                                               records, tmp_path):
    """Through the real loadgen, the log of the subset is scored (in log order) to the very
    figures :func:`embedded.expected_for` gives in that order, and, measured here, to the
    QSL-order figures of :func:`embedded.baseline_for`: the order changes no 4th decimal."""
    outputs, produced = subset_outputs
    eot = tokenizer.convert_tokens_to_ids("<|eot_id|>")
    # The EOS the model generated is part of the answer (loadgen's token count includes it).
    responses = [out + [eot] * (count - len(out)) for out, count in zip(outputs, produced,
                                                                          strict=True)]
    log = _run_loadgen(tmp_path / "accuracy", responses)
    order = [entry["qsl_idx"] for entry in json.loads(log.read_text())]
    assert sorted(order) == list(range(SUBSET)) and order != sorted(order)
    references = [r["output"] for r in records]
    scores = score_log(log, references, tokenizer, workers=1)

    predictions = tokenizer.batch_decode(outputs, skip_special_tokens=True)
    rows = score_chunk(list(zip(predictions, references[:SUBSET], strict=True)))
    per_sample = json.loads(embedded.BASELINE_PATH.read_text(encoding="utf-8"))["per_sample"]
    recorded = [(*(per_sample[k][i] for k in ("rouge1", "rouge2", "rougeL", "rougeLsum")),
                 per_sample["gen_len"][i]) for i in range(SUBSET)]
    if rows != recorded or produced != per_sample["gen_tok_len"][:SUBSET]:
        pytest.skip("this machine's greedy outputs differ from the recorded baseline's (another "
                    "CPU or torch): re-measure with python -m pytest_mlperf.embedded.build "
                    "--baseline-only")
    assert scores == embedded.expected_for(order)
    qsl_order = embedded.baseline_for(range(SUBSET))
    assert (scores.rouge1, scores.rouge2, scores.rougeL, scores.rougeLsum, scores.gen_len) == (
        qsl_order.rouge1, qsl_order.rouge2, qsl_order.rougeL, qsl_order.rougeLsum,
        qsl_order.gen_len)
