"""One shutdown path for Ctrl-C, a second Ctrl-C, SIGTERM and SIGHUP, on the controller and on
xdist workers.

The first signal raises KeyboardInterrupt in the main thread, wherever it waits (every wait of
the plugin is sliced, :mod:`.bounded`): loadgen is told to stop, queries in flight are answered
empty, and pytest goes down its interrupt path, which writes every report. SIGTERM (what CI
runners and Kubernetes send) and SIGHUP take the same path instead of killing the process
outright. Once the session is writing its reports (``pytest_sessionfinish``) a signal no longer
raises: the reports are what the user is waiting for. A second signal only hurries: engines
still closing are abandoned at once (:data:`HURRY`). A third ends the process at once.

Under xdist the controller does not stop at the first signal: it passes it on to its workers
(a SIGTERM sent to the controller alone reaches them too) and goes on receiving their reports;
each worker stops its test as above and ends with the interrupt status, which xdist takes as
the end of the session. A second signal stops the controller at once.

At the very end (:func:`finish`) a process with a thread still running that the interpreter's
own exit could trip on (an engine left generating, a loadgen run) ends with ``os._exit``; the
status is pytest's (2 for an interrupt) or 128 + the signal for SIGTERM and SIGHUP. An
interrupted process that exits normally ignores further signals while the interpreter ends
(its reports are written; a late second Ctrl-C must not turn status 2 into death by SIGINT).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from typing import Any

#: a second signal arrived: nothing is waited for any more (engines closing are abandoned)
HURRY = threading.Event()

_HANDLED = ("SIGINT", "SIGTERM", "SIGHUP")


#: a signal this soon after the first is the same one again (a Ctrl-C reaches an xdist worker
#: from the terminal and from its controller)
SAME_SIGNAL_S = 1.0


class _State:
    def __init__(self) -> None:
        self.signum: int | None = None
        self.at = 0.0
        self.finishing = False
        self.count = 0
        self.depth = 0
        self.previous: dict[int, Any] = {}
        #: an xdist controller's workers, to pass a signal on to
        self.workers: list[int] = []


_state = _State()


def install() -> None:
    """Take SIGINT, SIGTERM and SIGHUP in this process (main thread only; a signal the process
    was started with ignored, as ``nohup`` does, stays ignored). Sessions may nest (pytester
    runs one inside another): the outermost installs, and gives the signals back."""
    reset()
    _state.depth += 1
    if _state.depth > 1 or threading.current_thread() is not threading.main_thread():
        return
    for name in _HANDLED:
        signum = getattr(signal, name, None)
        if signum is None:
            continue
        current = signal.getsignal(signum)
        if current is signal.SIG_IGN or current is None:
            continue
        if signum == signal.SIGINT and current is not signal.default_int_handler:
            continue  # someone else's Ctrl-C handler (a debugger, an embedding program)
        _state.previous[signum] = current
        signal.signal(signum, _on_signal)


def uninstall() -> None:
    """Give the signals back once the outermost session ends."""
    _state.depth = max(0, _state.depth - 1)
    if _state.depth or threading.current_thread() is not threading.main_thread():
        return
    if _state.signum is not None:
        # Interrupted: keep taking signals through pytest's own cleanup, where a second Ctrl-C
        # would otherwise kill the process (they only say the reports are being written now).
        _state.finishing = True
        return
    for signum, previous in _state.previous.items():
        signal.signal(signum, previous)
    _state.previous.clear()


def reset() -> None:
    _state.signum = None
    _state.count = 0
    _state.finishing = False
    _state.workers.clear()
    HURRY.clear()


class WorkerSignals:
    """On an xdist controller: learns each worker's process id, to pass a signal on."""

    def pytest_testnodeready(self, node: Any) -> None:
        try:
            _state.workers.append(int(node.gateway._rinfo().pid))
        except Exception:  # noqa: BLE001 - a worker on another host: xdist's own Ctrl-C path
            pass


def finishing() -> None:
    """The session writes its reports now: a signal from here on no longer interrupts them."""
    _state.finishing = True


def received() -> int | None:
    """The first signal this session received, if any."""
    return _state.signum


def _on_signal(signum: int, frame: Any) -> None:
    import time

    name = signal.Signals(signum).name
    now = time.monotonic()
    if _state.signum is not None or _state.finishing:
        if _state.signum is not None and now - _state.at < SAME_SIGNAL_S:
            return
        _state.count += 1
        if _state.count >= 3:  # a third: the user will not wait for the reports either
            sys.stderr.write(f"\npytest-mlperf: {name} a third time: exiting now, reports may be "
                             "incomplete\n")
            sys.stderr.flush()
            os._exit(128 + signum if signum != signal.SIGINT else 2)
        if _state.signum is None:
            _state.signum, _state.at, _state.count = signum, now, 1
        _state.at = now
        HURRY.set()
        sys.stderr.write(f"\npytest-mlperf: {name} again: not waiting for engines any more; "
                         "the reports are being written\n")
        if _state.workers and not _state.finishing:
            raise KeyboardInterrupt(f"{name} received twice")
        return
    _state.signum, _state.at, _state.count = signum, now, 1
    if _state.workers:
        sys.stderr.write(f"\npytest-mlperf: {name}: stopping the workers' tests; their reports "
                         "are being written (again to stop at once)\n")
        for pid in _state.workers:
            try:
                os.kill(pid, signum)
            except OSError:
                pass
        return
    raise KeyboardInterrupt(f"{name} received" if signum != signal.SIGINT else "")


def exit_status(pytest_status: int) -> int:
    """128 + the signal for SIGTERM and SIGHUP (what a shell and CI expect of a process they
    stopped); otherwise pytest's own status (2 for a Ctrl-C)."""
    signum = _state.signum
    if signum is not None and signum != signal.SIGINT:
        return 128 + signum
    return pytest_status


def finish(pytest_status: int, *, threads_left: list[str]) -> None:
    """The last thing the session does: ``os._exit`` when a thread is left running that the
    interpreter's exit could crash on, or when a SIGTERM/SIGHUP must show in the status."""
    if _state.depth:
        return  # a session inside another (pytester in-process): the outer one ends the process
    status = exit_status(pytest_status)
    if not threads_left and status == pytest_status:
        if _state.signum is not None and threading.current_thread() is threading.main_thread():
            # Interrupted, reports written, the interpreter exits normally. It gives the
            # signals back to the system first (a Python handler cannot run any more), so a
            # second Ctrl-C landing there would kill the process (status -2 instead of 2):
            # ignored from here on, by the system.
            for signum in _state.previous:
                signal.signal(signum, signal.SIG_IGN)
        return
    if threads_left:
        sys.stderr.write(f"pytest-mlperf: {', '.join(threads_left)} still running; exiting "
                         "without waiting for it (its logs so far are kept)\n")
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
