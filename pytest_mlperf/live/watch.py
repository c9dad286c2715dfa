"""``python -m pytest_mlperf.watch [OUTPUT]``: a pytest-mlperf session's benchmarks, pending,
starting, running and finished, from its files, on this terminal or another one.

OUTPUT is the session's ``--mlperf-output`` folder (default ``mlperf-results``). The session is
the one ``session.json`` names (written when pytest starts, with the benchmark tests it
collected); its tests without a status file of their own are pending. ``--once`` prints once
and exits (0, or 1 when there is no session). ``--follow`` redraws every ``--interval``
seconds until the session ends and exits with the session's exit status (1 when its pytest
died without one, 130 on Ctrl-C); started before pytest, or on a folder whose last session has
ended, it waits for the next session and never shows the old one as current. Without either it
redraws until the session ends and exits 0. It reads files only: it works while pytest runs,
after it ends, and from another machine that mounts the folder.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from pytest_mlperf.core.place import words as place_words
from pytest_mlperf.live import status as st

#: columns of the finished benchmarks' table (the old monitor's ``results``)
RESULT_HEADINGS = ("state", "test", "tokens/s", "p99 TTFT ms", "p99 TPOT ms", "time")


def session_state(info: st.SessionInfo) -> str:
    """``running``, ``finished`` or ``died`` (its pytest is gone without a final status)."""
    if info.finished is not None:
        return "finished"
    if info.host == socket.gethostname() and not st.pid_alive(info.pid):
        return st.DIED
    return "running"


def describe_session(info: st.SessionInfo | None, statuses: Sequence[st.RunStatus], now: float) -> str:
    if info is None:
        return "session: unknown (no session.json)"
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.started))
    state = session_state(info)
    if state == "finished":
        text = f"finished after {st.clock((info.finished or now) - info.started)}, exit status {info.exitstatus}"
    elif state == st.DIED:
        text = "died (its pytest is gone without a final status)"
    else:
        text = f"running for {st.clock(now - info.started)}"
    total = max(len(info.tests), len(statuses))
    done = sum(s.state in (st.PASSED, st.FAILED) for s in statuses)
    return (f"session {info.id}: {text}; {done} of {total} benchmarks finished; "
            f"pid {info.pid} on {info.host}, started {when}")


def state_of(status: st.RunStatus, now: float, stale_after_s: float = 60.0) -> str:
    if status.active:
        alive = status.alive()
        if alive is False:
            return st.DIED
        if alive is None and now - status.updated > stale_after_s:
            return "stale?"
    return status.state


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def _figure(value: float | None, digits: int = 1) -> str:
    return "" if value is None else f"{value:,.{digits}f}"


def render(output: Path, session: str | None = None, now: float | None = None,
           width: int | None = None) -> str:
    """The screen for ``session`` (default: the one ``session.json`` names), ``width`` columns
    wide (default: this terminal's)."""
    now = time.time() if now is None else now
    width = width or shutil.get_terminal_size().columns
    everything = st.read_statuses(output)
    session = session or st.latest_session(output, everything)
    info = st.read_session(output)
    if info is not None and info.id != session:
        info = None
    statuses = {s.nodeid: s for s in everything if s.session == session}
    lines = [_cut(describe_session(info, list(statuses.values()), now), width)]
    died = info is not None and session_state(info) == st.DIED
    order = list(info.tests) if info is not None else []
    order += [n for n in statuses if n not in order]
    if not order:
        lines.append(f"no benchmark tests collected yet (nor status files in {Path(output) / st.STATUS_DIR})")
        return "\n".join(lines)
    active, finished, pending = [], [], []
    for nodeid in order:
        status = statuses.get(nodeid)
        if status is None:
            pending.append(nodeid)
        elif status.active:
            active.append(status)
        else:
            finished.append(status)
    for status in active:
        state = st.DIED if died else state_of(status, now)
        where = ", ".join(place_words(status.place))
        lines.append(_cut(f"{state:<9} {status.nodeid}" + (f"  ({where})" if where else ""), width))
        lines.append(_cut(" " * 10 + ", ".join(st.progress_parts(status, now)), width))
    if finished:
        rows = [(s.state, s.nodeid, _figure(s.tokens_per_second), _figure(s.ttft_p99_ms),
                 _figure(s.tpot_p99_ms), st.clock(s.elapsed_s)) for s in finished]
        lines.extend(_table(RESULT_HEADINGS, rows, width))
        for status in finished:
            if status.reason:
                lines.append(_cut(f"  {status.test_name}: {status.reason}", width))
    for nodeid in pending:
        lines.append(_cut(f"{st.DIED if died else st.PENDING:<9} {nodeid}", width))
    return "\n".join(lines)


def _table(headings: Sequence[str], rows: Sequence[Sequence[str]], width: int) -> list[str]:
    """Columns as wide as their cells; the test column gives way when the terminal is narrow."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headings)]
    spare = width - (sum(widths) + 2 * (len(widths) - 1))
    if spare < 0:
        widths[1] = max(12, widths[1] + spare)

    def line(cells: Sequence[str]) -> str:
        out = []
        for i, (cell, w) in enumerate(zip(cells, widths, strict=True)):
            cell = _cut(cell, w)
            out.append(cell.ljust(w) if i < 2 else cell.rjust(w))
        return _cut("  ".join(out).rstrip(), width)

    return [line(headings), *(line(r) for r in rows)]


def current(output: Path, old: str | None) -> st.SessionInfo | None:
    """The session ``--follow`` watches: ``session.json``'s, unless it is ``old`` (the one
    that had ended when watch started)."""
    info = st.read_session(output)
    if info is None or info.id == old:
        return None
    return info


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pytest_mlperf.watch", description=__doc__.split("\n\n")[0])
    parser.add_argument("output", nargs="?", default="mlperf-results", type=Path,
                        help="the session's --mlperf-output folder (default: mlperf-results)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--once", action="store_true", help="print once and exit")
    mode.add_argument("--follow", action="store_true",
                      help="redraw until the session ends (waiting for one to start); exit with its exit status")
    parser.add_argument("--interval", type=float, default=2.0, metavar="SECONDS",
                        help="seconds between redraws (default: 2)")
    parser.add_argument("--session", help="a session id (default: the latest)")
    args = parser.parse_args(argv)
    if args.interval <= 0:
        parser.error(f"--interval {args.interval:g}: expected a number of seconds > 0")
    tty = sys.stdout.isatty()
    try:
        if args.follow:
            return _follow(args.output, args.session, args.interval, tty)
        if not (args.output / st.SESSION_FILE).is_file() and not (args.output / st.STATUS_DIR).is_dir():
            print(f"no pytest-mlperf session in {args.output} (no {st.SESSION_FILE}, no {st.STATUS_DIR}/)",
                  file=sys.stderr)
            return 1
        while True:
            _show(render(args.output, args.session), tty and not args.once)
            info = st.read_session(args.output)
            if args.once or info is None or session_state(info) != "running":
                return 0
            time.sleep(args.interval)
    except KeyboardInterrupt:
        return 130


def _show(text: str, redraw: bool) -> None:
    if redraw:
        sys.stdout.write("\x1b[H\x1b[2J")  # redraw in place
    print(text, flush=True)
    if not redraw:
        print(flush=True)


def _follow(output: Path, session: str | None, interval: float, tty: bool) -> int:
    old = None
    if session is None:
        found = st.read_session(output)
        if found is not None and session_state(found) != "running":
            old = found.id  # ended before we started: wait for the next one
    waiting_said = False
    while True:
        info = current(output, old)
        if info is not None and session is not None and info.id != session:
            info = None
        if info is None:
            if not waiting_said:
                last = f" (the last one, {old}, has ended)" if old else ""
                _show(f"waiting for a pytest-mlperf session in {output}{last}", tty)
                waiting_said = True
            time.sleep(interval)
            continue
        _show(render(output, info.id), tty)
        state = session_state(info)
        if state == "finished":
            return int(info.exitstatus or 0)
        if state == st.DIED:
            return 1
        time.sleep(interval)


if __name__ == "__main__":
    sys.exit(main())
