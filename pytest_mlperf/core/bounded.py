"""Calls that must end: an engine's start and close, and loadgen's run, each on a thread of its
own, waited for in short slices so that a deadline or a Ctrl-C reaches the main thread at once.

A thread that does not finish in time is *abandoned*: the caller moves on and the thread is
left to finish (or not) in the background. One kind cannot be left at exit: a loadgen run
still issuing queries calls back into Python from C++, which crashes the interpreter while it
shuts down. :func:`exit_if_unsafe` ends such a process with ``os._exit`` once pytest has
written its reports (the plugin calls it last, in ``pytest_unconfigure``).
"""

from __future__ import annotations

import os
import sys
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


def wait(done: threading.Event, timeout_s: float | None) -> bool:
    """``done.wait(timeout_s)`` that a Ctrl-C interrupts at once (KeyboardInterrupt)."""
    import time

    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        left = SLICE_S if deadline is None else min(SLICE_S, deadline - time.monotonic())
        if left <= 0:
            return done.is_set()
        if done.wait(left):
            return True


def call(fn: Callable[[], T], *, timeout_s: float | None, what: str) -> T:
    """``fn()`` on a thread of its own; :class:`DeadlineExceeded` after ``timeout_s`` (None:
    no limit). A Ctrl-C abandons the thread and raises KeyboardInterrupt here at once."""
    box: dict[str, object] = {}
    done = threading.Event()

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            box["error"] = exc
        finally:
            done.set()

    thread = threading.Thread(target=target, name=f"mlperf: {what}", daemon=True)
    thread.start()
    try:
        finished = wait(done, timeout_s)
    except KeyboardInterrupt:
        abandon(thread, what)
        raise
    if not finished:
        abandon(thread, what)
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


def exit_if_unsafe(config: pytest.Config, grace_s: float = 2.0) -> None:
    """End the process now when an abandoned thread would crash its normal exit (a loadgen run
    still going), with the session's exit status; reports are written by then."""
    with _lock:
        unsafe = [a for a in _abandoned if a.unsafe_at_exit]
    for item in unsafe:
        item.thread.join(grace_s)
    alive = [a.what for a in unsafe if a.thread.is_alive()]
    if not alive:
        return
    status = config.stash.get(EXIT_STATUS, int(pytest.ExitCode.INTERRUPTED))
    sys.stderr.write(f"pytest-mlperf: {', '.join(alive)} still running; exiting without "
                     "waiting for it (its logs so far are kept)\n")
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
