"""Live progress on the controller's terminal while benchmarks run, xdist or not.

It reads the status files the benchmark processes write (:mod:`pytest_mlperf.live.status`), so it
shows what xdist workers do as well as its own process. On a terminal: one line, rewritten
every second below pytest's current line and erased (the cursor put back where pytest left it)
before pytest writes again, as wide as the terminal is now (asked of the terminal itself: while
pytest captures the test's output, ``COLUMNS``-less width queries on the standard streams say
80); what does not fit is left out a phrase at a time, least useful first. Elsewhere (CI logs):
one line per running benchmark every ``--mlperf-progress-interval`` seconds, so a long run is
never silent; its first line for a run waits for the run's true total (or says that the engine
or loadgen is starting), and pytest's own line is not repeated after it.

During a test's call phase pytest captures file descriptor 1; the lines go to a duplicate of
the terminal's descriptor taken at configure time, when capture is suspended.
"""

from __future__ import annotations

import contextlib
import io
import os
import threading
import time
from pathlib import Path
from typing import IO, Any

from pytest_mlperf.core.place import words as place_words
from pytest_mlperf.live import status as st

PREFIX = "[mlperf] "


def _terminal_stream(tw: Any) -> tuple[IO[str], bool]:
    """A stream on pytest's terminal that capture does not redirect (and whether we own it)."""
    file = getattr(tw, "_file", None)
    try:
        fd = os.dup(file.fileno())  # type: ignore[union-attr]
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return file, False  # an in-memory stream (pytester): nothing to dodge
    return os.fdopen(fd, "w", encoding="utf-8", errors="replace", buffering=1), True


class LiveProgress:
    def __init__(self, config: Any, output: Path, session: str, interval_s: float) -> None:
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        self._tw = config.get_terminal_writer()
        self._tty = bool(reporter is not None and reporter.isatty) and os.environ.get("TERM") != "dumb"
        self._output, self._session = output, session
        self._tick = min(1.0, interval_s) if self._tty else interval_s
        self._stream, self._owned = _terminal_stream(self._tw)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._shown = False  # a terminal line is on screen
        self._column = 0  # where pytest left the cursor before we drew
        self._hold_until = 0.0

    @property
    def tty(self) -> bool:
        return self._tty

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="mlperf-live", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            self._clear()
        if self._owned:
            with contextlib.suppress(OSError):
                self._stream.close()

    def pause(self) -> None:
        """Before pytest writes to the terminal (called on the main thread by hooks)."""
        if self._tty:
            with self._lock:
                self._clear()
                self._hold_until = time.monotonic() + 0.3

    def _loop(self) -> None:
        while not self._stop.wait(self._tick):
            try:
                self.draw()
            except (OSError, ValueError):
                return  # the terminal went away; the run goes on

    def draw(self, now: float | None = None) -> None:
        now = time.time() if now is None else now
        running = [s for s in st.read_statuses(self._output, self._session) if s.active]
        with self._lock:
            if self._stop.is_set():
                return  # stopped while reading: the line is cleared and must stay so
            if self._tty:
                if not running:
                    self._clear()
                elif time.monotonic() >= self._hold_until:
                    self._show(one_line(running, now, self.width() - 1))
            elif running:
                self._lines([PREFIX + status_line(s, now) for s in running])

    def width(self) -> int:
        """The terminal's width now (it may have been resized), from the terminal itself."""
        try:
            return os.get_terminal_size(self._stream.fileno()).columns or self._tw.fullwidth
        except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
            return self._tw.fullwidth

    # -- terminal mode -------------------------------------------------------------------------
    def _emit(self, text: str) -> None:
        self._stream.write(text)
        self._stream.flush()

    def _show(self, text: str) -> None:
        if not self._shown:
            self._column = self._tw.width_of_current_line
            self._emit(("\n" if self._column else "") + text + "\x1b[K")
            self._shown = True
        else:
            self._emit("\r" + text + "\x1b[K")

    def _clear(self) -> None:
        if not self._shown:
            return
        back = f"\x1b[1A\x1b[{self._column}C" if self._column else ""
        self._emit("\r\x1b[K" + back)
        self._shown = False

    # -- log mode ------------------------------------------------------------------------------
    def _lines(self, lines: list[str]) -> None:
        # pytest's line (its dots) is not finished: ours go below it; what pytest writes next
        # starts a line of its own (repeating its module name after every heartbeat would
        # bury the heartbeats)
        self._emit(("\n" if self._tw.width_of_current_line else "") + "\n".join(lines) + "\n")


def status_line(status: st.RunStatus, now: float) -> str:
    state = "" if status.state in (st.RUNNING, st.STARTING) else f" ({status.state})"
    where = place_words(status.place)
    where_text = f" ({', '.join(where)})" if where else ""
    return f"{status.nodeid}{where_text}{state}: " + ", ".join(st.progress_parts(status, now))


def one_line(running: list[st.RunStatus], now: float, width: int) -> str:
    """The terminal's line, at most ``width`` characters: whole phrases, the least useful
    left out first (the place in the session, then elapsed time, the test's parameters)."""
    if len(running) == 1:
        status = running[0]
        parts = st.progress_parts(status, now)
        where = place_words(status.place)
        name = status.test_name
        # the order phrases are given up in when the line is too long
        candidates = [
            (name, parts, where),
            (name, parts, where[:1]),
            (name, [p for p in parts if not p.endswith("elapsed")] or parts, where[:1]),
            (name, [p for p in parts if not p.endswith("elapsed")] or parts, []),
            (name.split("[", 1)[0], [p for p in parts if not p.endswith("elapsed")] or parts, []),
        ]
        texts = []
        for test, shown, place in candidates:
            head = f"{PREFIX}{' · '.join(place)} · {test}" if place else f"{PREFIX}{test}"
            texts.append(f"{head}: " + " · ".join(shown))
    else:
        shares = []
        for status in running:
            if status.state == st.STARTING:
                done = "starting engine"
            else:
                done = (f"{100 * status.completed / status.expected:.0f}%" if status.expected
                        else f"{status.completed}q")
            eta = f" ~{st.clock(status.eta_s)}" if status.eta_s is not None else ""
            shares.append(f"{status.test_name} {done}{eta}")
        texts = [f"{PREFIX}{len(running)} running: " + " | ".join(shares)]
    for text in texts:
        if len(text) <= width:
            return text
    text = texts[-1]
    return text[: max(width - 1, 0)] + "…"
