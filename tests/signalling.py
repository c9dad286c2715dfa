"""pytest in a child process, signalled once it is at the point a test wants: the one way the
interrupt and shutdown tests start, wait and signal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path


def default_signals() -> None:
    """In the child: a child started from a background shell inherits SIGINT ignored (Python
    then installs no KeyboardInterrupt handler); the user's terminal is what is tested."""
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)


def signal_pytest(cwd: Path, args: Sequence[str], ready: Path | Callable[[], object], *,
                  signals: Sequence[str] = ("SIGINT",), settle_s: float = 0.5, gap_s: float = 1.5,
                  patience_s: float = 60.0, seen: list[str] | None = None) -> tuple[int, float, str]:
    """Run ``pytest args`` in ``cwd``; once ``ready`` exists (or returns something true) and
    ``settle_s`` more have passed, send ``signals`` ``gap_s`` apart. Returns (exit status,
    seconds from the last signal to the exit, output). ``seen`` gets the output as it stood
    just before each signal."""
    is_ready = ready if callable(ready) else ready.exists
    out = cwd / "out.txt"
    with open(out, "wb") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "pytest", *args], cwd=cwd, stdout=sink,
                                stderr=subprocess.STDOUT, preexec_fn=default_signals,
                                env={**os.environ, "PYTHONFAULTHANDLER": "1", "PYTHONUNBUFFERED": "1"})
        deadline = time.monotonic() + patience_s
        while not is_ready():
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise AssertionError(f"never got ready:\n{out.read_text()[-3000:]}")
            time.sleep(0.1)
        time.sleep(settle_s)
        for i, name in enumerate(signals):
            if i:
                time.sleep(gap_s)  # a second signal, not the same one reaching it twice
            if seen is not None:
                seen.append(out.read_text(errors="replace"))
            proc.send_signal(getattr(signal, name))
        sent = time.monotonic()
        try:
            status = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise AssertionError(f"still running 60 s after {signals[-1]}:\n"
                                 f"{out.read_text()[-3000:]}") from None
    return status, time.monotonic() - sent, out.read_text()
