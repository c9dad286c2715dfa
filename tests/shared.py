"""Where the tests find data shared between checkouts (NLTK's punkt_tab files, public MLPerf logs).

The shared folder is ``$PYTEST_MLPERF_SHARED``, else ``shared`` beside the repository
(``<repo>/../shared``); ``$NLTK_DATA`` and ``$MLPERF_PUBLIC_LOGS`` name their data directly and
win where set. Nothing here requires the data: the tests that need it skip when it is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    """``$PYTEST_MLPERF_SHARED``, else ``<repo>/../shared`` (which need not exist)."""
    return Path(os.environ.get("PYTEST_MLPERF_SHARED") or REPO_ROOT.parent / "shared")


def nltk_data_dirs() -> list[Path]:
    """Where NLTK data may be, in order: each folder of ``$NLTK_DATA``, then the shared one."""
    roots = [Path(p) for p in os.environ.get("NLTK_DATA", "").split(os.pathsep) if p]
    return [*roots, shared_dir() / "nltk_data"]


def punkt_tab_root() -> Path | None:
    """The first of :func:`nltk_data_dirs` holding NLTK's English punkt_tab files, or None."""
    for root in nltk_data_dirs():
        if (root / "tokenizers" / "punkt_tab" / "english" / "ortho_context.tab").is_file():
            return root
    return None


def public_logs_dir() -> Path:
    """``$MLPERF_PUBLIC_LOGS``, else ``<shared>/mlperf-logs`` (which need not exist)."""
    return Path(os.environ.get("MLPERF_PUBLIC_LOGS") or shared_dir() / "mlperf-logs")
