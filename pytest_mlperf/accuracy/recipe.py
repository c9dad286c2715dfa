"""The MLCommons llama3.1-8b accuracy recipe, end to end, on several cores.

``language/llama3.1-8b/evaluation.py`` does, in one process:

1. read the accuracy log, keep the first entry per ``qsl_idx`` (log order), decode each
   ``data`` as int32 (``--dtype``) and ``tokenizer.batch_decode(..., skip_special_tokens=True)``;
2. post-process predictions and targets: ``"\\n".join(nltk.sent_tokenize(text.strip()))``;
3. ROUGE-1/2/L/Lsum F-measure per sample (``rouge_score``, stemmer on), mean x 100, rounded
   to 4 decimals;
4. ``gen_len``: characters of the post-processed predictions; ``gen_num``: their number.

Here step 1 is :mod:`.log`, step 2 :mod:`.sentences` (same algorithm and parameters, no
download), step 3 :mod:`.rouge` (same per-sample floats) and :mod:`.scores` (same reduction).
Steps 2 and 3 are independent per sample, so a large input is cut into contiguous shares:
this process scores the first, one worker subprocess (``python -m
pytest_mlperf.accuracy.worker``) each of the others, and the rows are put back in input order,
so the means are reduced in the same order. Workers are plain subprocesses, not a
``multiprocessing`` pool: ``fork`` would copy a pytest process holding an engine's threads and
CUDA state, and ``spawn``/``forkserver`` re-run the caller's ``__main__``, which in a script
without an ``if __name__ == "__main__"`` guard starts the whole run again in every worker.
"""

from __future__ import annotations

import functools
import logging
import os
import pickle
import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from pytest_mlperf.accuracy.log import decode_texts, read_accuracy_log
from pytest_mlperf.accuracy.scores import AccuracyScores, aggregate
from pytest_mlperf.core.cpu import usable_cores

log = logging.getLogger(__name__)

#: below this many samples, starting workers (interpreter, NLTK import) costs more than it saves
PARALLEL_THRESHOLD = 2000
#: how a worker is started; the package must be importable by it (see _worker_env)
WORKER_COMMAND = (sys.executable, "-m", "pytest_mlperf.accuracy.worker")

#: one sample's (rouge1, rouge2, rougeL, rougeLsum) F-measures and prediction length
SampleScore = tuple[float, float, float, float, int]


@functools.cache
def _tokenizer():
    from pytest_mlperf.accuracy.rouge import Tokenizer

    return Tokenizer()


def score_chunk(pairs: Sequence[tuple[str, str]]) -> list[SampleScore]:
    """Steps 2 and 3 for ``(prediction, reference)`` pairs, in order (workers run this too)."""
    from pytest_mlperf.accuracy.rouge import score
    from pytest_mlperf.accuracy.sentences import one_sentence_per_line

    tokenizer = _tokenizer()
    out: list[SampleScore] = []
    for prediction, reference in pairs:
        prediction = one_sentence_per_line(prediction)
        fmeasures = score(one_sentence_per_line(reference), prediction, tokenizer)
        out.append((*fmeasures, len(prediction)))
    return out


def _worker_env() -> dict[str, str]:
    # The worker must import this very package, wherever this process found it (an editable
    # install, a pytest rootdir on sys.path, PYTHONPATH): hand it our sys.path.
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p or os.getcwd() for p in sys.path)
    return env


def _run_worker(share: list[tuple[str, str]]) -> list[SampleScore]:
    """Score ``share`` in a subprocess; on any failure, here (same figures, only slower)."""
    try:
        done = subprocess.run(WORKER_COMMAND, input=pickle.dumps(share), capture_output=True,
                              env=_worker_env(), check=False)
        if done.returncode == 0:
            rows = pickle.loads(done.stdout)
            if len(rows) == len(share):
                return rows
        problem = f"exit status {done.returncode}: {done.stderr.decode(errors='replace')[-500:]}"
    except (OSError, pickle.UnpicklingError, EOFError) as e:
        problem = str(e)
    log.warning("accuracy worker failed (%s); scoring its %d samples in this process",
                problem.strip(), len(share))
    return score_chunk(share)


def _shares(pairs: list[tuple[str, str]], count: int) -> list[list[tuple[str, str]]]:
    size, extra = divmod(len(pairs), count)
    shares, start = [], 0
    for i in range(count):
        end = start + size + (i < extra)
        shares.append(pairs[start:end])
        start = end
    return shares


def _score_pairs(pairs: list[tuple[str, str]], workers: int | None) -> list[SampleScore]:
    if workers is None:
        workers = usable_cores() if len(pairs) >= PARALLEL_THRESHOLD else 1
    workers = max(1, min(workers, len(pairs)))
    if workers == 1:
        return score_chunk(pairs)
    mine, *theirs = _shares(pairs, workers)
    with ThreadPoolExecutor(len(theirs)) as threads:
        # Each thread only waits on its subprocess (no GIL held) while this one scores.
        futures = [threads.submit(_run_worker, share) for share in theirs]
        rows = score_chunk(mine)
        for future in futures:
            rows.extend(future.result())
    return rows


def score_texts(predictions: Sequence[str], references: Sequence[str], *,
                workers: int | None = None) -> AccuracyScores:
    """Score decoded ``predictions`` against ``references`` (same order, same length).

    ``workers``: processes to use, this one included; ``None`` uses every available core for
    inputs of ``PARALLEL_THRESHOLD`` samples or more and this process alone below that.
    """
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
    rows = _score_pairs(list(zip(predictions, references, strict=True)), workers)
    return aggregate([row[:4] for row in rows], gen_len=sum(row[4] for row in rows))


def score_log(accuracy_log: str | Path, references: Sequence[str], tokenizer, *,
              dtype: str = "int32", workers: int | None = None) -> AccuracyScores:
    """Score loadgen's ``mlperf_log_accuracy.json``; ``references[i]`` is QSL index ``i``'s
    target text and ``tokenizer`` a Hugging Face tokenizer (``batch_decode``).

    Raises :class:`~pytest_mlperf.accuracy.log.AccuracyLogError` (a ``ValueError``) for a
    log that cannot be scored.
    """
    samples = read_accuracy_log(accuracy_log, n_references=len(references), dtype=dtype)
    predictions = decode_texts(accuracy_log, samples, tokenizer)
    targets = [references[sample.qsl_idx] for sample in samples]
    scores = score_texts(predictions, targets, workers=workers)
    return replace(scores, gen_tok_len=sum(len(sample.token_ids) for sample in samples))
