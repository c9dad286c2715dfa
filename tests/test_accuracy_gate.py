"""The accuracy gate fails the SUTs it must fail, and passes the one it must pass.

Each SUT here answers through the real loadgen (``mlperf_loadgen``, AccuracyOnly, Offline),
which writes ``mlperf_log_accuracy.json`` as in a submission (upper-case hex, ``token_count``).
The tokenizer is a real byte-level BPE tokenizer (Llama 3's kind: id 0 is "!"), trained here on
the test's own texts, wrapped in ``transformers.PreTrainedTokenizerFast``.

The baseline is what the correct SUT's outputs score as *texts* (``score_texts``, no log,
no loadgen); nothing asserts a figure written down by hand.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

np = pytest.importorskip("numpy")
lg = pytest.importorskip("mlperf_loadgen")
pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

from pytest_mlperf.accuracy import Baseline, check, score_log, score_texts  # noqa: E402
from pytest_mlperf.accuracy.synthetic import news_pairs  # noqa: E402

SAMPLES = 64
#: like the reference SUT's max_tokens: outputs end where the budget ends, mid-sentence
MAX_TOKENS = 16
TEMPLATE = (
    "Summarize the following news article in 128 tokens. Please output the summary only, "
    "without any other text.\n\nArticle:\n{input}\n\nSummary:"
)


def _paraphrase(rng: random.Random, text: str, vocabulary: list[str]) -> str:
    return " ".join(rng.choice(vocabulary) if rng.random() < 0.2 else word
                    for word in text.split())


@pytest.fixture(scope="module")
def corpus():
    """(model summaries, reference highlights, articles) of ``SAMPLES`` news-like items."""
    rng = random.Random(99)
    _, references = news_pairs(SAMPLES, seed=99)
    fillers, _ = news_pairs(SAMPLES * 6, seed=100)
    vocabulary = " ".join(fillers).split()
    summaries = [_paraphrase(rng, reference, vocabulary) for reference in references]
    # An article tells the story at length: about 550 words around the highlights' topic.
    articles = ["\n\n".join(fillers[6 * i:6 * i + 5] + [_paraphrase(rng, ref, vocabulary)])
                for i, ref in enumerate(references)]
    return summaries, references, articles


@pytest.fixture(scope="module")
def tokenizer(corpus):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    predictions, references, articles = corpus
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=1200, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator(predictions + references + articles + [TEMPLATE], trainer)
    return PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|eot_id|>",
                                   clean_up_tokenization_spaces=False)


def run_loadgen(outdir: Path, responses: list[np.ndarray]) -> Path:
    """One AccuracyOnly Offline run whose SUT answers sample ``i`` with ``responses[i]``."""
    outdir.mkdir(parents=True, exist_ok=True)
    settings = lg.TestSettings()
    settings.scenario = lg.TestScenario.Offline
    settings.mode = lg.TestMode.AccuracyOnly
    settings.offline_expected_qps = 1000
    settings.use_token_latencies = True  # as mlperf.conf sets for llama3_1-8b

    def issue(query_samples):
        answers = []
        for sample in query_samples:
            data = responses[sample.index]
            address, _ = data.__array_interface__["data"]
            answers.append(lg.QuerySampleResponse(sample.id, address, data.nbytes, len(data)))
        lg.QuerySamplesComplete(answers)

    sut = lg.ConstructSUT(issue, lambda: None)
    qsl = lg.ConstructQSL(len(responses), len(responses), lambda s: None, lambda s: None)
    log_settings = lg.LogSettings()
    log_settings.log_output.outdir = str(outdir)
    log_settings.log_output.copy_summary_to_stdout = False
    try:
        # An absent audit config: a stray audit.config in the cwd must not alter the run.
        lg.StartTestWithLogSettings(sut, qsl, settings, log_settings,
                                    str(outdir / "no-audit.config"))
    finally:
        lg.DestroyQSL(qsl)
        lg.DestroySUT(sut)
    log = outdir / "mlperf_log_accuracy.json"
    assert log.is_file()
    return log


@pytest.fixture(scope="module")
def outputs(corpus, tokenizer):
    """What a correct SUT generates: the model's summary, cut at the token budget."""
    predictions, _, _ = corpus
    return [tokenizer.encode(p)[:MAX_TOKENS] for p in predictions]


