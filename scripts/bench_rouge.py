"""Speed of our accuracy recipe against the reference path, on the same 13,368 texts.

The reference path is what ``language/llama3.1-8b/evaluation.py`` runs after decoding:
``"\\n".join(nltk.sent_tokenize(x.strip()))`` on every prediction and target, then
``rouge_score``'s ``RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"],
use_stemmer=True).score`` per sample in one process, ``round(np.mean(v) * 100, 4)``.
Ours is ``pytest_mlperf.accuracy.score_texts`` (default workers: every available core).
Both run in this one process on the same deterministic, news-like pairs
(``pytest_mlperf.accuracy.synthetic.news_pairs``); the figures and gen_len must be identical.

``nltk.sent_tokenize`` needs NLTK's punkt_tab data: set NLTK_DATA, else ``nltk_data`` in the
shared folder is used when present (``$PYTEST_MLPERF_SHARED``, else ``shared`` beside the
repository: ``<repo>/../shared``).

    python scripts/bench_rouge.py [--samples 13368] [--seed 2024] [--workers N]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

# As tests/shared.py finds it (scripts cannot import tests/): $PYTEST_MLPERF_SHARED, else
# the folder "shared" beside this repository.
_SHARED = Path(os.environ.get("PYTEST_MLPERF_SHARED")
               or Path(__file__).resolve().parents[1].parent / "shared")
_SHARED_NLTK_DATA = _SHARED / "nltk_data"


def reference(predictions: list[str], references: list[str]) -> tuple[dict, dict]:
    import nltk
    import numpy as np
    from rouge_score import rouge_scorer

    times = {}
    start = time.perf_counter()
    preds = ["\n".join(nltk.sent_tokenize(p.strip())) for p in predictions]
    targets = ["\n".join(nltk.sent_tokenize(t.strip())) for t in references]
    times["sentences"] = time.perf_counter() - start
    start = time.perf_counter()
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"],
                                      use_stemmer=True)
    per_sample = [scorer.score(t, p) for p, t in zip(preds, targets, strict=True)]
    times["rouge"] = time.perf_counter() - start
    result = {k: round(np.mean([s[k].fmeasure for s in per_sample]) * 100, 4)
              for k in ("rouge1", "rouge2", "rougeL", "rougeLsum")}
    result = {k: float(v) for k, v in result.items()}
    result["gen_len"] = int(np.sum([len(p) for p in preds]))
    result["gen_num"] = len(preds)
    return result, times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=13368)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--workers", type=int, default=None,
                        help="our process count (default: every available core)")
    args = parser.parse_args(argv)

    if "NLTK_DATA" not in os.environ and _SHARED_NLTK_DATA.is_dir():
        os.environ["NLTK_DATA"] = str(_SHARED_NLTK_DATA)
    import nltk

    try:
        nltk.sent_tokenize("Probe. Probe.")
    except LookupError:
        print("the reference path needs NLTK's punkt_tab data: set NLTK_DATA", file=sys.stderr)
        return 2

    from pytest_mlperf.accuracy import score_texts
    from pytest_mlperf.accuracy.synthetic import news_pairs
    from pytest_mlperf.core.cpu import usable_cores

    predictions, references = news_pairs(args.samples, seed=args.seed)
    words = sum(len(p.split()) for p in predictions) / len(predictions)
    ref_words = sum(len(r.split()) for r in references) / len(references)
    print(f"{platform.python_implementation()} {platform.python_version()}, "
          f"{usable_cores()} cores available; {args.samples} pairs (seed {args.seed}), "
          f"{words:.1f} words per prediction, {ref_words:.1f} per reference")

    wall, cpu = time.perf_counter(), time.process_time()
    expected, phases = reference(predictions, references)
    reference_s, reference_cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"reference (nltk.sent_tokenize + rouge_score, 1 process): {reference_s:.2f} s "
          f"(sentences {phases['sentences']:.2f} s, rouge {phases['rouge']:.2f} s; "
          f"CPU {reference_cpu:.2f} s)")
    print(f"  {expected}")

    from pytest_mlperf.accuracy import recipe

    # Each timed run of ours starts with a cold stem cache, as a fresh process would.
    recipe._tokenizer.cache_clear()
    wall = time.perf_counter()
    ours = score_texts(predictions, references, workers=args.workers).as_dict()
    ours_s = time.perf_counter() - wall
    print(f"pytest_mlperf.accuracy.score_texts (workers={args.workers or 'auto'}): "
          f"{ours_s:.2f} s")
    print(f"  {ours}")

    recipe._tokenizer.cache_clear()
    wall, cpu = time.perf_counter(), time.process_time()
    single = score_texts(predictions, references, workers=1).as_dict()
    single_s, single_cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"pytest_mlperf.accuracy.score_texts (workers=1): {single_s:.2f} s "
          f"(CPU {single_cpu:.2f} s)")
    print(f"speed-up: {reference_s / ours_s:.1f}x (wall clock, default workers); "
          f"{reference_s / single_s:.1f}x in one process; "
          f"{reference_cpu / single_cpu:.1f}x in CPU time, one process against one")

    assert single == ours, f"one process and the pool differ: {single} {ours}"
    mismatched = {k: (expected[k], ours[k]) for k in expected if expected[k] != ours[k]}
    assert not mismatched, f"figures differ (reference, ours): {mismatched}"
    print("figures identical: rouge1, rouge2, rougeL, rougeLsum, gen_len, gen_num")
    return 0


if __name__ == "__main__":
    sys.exit(main())
