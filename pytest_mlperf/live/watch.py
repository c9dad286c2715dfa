"""``python -m pytest_mlperf.watch [OUTPUT]``: every running and finished benchmark of a
pytest-mlperf session, from its status files, on this terminal or another one.

OUTPUT is the session's ``--mlperf-output`` folder (default ``mlperf-results``). By default it
redraws every ``--interval`` seconds until the session ends; ``--once`` prints once and exits.
It reads files only: it works while pytest runs, after it ends, and from another machine
that mounts the folder. Exit status 0, or 1 when it found no session.
"""

from __future__ import annotations

import argparse
import socket
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from pytest_mlperf.live import status as st

HEADINGS = ("state", "test", "progress")


def describe_session(info: st.SessionInfo | None, statuses: Sequence[st.RunStatus], now: float) -> str:
    if info is None:
        return "session: unknown (no session.json)"
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.started))
    if info.finished is not None:
        state = f"finished after {st.clock(info.finished - info.started)}, exit status {info.exitstatus}"
    elif info.host == socket.gethostname() and not st.pid_alive(info.pid):
        state = "stopped (its pytest process is gone)"
    else:
        state = f"running for {st.clock(now - info.started)}"
    done = sum(not s.active for s in statuses)
    return f"session {info.id} on {info.host}, started {when}: {state}; {done} of {len(statuses)} benchmarks finished"


def state_of(status: st.RunStatus, now: float, stale_after_s: float = 60.0) -> str:
    if status.active:
        alive = status.alive()
        if alive is False:
            return "died"
        if alive is None and now - status.updated > stale_after_s:
            return "stale?"
    return status.state


def render(output: Path, session: str | None = None, now: float | None = None, width: int = 120) -> str:
    now = time.time() if now is None else now
    everything = st.read_statuses(output)
    session = session or st.latest_session(output, everything)
    info = st.read_session(output)
    if info is not None and info.id != session:
        info = None
    statuses = [s for s in everything if s.session == session]
    lines = [describe_session(info, statuses, now)]
    if not statuses:
        lines.append(f"no benchmark status files in {Path(output) / st.STATUS_DIR}")
        return "\n".join(lines)
    rows = []
    for status in statuses:
        figures = ", ".join(st.progress_parts(status, now))
        if status.reason:
            figures += f" | {status.reason}"
        rows.append((state_of(status, now), status.nodeid, figures))
    state_width = max(len(HEADINGS[0]), *(len(r[0]) for r in rows))
    for state, nodeid, figures in rows:
        lines.append(f"{state.ljust(state_width)}  {nodeid}")
        lines.append(_cut(f"{' ' * state_width}  {figures}", width))
    return "\n".join(lines)


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def finished(output: Path, session: str | None) -> bool:
    info = st.read_session(output)
    if info is None or (session and info.id != session):
        return False
    if info.finished is not None:
        return True
    return info.host == socket.gethostname() and not st.pid_alive(info.pid)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pytest_mlperf.watch", description=__doc__.split("\n\n")[0])
    parser.add_argument("output", nargs="?", default="mlperf-results", type=Path,
                        help="the session's --mlperf-output folder (default: mlperf-results)")
    parser.add_argument("--once", action="store_true", help="print once and exit")
    parser.add_argument("--interval", type=float, default=2.0, metavar="SECONDS",
                        help="seconds between redraws (default: 2)")
    parser.add_argument("--session", help="a session id (default: the latest)")
    args = parser.parse_args(argv)
    if not (args.output / st.SESSION_FILE).is_file() and not (args.output / st.STATUS_DIR).is_dir():
        print(f"no pytest-mlperf session in {args.output} (no {st.SESSION_FILE}, no {st.STATUS_DIR}/)",
              file=sys.stderr)
        return 1
    tty = sys.stdout.isatty()
    try:
        while True:
            text = render(args.output, args.session)
            if tty and not args.once:
                sys.stdout.write("\x1b[H\x1b[2J")  # redraw in place
            print(text, flush=True)
            if args.once or finished(args.output, args.session):
                return 0
            if not tty:
                print(flush=True)
            time.sleep(args.interval)
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
