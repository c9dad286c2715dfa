"""Stored sessions: every saved session's records, per machine, numbered, never overwritten.

Layout (the folder is ``--mlperf-storage``, default ``.mlperf``)::

    <storage>/<machine id>/0001_<label>.json   {"schema": 1, "machine": ..., "commit": ...,
    <storage>/<machine id>/0002_<label>.json    "saved": ISO time, "records": [record, ...]}

``<label>`` is ``--mlperf-save=NAME``, else the commit under test (12 hex digits, ``-dirty``
with uncommitted changes). The machine id is stable for the same hardware (GPU model and
count, else CPU model and core count): results from one runner compare with that runner's
history, not with a laptop's. Imports nothing heavy.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pytest_mlperf.core.record import BenchmarkRecord, Device, RecordError

FORMAT = 1
_NAME = re.compile(r"^(\d{4,})_(.+)\.json$")


class StorageError(ValueError):
    """A stored session that cannot be read or found; the message names the file."""


def machine_id(device: Device) -> str:
    """``h200x8-<hash>`` or ``cpu-amd-epyc-7b13-2c-<hash>``: readable, and unique per hardware."""
    if device.gpus:
        kind = f"{_slug(device.gpus[0])[:32]}x{device.gpu_count}"
    else:
        kind = f"cpu-{_slug(device.cpu)[:32].strip('-')}-{device.cpu_cores}c"
    digest = hashlib.sha256(json.dumps([list(device.gpus), device.cpu, device.cpu_cores]).encode())
    return f"{kind}-{digest.hexdigest()[:8]}"


def _slug(text: str) -> str:
    text = re.sub(r"^(nvidia|amd|intel)\s+", "", text.strip(), flags=re.I)
    text = re.sub(r"\((r|tm)\)|\bcpu\b|@.*$", " ", text, flags=re.I)
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "unknown"


def label_for(commit: str | None) -> str:
    """The file label a commit gives: ``3f2a9c1b0d4e`` or ``3f2a9c1b0d4e-dirty``."""
    if not commit:
        return "nocommit"
    head, _, rest = commit.partition("+")
    return head[:12] + ("-dirty" if "dirty" in rest else "")


@dataclass(frozen=True)
class StoredSession:
    path: Path
    number: int
    machine: str
    commit: str | None
    saved: str
    records: tuple[BenchmarkRecord, ...]
    #: node id -> {QSL index: output token ids} of its accuracy runs (``--mlperf-compare-fail=outputs``)
    outputs: dict[str, dict[str, list[int]]] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """How reports name it: ``<machine>/0003_<label>.json``."""
        return f"{self.machine}/{self.path.name}"


def sessions(folder: Path) -> list[tuple[int, Path]]:
    """The numbered session files of one machine's folder, oldest first."""
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        m = _NAME.match(path.name)
        if m and path.is_file():
            found.append((int(m.group(1)), path))
    return sorted(found)


def save(storage: Path, records: Sequence[BenchmarkRecord], *, commit: str | None,
         label: str | None = None, outputs: dict[str, dict[str, list[int]]] | None = None) -> Path:
    """Write a new numbered file for ``records`` under their machine's folder; an existing
    file is never replaced (two sessions saving at once get two numbers)."""
    if not records:
        raise StorageError("no benchmark records to save")
    machine = machine_id(records[0].system.device)
    folder = storage / machine
    folder.mkdir(parents=True, exist_ok=True)
    data = {
        "schema": FORMAT, "machine": machine, "commit": commit,
        "saved": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "records": [r.to_json() for r in records],
        "outputs": outputs or {},
    }
    tag = re.sub(r"[^A-Za-z0-9_.-]+", "-", label or label_for(commit)).strip("-.")[:40] or "nocommit"
    with tempfile.NamedTemporaryFile("w", dir=folder, prefix=".saving-", suffix=".tmp",
                                     delete=False, encoding="utf-8") as tmp:
        json.dump(data, tmp, indent=1, sort_keys=True)
    try:
        found = sessions(folder)
        number = (found[-1][0] if found else 0) + 1
        while True:
            target = folder / f"{number:04d}_{tag}.json"
            if _claim(Path(tmp.name), target):
                return target
            number += 1
    finally:
        if os.path.exists(tmp.name):
            os.unlink(tmp.name)


def _claim(source: Path, target: Path) -> bool:
    """Give ``source``'s content the name ``target`` unless that name exists (atomically
    where the file system has hard links)."""
    try:
        os.link(source, target)
        return True
    except FileExistsError:
        return False
    except OSError:
        pass  # no hard links here (some CI caches): exclusive create, then the content
    try:
        with open(target, "x", encoding="utf-8") as out:
            out.write(source.read_text(encoding="utf-8"))
        return True
    except FileExistsError:
        return False


def load(path: Path) -> StoredSession:
    m = _NAME.match(path.name)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StorageError(f"{path}: cannot read a stored session ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("records"), list):
        raise StorageError(f"{path}: not a pytest-mlperf stored session")
    if data.get("schema") != FORMAT:
        raise StorageError(f"{path}: stored session format {data.get('schema')!r}; this "
                           f"pytest-mlperf reads format {FORMAT}")
    try:
        records = tuple(BenchmarkRecord.from_json(r) for r in data["records"])
    except RecordError as exc:
        raise StorageError(f"{path}: {exc}") from None
    return StoredSession(path=path, number=int(m.group(1)) if m else 0, machine=str(data.get("machine")),
                         commit=data.get("commit"), saved=str(data.get("saved", "")), records=records,
                         outputs=data.get("outputs") if isinstance(data.get("outputs"), dict) else {})


class NoStoredSession(StorageError):
    """Nothing stored yet for this machine (the first pipeline on a runner): not an error for
    ``--mlperf-compare=last``; a stored file that cannot be read is one."""


def find(storage: Path, machine: str, which: str | None) -> StoredSession:
    """The stored session ``which`` names: None or ``last`` (this machine's newest), a number
    (``3`` or ``0003``), a label or commit prefix (the newest file whose label starts with it),
    a file name under this machine's folder, or a path to any file."""
    folder = storage / machine
    found = sessions(folder)
    if which in (None, "", "last"):
        if not found:
            raise NoStoredSession(
                f"no stored session for this machine ({machine}) in {storage}: run once with "
                "--mlperf-save first"
            )
        return load(found[-1][1])
    assert which is not None
    if which.isdigit():
        for number, path in found:
            if number == int(which):
                return load(path)
    path = Path(which).expanduser()
    if path.is_file():
        return load(path)
    if (folder / which).is_file():
        return load(folder / which)
    labelled = [p for _, p in found if _NAME.match(p.name).group(2).startswith(which)]  # type: ignore[union-attr]
    if labelled:
        return load(labelled[-1])
    have = ", ".join(p.name for _, p in found[-5:]) or "none"
    raise StorageError(f"no stored session {which!r}: not a number, label, commit or file in "
                       f"{folder} (newest there: {have})")
