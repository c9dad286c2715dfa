"""Every file the session writes at its end, checked before anything runs, and each written on
its own at the end.

At configure (controller only): each output path (``--mlperf-json``, ``--mlperf-submission-dir``,
``--mlperf-output``, ``--mlperf-storage`` with ``--mlperf-save``, ``--html``, ``--junitxml``) must
be writable, or the session stops there with a usage error naming the flag: a path found bad
after an hour of benchmarks would lose that hour's reports.

At the end: a file that still cannot be written (a full disk) is a note in the terminal summary
and makes the exit status non-zero, and never stops the files after it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pytest_mlperf.core import bounded, stash

#: what could not be written at the session's end, for the terminal summary
FAILED_WRITES = pytest.StashKey[list[str]]()


def _problem(path: Path, kind: str) -> str | None:
    """Why ``path`` (a ``file`` or a ``folder``) cannot be written, or None."""
    if path.exists():
        if kind == "file" and path.is_dir():
            return f"{path} is a folder; name a file"
        if kind == "folder" and not path.is_dir():
            return f"{path} is a file; name a folder"
        if not os.access(path, os.W_OK | (os.X_OK if kind == "folder" else 0)):
            return f"cannot write to {path}"
        return None
    existing = path.parent
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        return f"{path} lies under the file {existing}"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"cannot write to {existing} (to make {path})"
    return None


def output_paths(config: pytest.Config) -> list[tuple[str, Path, str]]:
    """(flag, path, kind) of every file or folder the session will write at its end."""
    opts = config.stash[stash.OPTIONS]
    paths: list[tuple[str, Path, str]] = [("--mlperf-output (ini mlperf_output)", Path(opts.output), "folder")]
    if opts.json is not None:
        paths.append(("--mlperf-json (ini mlperf_json)", Path(opts.json), "file"))
    if opts.submission_dir is not None:
        paths.append(("--mlperf-submission-dir (ini mlperf_submission_dir)", Path(opts.submission_dir), "folder"))
    if opts.save is not None:
        paths.append(("--mlperf-storage (ini mlperf_storage)", Path(opts.storage), "folder"))
    for flag, attr in (("--html", "htmlpath"), ("--junitxml", "xmlpath")):
        value = getattr(config.option, attr, None)
        if value:
            path = Path(os.path.expandvars(os.path.expanduser(str(value))))
            paths.append((flag, path if path.is_absolute() else Path.cwd() / path, "file"))
    return paths


def check_writable(config: pytest.Config) -> None:
    """A usage error for the first output path that cannot be written (controller only)."""
    config.stash[FAILED_WRITES] = []
    if hasattr(config, "workerinput") or getattr(config.option, "help", False):
        return
    for flag, path, kind in output_paths(config):
        problem = _problem(path, kind)
        if problem:
            raise pytest.UsageError(f"{flag}: {problem}. Nothing was run: every report is "
                                    "written at the session's end, so this is checked first")


def write_failed(session: pytest.Session, what: str, error: BaseException) -> None:
    """``what`` could not be written: a note in the summary, and a failing exit status."""
    session.config.stash.setdefault(FAILED_WRITES, []).append(
        f"could not write {what}: {type(error).__name__}: {error}")
    if session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        session.config.stash[bounded.EXIT_STATUS] = int(session.exitstatus)
