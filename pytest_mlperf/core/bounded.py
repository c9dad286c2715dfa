"""Calls that must end: an engine's start and close, and loadgen's run, each on a thread of its
own, waited for in short slices so that a deadline or a Ctrl-C reaches the main thread at once.

A thread that does not finish in time is *abandoned*: the caller moves on and the thread is
left to finish (or not) in the background. One kind cannot be left at exit: a loadgen run
still issuing queries calls back into Python from C++, which crashes the interpreter while it
shuts down. :func:`exit_if_unsafe` ends such a process with ``os._exit`` once pytest has
written its reports (the plugin calls it last, in ``pytest_unconfigure``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import pytest

T = TypeVar("T")

#: the session's exit status, kept for :func:`exit_if_unsafe`
EXIT_STATUS = pytest.StashKey[int]()
#: how often a waiting main thread wakes, so that a Ctrl-C is handled promptly
SLICE_S = 0.2


class DeadlineExceeded(TimeoutError):
    """A bounded call that did not finish in time; its thread was abandoned."""


@dataclass(frozen=True)
class _Abandoned:
    thread: threading.Thread
    what: str
    #: the thread may call into Python from C++ (loadgen): the process cannot exit normally
    unsafe_at_exit: bool


_abandoned: list[_Abandoned] = []
_lock = threading.Lock()


def wait(done: threading.Event, timeout_s: float | None, *, hurry: bool = False) -> bool:
    """``done.wait(timeout_s)`` that a Ctrl-C interrupts at once (KeyboardInterrupt); with
    ``hurry``, a second signal (:data:`.shutdown.HURRY`) ends the wait too, unfinished."""
    import time

    from pytest_mlperf.core.shutdown import HURRY

    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        left = SLICE_S if deadline is None else min(SLICE_S, deadline - time.monotonic())
        if left <= 0 or (hurry and HURRY.is_set()):
            return done.is_set()
        if done.wait(left):
            return True


def call(fn: Callable[[], T], *, timeout_s: float | None, what: str, hurry: bool = False) -> T:
    """``fn()`` on a thread of its own; :class:`DeadlineExceeded` after ``timeout_s`` (None:
    no limit), or at a second signal with ``hurry``. A Ctrl-C abandons the thread and raises
    KeyboardInterrupt here at once."""
    box: dict[str, object] = {}
    done = threading.Event()

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            box["error"] = exc
        finally:
            done.set()

    from pytest_mlperf.core.shutdown import HURRY

    thread = threading.Thread(target=target, name=f"mlperf: {what}", daemon=True)
    thread.start()
    try:
        finished = wait(done, timeout_s, hurry=hurry)
    except KeyboardInterrupt:
        abandon(thread, what)
        raise
    if not finished:
        abandon(thread, what)
        if hurry and HURRY.is_set():
            raise DeadlineExceeded(f"{what} was abandoned at a second signal")
        raise DeadlineExceeded(f"{what} did not finish within {timeout_s:g} s")
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]


def abandon(thread: threading.Thread, what: str, *, unsafe_at_exit: bool = False) -> None:
    with _lock:
        _abandoned.append(_Abandoned(thread, what, unsafe_at_exit))


def abandoned(*, unsafe_only: bool = False) -> list[str]:
    """What was abandoned and still runs."""
    with _lock:
        return [a.what for a in _abandoned
                if a.thread.is_alive() and (a.unsafe_at_exit or not unsafe_only)]


def exit_if_unsafe(config: pytest.Config, grace_s: float = 2.0, *, interrupted: bool = False) -> None:
    """The session's last act (:func:`.shutdown.finish`): end the process now when an abandoned
    thread would crash its normal exit (a loadgen run still going; after an interrupt, any
    thread left behind, such as an engine still generating), with the session's exit status,
    or 128 + the signal after SIGTERM/SIGHUP. Reports are written by then."""
    from pytest_mlperf.core import shutdown

    with _lock:
        watched = [a for a in _abandoned if a.unsafe_at_exit or interrupted]
    for item in watched:
        item.thread.join(grace_s if item.unsafe_at_exit else 0.0)
    alive = [a.what for a in watched if a.thread.is_alive()]
    status = config.stash.get(EXIT_STATUS, int(pytest.ExitCode.INTERRUPTED))
    shutdown.finish(status, threads_left=alive)
