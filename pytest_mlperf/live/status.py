"""Status files: what a running benchmark is doing, readable from outside the pytest process.

Every benchmark run keeps one small JSON file, ``<output>/status/<test>.json``, replaced
atomically (written beside it, then ``os.replace``) about once a second while loadgen runs and
once more when the test ends; ``<output>/session.json`` says which pytest session wrote the
latest ones and whether it has finished. The terminal's live progress line (on the controller,
also under xdist) and ``python -m pytest_mlperf.watch`` read these files and nothing else.

A leaf module: it imports nothing of the package and nothing heavy.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STATUS_DIR = "status"
SESSION_FILE = "session.json"
#: states a run goes through; the last two are final. ``starting``: its engine is loading.
STARTING, RUNNING, SCORING, PASSED, FAILED = "starting", "running", "scoring", "passed", "failed"
ACTIVE = (STARTING, RUNNING, SCORING)
#: what ``watch`` says of a collected test without a status file yet, and of a run (or a
#: session) whose process is gone without a final state
PENDING, DIED = "pending", "died"


@dataclass(frozen=True)
class SessionInfo:
    """The pytest session (its controller) that runs the benchmarks."""

    id: str
    started: float
    pid: int
    host: str
    command: str = ""
    finished: float | None = None
    exitstatus: int | None = None
    #: the session's benchmark tests (node ids) as collected: those without a status file of
    #: this session are pending
    tests: list[str] = dataclasses.field(default_factory=list)

    @classmethod
    def new(cls, command: str = "") -> SessionInfo:
        now = time.time()
        stamp = time.strftime("%Y%m%dT%H%M%S", time.localtime(now))
        return cls(id=f"{stamp}-{os.getpid()}", started=now, pid=os.getpid(),
                   host=socket.gethostname(), command=command)


@dataclass(frozen=True)
class RunStatus:
    """One benchmark run as its process last saw it."""

    session: str
    nodeid: str
    benchmark: str
    scenario: str
    mode: str
    state: str
    outdir: str = ""
    issued: int = 0
    completed: int = 0
    #: queries the run is expected to complete (None when not known yet)
    expected: int | None = None
    output_tokens: int = 0
    elapsed_s: float = 0.0
    eta_s: float | None = None
    tokens_per_second: float = 0.0
    ttft_p99_ms: float | None = None
    tpot_p99_ms: float | None = None
    #: why a failed run failed (the verdict's reasons)
    reason: str | None = None
    pid: int = 0
    host: str = ""
    #: xdist worker id, or "main"
    worker: str = "main"
    started: float = 0.0
    updated: float = 0.0
    #: where the run stands in its session (:class:`pytest_mlperf.core.place.Place` as JSON)
    place: dict[str, Any] | None = None

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    @property
    def test_name(self) -> str:
        """``test_x[Offline-performance]``: the node id after its last ``::``."""
        return self.nodeid.rsplit("::", 1)[-1]

    def alive(self) -> bool | None:
        """Whether the process that writes this status still runs (None: another host)."""
        if self.host != socket.gethostname() or self.pid <= 0:
            return None
        return pid_alive(self.pid)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# -- files -------------------------------------------------------------------------------------

def file_name(nodeid: str) -> str:
    """A file name for a test: readable, and unique (a short hash of the node id)."""
    readable = re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid).strip("_")[:100]
    return f"{readable}-{hashlib.sha1(nodeid.encode()).hexdigest()[:8]}.json"


def status_path(output: Path, nodeid: str) -> Path:
    return Path(output) / STATUS_DIR / file_name(nodeid)


def write_json_atomic(path: Path, data: Any) -> None:
    """Replace ``path`` by ``data`` in one step: a reader sees the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def _from_dict(cls: type, data: Any) -> Any:
    if not isinstance(data, dict):
        return None
    names = {f.name for f in dataclasses.fields(cls)}
    try:
        return cls(**{k: v for k, v in data.items() if k in names})
    except TypeError:  # a field missing: not a file of ours
        return None


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def write_status(path: Path, status: RunStatus) -> None:
    write_json_atomic(path, dataclasses.asdict(status))


def read_statuses(output: Path, session: str | None = None) -> list[RunStatus]:
    """Every readable status under ``output`` (of ``session`` when given), by start time."""
    folder = Path(output) / STATUS_DIR
    found = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else ():
        status = _from_dict(RunStatus, _read(path))
        if status is not None and (session is None or status.session == session):
            found.append(status)
    return sorted(found, key=lambda s: (s.started, s.nodeid))


def write_session(output: Path, info: SessionInfo) -> None:
    write_json_atomic(Path(output) / SESSION_FILE, dataclasses.asdict(info))


def read_session(output: Path) -> SessionInfo | None:
    return _from_dict(SessionInfo, _read(Path(output) / SESSION_FILE))


# -- words -------------------------------------------------------------------------------------

def clock(seconds: float | None) -> str:
    """``75`` -> ``1:15``; ``3725`` -> ``1:02:05``."""
    if seconds is None:
        return "?"
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def progress_parts(status: RunStatus, now: float | None = None) -> list[str]:
    """The figures of a running benchmark, as short phrases."""
    elapsed = status.elapsed_s
    if status.active and now is not None and status.started:
        elapsed = max(elapsed, now - status.started)
    if status.state == STARTING:
        return ["starting engine", f"{clock(elapsed)} elapsed"]
    parts = []
    if not status.expected and not status.issued and status.state == RUNNING:
        return ["loadgen starting", f"{clock(elapsed)} elapsed"]  # no total to show yet
    if status.expected:
        percent = 100.0 * status.completed / status.expected
        parts.append(f"{status.completed}/{status.expected} queries ({min(percent, 100.0):.0f}%)")
    else:
        parts.append(f"{status.completed}/{status.issued} queries")
    parts.append(f"{status.tokens_per_second:,.1f} tokens/s")
    parts.append(f"{clock(elapsed)} elapsed")
    if status.state == RUNNING and status.eta_s is not None:
        parts.append(f"~{clock(status.eta_s)} left")
    if status.ttft_p99_ms is not None:
        parts.append(f"p99 TTFT {status.ttft_p99_ms:,.1f} ms")
    if status.tpot_p99_ms is not None:
        parts.append(f"p99 TPOT {status.tpot_p99_ms:,.1f} ms")
    return parts


def latest_session(output: Path, statuses: Iterable[RunStatus]) -> str | None:
    """The session whose benchmarks ``watch`` shows: ``session.json``'s, else the newest."""
    info = read_session(output)
    if info is not None:
        return info.id
    newest = max(statuses, key=lambda s: s.updated, default=None)
    return newest.session if newest is not None else None
