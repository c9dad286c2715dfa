"""ROUGE-1, ROUGE-2, ROUGE-L and ROUGE-Lsum F-measures, equal to ``rouge_score`` per sample.

The reference scores with ``rouge_score.rouge_scorer.RougeScorer(["rouge1", "rouge2",
"rougeL", "rougeLsum"], use_stemmer=True)`` (through HF ``evaluate``'s "rouge" metric). This
module returns the very same floats, faster, because:

- each text is tokenized and stemmed once, not twice (``rouge_score`` tokenizes the whole text
  for ROUGE-1/2/L and again sentence by sentence for ROUGE-Lsum). The whole-text tokens are the
  concatenation of the per-line tokens: ``"\\n"`` is not alphanumeric, so it separates tokens
  in both, and ``str.lower`` only looks at context for the Greek final sigma, which is not
  alphanumeric ASCII either way;
- Porter stems are cached per word (a summary repeats most of its words, a corpus more so);
- LCS tables are computed bit-parallel (Hyyro 2004) on Python ints: one row of the dynamic
  programming table is one integer whose zero bits mark where the row steps up, so
  ``table[i][j] == j - popcount(row[i] & ((1 << j) - 1))``. ROUGE-L needs only the last row;
  ROUGE-Lsum backtracks through the rows exactly as ``rouge_score._backtrack_norec`` does,
  so it picks the same LCS (the union over candidate sentences depends on which one is
  picked) and then applies the same once-per-token hit counters.

The tokenization mirrors ``rouge_score.tokenize.tokenize``: lowercase, every run of
characters outside ``[a-z0-9]`` becomes a space, split, Porter-stem (NLTK, its default
extensions mode) the tokens longer than 3 characters, keep only tokens matching
``^[a-z0-9]+$``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from typing import NamedTuple

_NON_ALNUM = re.compile(r"[^a-z0-9]+")
_VALID_TOKEN = re.compile(r"^[a-z0-9]+$")


class RougeF(NamedTuple):
    """The four F-measures of one prediction against its reference, as fractions (0..1)."""

    rouge1: float
    rouge2: float
    rougeL: float  # noqa: N815 - the metric's name
    rougeLsum: float  # noqa: N815 - the metric's name


def _porter() -> Callable[[str], str]:
    from nltk.stem.porter import PorterStemmer

    return PorterStemmer().stem


class Tokenizer:
    """``rouge_score``'s default tokenizer with ``use_stemmer=True``, with a per-word cache.

    The cache maps a raw lowercase word to its final token, or to ``""`` when
    ``rouge_score`` would drop it. Stemming is a pure function of the word, so the cache can
    live as long as the process; two threads racing on one word compute the same token.
    """

    def __init__(self, stem: Callable[[str], str] | None = None) -> None:
        self._stem = stem if stem is not None else _porter()
        self._cache: dict[str, str] = {}

    def _token(self, word: str) -> str:
        token = self._stem(word) if len(word) > 3 else word
        return token if _VALID_TOKEN.match(token) else ""

    def tokenize(self, text: str) -> list[str]:
        cache = self._cache
        tokens = []
        for word in _NON_ALNUM.sub(" ", text.lower()).split():
            token = cache.get(word)
            if token is None:
                token = cache[word] = self._token(word)
            if token:
                tokens.append(token)
        return tokens

    def sentences(self, text: str) -> list[list[str]]:
        """Tokens per line, for the non-empty lines (ROUGE-Lsum's sentences)."""
        return [self.tokenize(line) for line in text.split("\n") if line]


def _fmeasure(precision: float, recall: float) -> float:
    # Same expression and operand order as rouge_score.scoring.fmeasure: same float.
    if precision + recall > 0:
        return 2 * precision * recall / (precision + recall)
    return 0.0


def _ngram_f(target: Sequence[str], prediction: Sequence[str], n: int) -> float:
    if n == 1:
        target_grams: Counter[object] = Counter(target)
        prediction_grams: Counter[object] = Counter(prediction)
    else:
        target_grams = Counter(zip(*(target[k:] for k in range(n)), strict=False))
        prediction_grams = Counter(zip(*(prediction[k:] for k in range(n)), strict=False))
    overlap = 0
    for gram, count in target_grams.items():
        other = prediction_grams.get(gram)
        if other:
            overlap += count if count < other else other
    target_total = max(len(target) - n + 1, 0)
    prediction_total = max(len(prediction) - n + 1, 0)
    return _fmeasure(overlap / max(prediction_total, 1), overlap / max(target_total, 1))


def _match_masks(tokens: Sequence[str]) -> dict[str, int]:
    masks: dict[str, int] = {}
    for position, token in enumerate(tokens):
        masks[token] = masks.get(token, 0) | (1 << position)
    return masks


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of a longest common subsequence of token lists ``a`` and ``b``."""
    if len(a) < len(b):
        a, b = b, a  # bits over the longer list, one step per token of the shorter
    masks = _match_masks(a)
    full = (1 << len(a)) - 1
    row = full
    for token in b:
        match = row & masks.get(token, 0)
        row = ((row + match) | (row - match)) & full
    return len(a) - row.bit_count()


def lcs_indices(ref: Sequence[str], can: Sequence[str], can_masks: dict[str, int]) -> list[int]:
    """The indices into ``ref`` of the LCS that ``rouge_score.lcs_ind(ref, can)`` returns.

    ``can_masks`` is ``_match_masks(can)``, passed in because ROUGE-Lsum reuses it for every
    reference sentence.
    """
    if can_masks.keys().isdisjoint(ref):
        return []  # most sentence pairs share no token: nothing to walk
    full = (1 << len(can)) - 1
    rows = [full]
    row = full
    for token in ref:
        match = row & can_masks.get(token, 0)
        row = ((row + match) | (row - match)) & full
        rows.append(row)

    # table[i][j] == j - popcount(rows[i] & low_j). Walk it as _backtrack_norec does.
    found: list[int] = []
    i, j = len(ref), len(can)
    while i > 0 and j > 0:
        if ref[i - 1] == can[j - 1]:
            found.append(i - 1)
            i -= 1
            j -= 1
            continue
        left = (j - 1) - (rows[i] & ((1 << (j - 1)) - 1)).bit_count()
        up = j - (rows[i - 1] & ((1 << j) - 1)).bit_count()
        if left > up:
            j -= 1
        else:
            i -= 1
    found.reverse()
    return found


def _lcs_f(target: Sequence[str], prediction: Sequence[str]) -> float:
    if not target or not prediction:
        return 0.0
    length = lcs_length(target, prediction)
    return _fmeasure(length / len(prediction), length / len(target))


def _lsum_f(ref_sents: list[list[str]], can_sents: list[list[str]]) -> float:
    if not ref_sents or not can_sents:
        return 0.0
    m = sum(map(len, ref_sents))
    n = sum(map(len, can_sents))
    if not n or not m:
        return 0.0
    ref_left: Counter[str] = Counter()
    can_left: Counter[str] = Counter()
    for sentence in ref_sents:
        ref_left.update(sentence)
    for sentence in can_sents:
        can_left.update(sentence)

    can_masks = [_match_masks(sentence) for sentence in can_sents]
    hits = 0
    for ref in ref_sents:
        union: set[int] = set()
        for can, masks in zip(can_sents, can_masks, strict=True):
            union.update(lcs_indices(ref, can, masks))
        # rouge_score counts a token at most as often as it occurs on both sides.
        for index in sorted(union):
            token = ref[index]
            if can_left[token] > 0 and ref_left[token] > 0:
                hits += 1
                can_left[token] -= 1
                ref_left[token] -= 1
    return _fmeasure(hits / n, hits / m)


def score(target: str, prediction: str, tokenizer: Tokenizer) -> RougeF:
    """The four F-measures of ``prediction`` against ``target``, as ``rouge_score`` gives them.

    Both texts are taken as they are (the recipe has already put one sentence per line).
    """
    target_sents = tokenizer.sentences(target)
    prediction_sents = tokenizer.sentences(prediction)
    target_tokens = [token for sentence in target_sents for token in sentence]
    prediction_tokens = [token for sentence in prediction_sents for token in sentence]
    return RougeF(
        _ngram_f(target_tokens, prediction_tokens, 1),
        _ngram_f(target_tokens, prediction_tokens, 2),
        _lcs_f(target_tokens, prediction_tokens),
        _lsum_f(target_sents, prediction_sents),
    )
