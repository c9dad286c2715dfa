"""Stored sessions: per machine, numbered, never overwritten (also by two sessions at once),
refused with the file named when they cannot be read."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from pytest_mlperf.core.record import BenchmarkRecord, Device, Run, System, Verdict
from pytest_mlperf.gate import storage

H200 = Device(cpu="Intel(R) Xeon(R) Platinum 8480C CPU @ 2.00GHz", cpu_cores=224,
              gpus=("NVIDIA H200",) * 8, driver="570.1", cuda="12.8")


def _record(device: Device = H200, nodeid: str = "t.py::t[Offline-performance]") -> BenchmarkRecord:
    return BenchmarkRecord(benchmark="llama3.1-8b", scenario="Offline", mode="performance",
                           profile="quick", system=System(backend="vllm", model="m", device=device),
                           run=Run(outdir="o"), verdict=Verdict(True), nodeid=nodeid)


def test_machine_ids_are_readable_and_stable() -> None:
    gpu = storage.machine_id(H200)
    assert gpu.startswith("h200x8-") and gpu == storage.machine_id(H200)
    cpu = storage.machine_id(Device(cpu="AMD EPYC 7B13 64-Core Processor", cpu_cores=2))
    assert cpu.startswith("cpu-epyc-7b13-64-core-processor-2c-")
    assert storage.machine_id(Device(cpu="AMD EPYC 7B13 64-Core Processor", cpu_cores=4)) != cpu
    # The driver is not the hardware: an upgrade keeps the history.
    assert storage.machine_id(Device(cpu=H200.cpu, cpu_cores=224, gpus=H200.gpus, driver="580.0")) == gpu


def test_concurrent_saves_never_overwrite(tmp_path: Path) -> None:
    paths: list[Path] = []
    lock = threading.Lock()

    def save(i: int) -> None:
        path = storage.save(tmp_path, [_record(nodeid=f"t{i}")], commit="abc")
        with lock:
            paths.append(path)

    threads = [threading.Thread(target=save, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(paths)) == 8
    assert sorted(p.name for p in paths) == [f"{n:04d}_abc.json" for n in range(1, 9)]
    assert {storage.load(p).records[0].nodeid for p in paths} == {f"t{i}" for i in range(8)}


def test_saving_without_hard_links_still_never_overwrites(tmp_path: Path, monkeypatch) -> None:
    def no_links(*_args):
        raise OSError(1, "Operation not permitted")

    monkeypatch.setattr(storage.os, "link", no_links)
    first = storage.save(tmp_path, [_record()], commit=None)
    second = storage.save(tmp_path, [_record()], commit=None)
    assert (first.name, second.name) == ("0001_nocommit.json", "0002_nocommit.json")
    assert storage.load(second).records == (_record(),)


@pytest.mark.parametrize(("content", "message"), [
    ("{not json", "cannot read a stored session"),
    ('{"records": 3}', "not a pytest-mlperf stored session"),
    ('{"schema": 9, "records": []}', "stored session format 9; this pytest-mlperf reads format 1"),
    ('{"schema": 1, "records": [{"schema_version": 1}]}', "record: the field 'benchmark' is missing"),
])
def test_unreadable_sessions_name_the_file(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "0001_x.json"
    path.write_text(content)
    with pytest.raises(storage.StorageError, match=message) as info:
        storage.load(path)
    assert str(path) in str(info.value)


def test_find_by_last_number_label_file_or_nothing(tmp_path: Path) -> None:
    machine = storage.machine_id(H200)
    with pytest.raises(storage.StorageError, match="no stored session for this machine .*--mlperf-save first"):
        storage.find(tmp_path, machine, "last")
    a = storage.save(tmp_path, [_record()], commit="1111aaaa", label=None)
    b = storage.save(tmp_path, [_record()], commit="2222bbbb", label="nightly")
    assert storage.find(tmp_path, machine, None).path == b
    assert storage.find(tmp_path, machine, "0001").path == a
    assert storage.find(tmp_path, machine, "nightly").path == b
    assert storage.find(tmp_path, machine, "1111").path == a
    assert storage.find(tmp_path, machine, str(a)).path == a
    assert storage.find(tmp_path, machine, a.name).path == a
    with pytest.raises(storage.StorageError, match="no stored session 'weekly'.*newest there: 0001_1111aaaa.json, 0002_nightly.json"):
        storage.find(tmp_path, machine, "weekly")
    data = json.loads(b.read_text())
    assert data["machine"] == machine and data["commit"] == "2222bbbb" and data["schema"] == 1
