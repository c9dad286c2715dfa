"""Our ROUGE equals rouge_score's, float for float, on every kind of input we can think of.

rouge_score (the package the reference scores with) is the oracle; nothing here asserts a
figure we computed by hand.
"""

from __future__ import annotations

import random

import pytest

rouge_scorer = pytest.importorskip("rouge_score.rouge_scorer")
rouge_tokenize = pytest.importorskip("rouge_score.tokenize")

from pytest_mlperf.accuracy import rouge  # noqa: E402
from pytest_mlperf.accuracy.sentences import one_sentence_per_line  # noqa: E402
from pytest_mlperf.accuracy.synthetic import news_pairs, varied_texts  # noqa: E402

KEYS = ("rouge1", "rouge2", "rougeL", "rougeLsum")


@pytest.fixture(scope="module")
def oracle():
    return rouge_scorer.RougeScorer(list(KEYS), use_stemmer=True)


@pytest.fixture(scope="module")
def tokenizer():
    return rouge.Tokenizer()


def _assert_same(oracle, tokenizer, pairs):
    for target, prediction in pairs:
        expected = oracle.score(target, prediction)
        got = rouge.score(target, prediction, tokenizer)
        for key, value in zip(KEYS, got, strict=True):
            assert value == expected[key].fmeasure, (key, target, prediction)


def _random_text(rng: random.Random, vocab: list[str], max_words: int) -> str:
    words = [rng.choice(vocab) for _ in range(rng.randrange(0, max_words + 1))]
    text = ""
    for word in words:
        text += word + rng.choice((" ", " ", " ", "\n", ". ", ".\n", ", ", "\n\n", "  "))
    return text


# Few distinct tokens -> many repeats, the hard case for LCS backtracking and hit counting.
SMALL_VOCAB = ["a", "b", "c", "the", "cat", "cats", "running", "runs", "ran", "x1", "2"]
MIXED_VOCAB = SMALL_VOCAB + [
    "Running", "RUNS", "don't", "U.S.", "e-mail", "3.5", "$4", "caf\u00e9", "\u00e9t\u00e9",
    "\u0130stanbul", "\u212aelvin", "\u03a3\u03bf\u03c6\u03b9\u03b1\u03c2", "\ufb01nance",
    "\u4e2d\u6587", "...", "!!!", "-", "''", "generalizations", "hopefulness", "sses", "ies",
    "agreed", "feed", "conflated", "troubled", "sized", "happy", "sky", "relational",
    "conditional", "rational", "valenci", "hesitanci", "digitizer", "conformabli", "radicalli",
    "differentli", "vileli", "analogousli", "vietnamization", "predication", "operator",
    "feudalism", "decisiveness", "hopefulness", "callousness", "formaliti", "sensitiviti",
]


def test_tokenizer_matches_rouge_score_tokenize():
    from nltk.stem import porter

    stemmer = porter.PorterStemmer()
    ours = rouge.Tokenizer()
    rng = random.Random(1)
    texts = varied_texts(3000, seed=11) + [_random_text(rng, MIXED_VOCAB, 40)
                                            for _ in range(3000)]
    texts += ["", " ", "\n", "\u212a", "\u0130", "A\u03a3 \u03a3A", "ab\u00a0cd", "x\u2028y"]
    for text in texts:
        assert ours.tokenize(text) == rouge_tokenize.tokenize(text, stemmer), text


def test_lcs_indices_match_rouge_score_backtracking():
    rng = random.Random(2)
    for _ in range(20000):
        vocab = SMALL_VOCAB[: rng.randrange(1, len(SMALL_VOCAB) + 1)]
        ref = [rng.choice(vocab) for _ in range(rng.randrange(0, 25))]
        can = [rng.choice(vocab) for _ in range(rng.randrange(0, 25))]
        masks = rouge._match_masks(can)
        assert rouge.lcs_indices(ref, can, masks) == rouge_scorer.lcs_ind(ref, can), (ref, can)
        table = rouge_scorer._lcs_table(ref, can)
        assert rouge.lcs_length(ref, can) == table[-1][-1]


def test_news_like_pairs(oracle, tokenizer):
    predictions, references = news_pairs(1500, seed=3)
    pairs = [(one_sentence_per_line(r), one_sentence_per_line(p))
             for p, r in zip(predictions, references, strict=True)]
    _assert_same(oracle, tokenizer, pairs)


def test_random_small_vocabulary_pairs(oracle, tokenizer):
    rng = random.Random(4)
    pairs = [(_random_text(rng, SMALL_VOCAB, 30), _random_text(rng, SMALL_VOCAB, 30))
             for _ in range(3000)]
    _assert_same(oracle, tokenizer, pairs)


def test_random_mixed_pairs(oracle, tokenizer):
    rng = random.Random(5)
    pairs = [(_random_text(rng, MIXED_VOCAB, 40), _random_text(rng, MIXED_VOCAB, 60))
             for _ in range(2000)]
    _assert_same(oracle, tokenizer, pairs)


def test_varied_texts_as_is(oracle, tokenizer):
    # Not post-processed: blank lines, lines of punctuation only, tabs, leading spaces.
    texts = varied_texts(2000, seed=6)
    _assert_same(oracle, tokenizer, list(zip(texts[::2], texts[1::2], strict=True)))


@pytest.mark.parametrize(
    ("target", "prediction"),
    [
        ("", ""),
        ("", "a"),
        ("a", ""),
        ("the cat", "the cat"),
        ("cat", "cats"),
        ("a", "a a a a"),
        ("a a a a", "a"),
        ("...", "!!!"),
        ("\n\n", "a\n\nb"),
        ("a b\nc a\nb c", "c b a\na\nb\nc a b"),
        ("a b a b a b\nb a b a", "b a\na b\nb b a a"),
        ("Running runs ran.", "run running RUNS"),
        ("one", "one\n" * 50),
    ],
)
def test_edge_cases(oracle, tokenizer, target, prediction):
    _assert_same(oracle, tokenizer, [(target, prediction)])


def test_long_texts(oracle, tokenizer):
    rng = random.Random(8)
    long_pairs = []
    for _ in range(4):
        target = _random_text(rng, MIXED_VOCAB, 600)
        prediction = _random_text(rng, MIXED_VOCAB, 1500)
        long_pairs.append((target, prediction))
    # one sentence of 2,000 words on each side: LCS rows wider than any machine word
    words = [rng.choice(SMALL_VOCAB) for _ in range(2000)]
    long_pairs.append((" ".join(words), " ".join(reversed(words))))
    _assert_same(oracle, tokenizer, long_pairs)
