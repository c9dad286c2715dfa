"""score_texts end to end: the reference path's figures, one process or several."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pytest_mlperf.accuracy import recipe, score_texts
from pytest_mlperf.accuracy.sentences import split_sentences
from pytest_mlperf.accuracy.synthetic import news_pairs, varied_texts
from tests.shared import punkt_tab_root

KEYS = ("rouge1", "rouge2", "rougeL", "rougeLsum")


@pytest.fixture(scope="module")
def sent_tokenize():
    """nltk.sent_tokenize over the genuine punkt_tab files when they are here, else ours."""
    import nltk

    root = punkt_tab_root()
    if root is None:
        yield split_sentences
        return
    nltk.data.path.insert(0, str(root))
    try:
        yield nltk.sent_tokenize
    finally:
        nltk.data.path.remove(str(root))


def reference_figures(predictions, references, sent_tokenize) -> dict:
    """language/llama3.1-8b/evaluation.py after decoding, verbatim in behaviour."""
    np = pytest.importorskip("numpy")
    rouge_scorer = pytest.importorskip("rouge_score.rouge_scorer")
    preds = ["\n".join(sent_tokenize(p.strip())) for p in predictions]
    targets = ["\n".join(sent_tokenize(t.strip())) for t in references]
    scorer = rouge_scorer.RougeScorer(list(KEYS), use_stemmer=True)
    per_sample = [scorer.score(t, p) for p, t in zip(preds, targets, strict=True)]
    result = {k: float(f"{round(np.mean([s[k].fmeasure for s in per_sample]) * 100, 4)}")
              for k in KEYS}
    result["gen_len"] = int(np.sum([len(p) for p in preds]))
    result["gen_num"] = len(preds)
    return result


@pytest.fixture(scope="module")
def pairs():
    predictions, references = news_pairs(400, seed=31)
    odd = varied_texts(200, seed=32)
    # Include empty, blank and punctuation-only predictions, as broken SUTs produce.
    predictions += odd[:100] + ["", "   ", "\n", "...", "!!!"]
    references += odd[100:] + references[:5]
    return predictions, references


def test_equals_the_reference_path(pairs, sent_tokenize):
    expected = reference_figures(*pairs, sent_tokenize)
    assert score_texts(*pairs, workers=1).as_dict() == expected


def test_workers_give_the_same_figures(pairs, caplog):
    assert score_texts(*pairs, workers=3) == score_texts(*pairs, workers=1)
    assert "accuracy worker failed" not in caplog.text  # the workers did the work


def test_shares_are_contiguous_and_complete():
    items = [(str(i), "") for i in range(10)]
    shares = recipe._shares(items, 3)
    assert [len(s) for s in shares] == [4, 3, 3]
    assert [p for share in shares for p in share] == items


def test_failed_worker_falls_back_to_this_process(pairs, monkeypatch, caplog):
    monkeypatch.setattr(recipe, "WORKER_COMMAND",
                        (sys.executable, "-c", "import sys; sys.exit(3)"))
    assert score_texts(*pairs, workers=2) == score_texts(*pairs, workers=1)
    assert "accuracy worker failed (exit status 3" in caplog.text


def test_worker_that_cannot_start_falls_back(pairs, monkeypatch, caplog):
    monkeypatch.setattr(recipe, "WORKER_COMMAND", ("/nonexistent/python",))
    assert score_texts(*pairs, workers=2) == score_texts(*pairs, workers=1)
    assert "accuracy worker failed" in caplog.text


def test_small_inputs_stay_in_process(pairs, monkeypatch):
    def no_worker(share):
        raise AssertionError("a worker was started for a small input")

    monkeypatch.setattr(recipe, "_run_worker", no_worker)
    score_texts(*pairs)


def test_script_without_main_guard(tmp_path):
    # multiprocessing's spawn/forkserver would re-run this script in every worker (and a
    # pool would respawn them forever); subprocess workers never import the caller's main.
    script = tmp_path / "unguarded.py"
    script.write_text(
        "from pytest_mlperf.accuracy import score_texts\n"
        "from pytest_mlperf.accuracy.synthetic import news_pairs\n"
        "print('started', flush=True)\n"
        "print(score_texts(*news_pairs(50), workers=2).gen_num)\n"
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["started", "50"]


def test_lengths_must_match():
    with pytest.raises(ValueError, match="2 predictions but 1 references"):
        score_texts(["a", "b"], ["a"])


def test_nothing_to_score():
    with pytest.raises(ValueError, match="no predictions"):
        score_texts([], [])


def test_import_is_light():
    # The plugin imports this package while pytest starts: nothing heavy may load with it.
    code = ("import sys, pytest_mlperf.accuracy; "
            "heavy = {'nltk', 'numpy', 'torch', 'transformers', 'rouge_score', 'punkt'}; "
            "print(sorted(heavy & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