@pytest.fixture(scope="module")
def baseline(corpus, tokenizer, outputs):
    _, references, _ = corpus
    texts = tokenizer.batch_decode(outputs, skip_special_tokens=True)
    return Baseline.from_scores("correct SUT, scored as text", score_texts(texts, references))


def _score(tmp_path_factory, name, responses, tokenizer, references):
    log = run_loadgen(tmp_path_factory.mktemp(name), responses)
    return score_log(log, references, tokenizer, dtype="int32")


def _names(misses) -> set[str]:
    return {miss.metric for miss in misses}


def test_log_is_loadgen_format(tmp_path, outputs):
    import json

    log = run_loadgen(tmp_path, [np.asarray(ids, dtype=np.int32) for ids in outputs[:4]])
    entries = json.loads(log.read_text())
    assert {e["qsl_idx"] for e in entries} == {0, 1, 2, 3}
    entry = entries[0]
    assert {"seq_id", "qsl_idx", "data", "token_count"} <= set(entry)
    assert entry["data"] == entry["data"].upper()
    assert entry["token_count"] == len(outputs[entry["qsl_idx"]])


def test_correct_sut_passes(tmp_path_factory, corpus, tokenizer, outputs, baseline):
    _, references, _ = corpus
    responses = [np.asarray(ids, dtype=np.int32) for ids in outputs]
    scores = _score(tmp_path_factory, "correct", responses, tokenizer, references)
    assert check(scores, baseline) == []
    # The log path (loadgen, hex, dedup, decode) loses nothing: same figures as the texts.
    for key in ("rouge1", "rouge2", "rougeL", "rougeLsum", "gen_len", "gen_num"):
        assert getattr(scores, key) == getattr(baseline, key, scores.gen_num), key
    assert scores.gen_tok_len == sum(len(ids) for ids in outputs)


def test_sut_dropping_the_last_token_fails(tmp_path_factory, corpus, tokenizer, outputs,
                                           baseline):
    _, references, _ = corpus
    responses = [np.asarray(ids[:-1], dtype=np.int32) for ids in outputs]
    misses = check(_score(tmp_path_factory, "drop-last", responses, tokenizer, references),
                   baseline)
    assert "rouge1" in _names(misses), misses
    assert all(str(miss).startswith(miss.metric + " ") for miss in misses)


def test_sut_writing_int64_tokens_fails(tmp_path_factory, corpus, tokenizer, outputs,
                                        baseline):
    _, references, _ = corpus
    responses = [np.asarray(ids, dtype=np.int64) for ids in outputs]
    scores = _score(tmp_path_factory, "int64", responses, tokenizer, references)
    misses = check(scores, baseline)
    # Every token reads as (id, 0) and id 0 is "!": text and sentences change, length grows.
    assert {"rouge1", "gen_len"} <= _names(misses), misses
    assert scores.gen_tok_len == 2 * sum(len(ids) for ids in outputs)


def test_sut_returning_the_prompt_fails(tmp_path_factory, corpus, tokenizer, baseline):
    _, references, articles = corpus
    responses = [np.asarray(tokenizer.encode(TEMPLATE.format(input=a)), dtype=np.int32)
                 for a in articles]
    misses = check(_score(tmp_path_factory, "prompt", responses, tokenizer, references),
                   baseline)
    assert {"rouge1", "rouge2", "rougeL", "rougeLsum", "gen_len"} <= _names(misses), misses


def test_reading_int64_log_with_the_right_dtype_passes(tmp_path, corpus, tokenizer, outputs,
                                                       baseline):
    # The same int64 log is fine for a harness that declares it (--dtype int64).
    _, references, _ = corpus
    log = run_loadgen(tmp_path, [np.asarray(ids, dtype=np.int64) for ids in outputs])
    assert check(score_log(log, references, tokenizer, dtype="int64"), baseline) == []
