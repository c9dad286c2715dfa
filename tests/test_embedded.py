"""The embedded default: artifacts load offline, match their schema and really summarize."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from pytest_mlperf import embedded
from pytest_mlperf.embedded import build, news

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
        "heavy = {'torch', 'transformers', 'tokenizers', 'numpy'} & set(sys.modules); "
        "assert not heavy, heavy; assert e.MODEL_DIR.is_dir() and e.DATASET_PATH.is_file()"
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
    text = "Storm Agnes hit the Gulf coast.\nWinds of 90 mph,  \u00a3 and \u20ac signs \u2014 all kept."
    ids = tokenizer.encode(text)
    assert ids[0] == tokenizer.bos_token_id
    assert tokenizer.convert_ids_to_tokens(ids[0]) == "<|begin_of_text|>"
    assert tokenizer.decode(ids, skip_special_tokens=True) == text
    assert tokenizer.batch_decode([ids + [tokenizer.eos_token_id]], skip_special_tokens=True) == [text]
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
    assert scores["gen_num"] == build.SAMPLE_SIZE
    assert scores["rouge1"] >= 25
    assert scores["rouge1"] > scores["rouge2"] > 0
    assert scores["gen_len"] > 0
    assert embedded.baseline() is not embedded.baseline()


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
