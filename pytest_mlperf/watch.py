"""``python -m pytest_mlperf.watch``: the command that watches a session's status files
(:mod:`pytest_mlperf.live.watch`)."""

from __future__ import annotations

import sys

from pytest_mlperf.live.watch import main

if __name__ == "__main__":
    sys.exit(main())
