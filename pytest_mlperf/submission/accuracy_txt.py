"""``accuracy.txt``: what MLCommons' evaluation script prints, then the hash line.

``language/llama3.1-8b/evaluation.py`` prints ``\\nResults\\n`` and its result dict; the
submission tooling (``truncate_accuracy_log.py``) appends ``\\nhash=<sha256 of
mlperf_log_accuracy.json>``, the hash of the *whole* log, taken before the log is truncated.
The checker reads the scores from the dict line and requires the hash line.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from pytest_mlperf.core.record import BenchmarkRecord

FILE = "accuracy.txt"
ACCURACY_LOG = "mlperf_log_accuracy.json"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def accuracy_text(record: BenchmarkRecord, log_hash: str) -> str | None:
    """The file's text for a scored accuracy record, else None."""
    from pytest_mlperf.accuracy.scores import AccuracyScores

    acc = record.accuracy
    if acc is None or not acc.scored or acc.gen_len is None or acc.gen_num is None:
        return None
    scores = AccuracyScores(rouge1=acc.rouge1, rouge2=acc.rouge2, rougeL=acc.rougeL,  # type: ignore[arg-type]
                            rougeLsum=acc.rougeLsum, gen_len=acc.gen_len,  # type: ignore[arg-type]
                            gen_num=acc.gen_num, gen_tok_len=acc.gen_tok_len)
    return f"\nResults\n\n{scores.reference_line(record.benchmark)}\n\nhash={log_hash}\n"


def write_accuracy_txt(record: BenchmarkRecord, folder: Path | None = None) -> Path | None:
    """Write ``accuracy.txt`` beside the run's accuracy log; None when there is nothing scored."""
    folder = Path(folder or record.run.outdir)
    log = folder / ACCURACY_LOG
    if record.mode != "accuracy" or not log.is_file():
        return None
    text = accuracy_text(record, sha256_file(log))
    if text is None:
        return None
    path = folder / FILE
    path.write_text(text, encoding="utf-8")
    return path
