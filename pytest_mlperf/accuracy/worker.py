"""The subprocess side of parallel scoring: ``python -m pytest_mlperf.accuracy.worker``.

Reads a pickled list of ``(prediction, reference)`` pairs on stdin and writes the pickled list
of per-sample scores (:func:`pytest_mlperf.accuracy.recipe.score_chunk`) on stdout. Only
:mod:`pytest_mlperf.accuracy.recipe` starts it, and only it reads what it writes.
"""

from __future__ import annotations

import pickle
import sys


def main() -> int:
    # Read the whole input first: the parent then never blocks on a full pipe while we import.
    pairs = pickle.load(sys.stdin.buffer)
    out = sys.stdout.buffer
    sys.stdout = sys.stderr  # a stray print() in an import must not corrupt the result stream
    from pytest_mlperf.accuracy.recipe import score_chunk

    pickle.dump(score_chunk(pairs), out, protocol=pickle.HIGHEST_PROTOCOL)
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
