"""Workers on other hosts (``pytest -d --tx ssh=...``, ``--tx socket=...``, ``--tx
popen//chdir=...``): their run folders and status files come back to the controller.

The controller hands each worker its ``--mlperf-output`` folder and a token through
``workerinput``, and leaves the token in that folder. A worker that resolves the same folder and
finds the token there shares the controller's file system (one host, or a shared mount) and
does nothing more. Any other worker writes its runs under its own ``--mlperf-output`` on its
host; at the end of each benchmark test it packs that test's new run folders and its status
file into the test report (a zip, as bytes: xdist carries reports over execnet). The controller
unpacks them under its own output into a new ``run_<n>`` of the same test folder (never over an
earlier session's), rewrites the paths in the record and details the report carries, and notes
in the record where the files were first written (``worker_outdir``: ``host:folder``). The
records, the JSON, the summary and the submission tree are then made on the controller from
its own copies, as in a local session. A worker that dies mid-test leaves that test's files on
its host, under its own ``--mlperf-output`` (xdist's report of the crash names the worker).
"""

from __future__ import annotations

import io
import json
import os
import re
import socket
import uuid
import zipfile
from pathlib import Path
from typing import Any

import pytest

from pytest_mlperf.core import details as run_details
from pytest_mlperf.core import record as core_record
from pytest_mlperf.core import stash
from pytest_mlperf.live import status as st

#: workerinput keys: the controller's output folder and the token left in it
OUTPUT_KEY = "mlperf_controller_output"
TOKEN_KEY = "mlperf_controller_token"
#: the file the controller leaves in its output: this prefix and the token (one per session,
#: so two sessions sharing an output folder never see each other's)
TOKEN_FILE = ".mlperf-controller-"
#: the report attribute that carries a remote worker's files (popped on the controller)
FILES_ATTRIBUTE = "mlperf_files"


def register(config: pytest.Config) -> None:
    """On an xdist controller: hand out the output folder; on a worker off the controller's
    file system: send each test's files back."""
    if not config.pluginmanager.hasplugin("xdist"):
        return
    workerinput = getattr(config, "workerinput", None)
    if workerinput is None:
        if config.getoption("dist", "no") != "no" and config.getoption("tx", None):
            config.pluginmanager.register(ControllerFiles(config), "mlperf-remote-controller")
        return
    if OUTPUT_KEY in workerinput and not shares_output(config, workerinput):
        config.pluginmanager.register(WorkerFiles(config), "mlperf-remote-worker")


def shares_output(config: pytest.Config, workerinput: dict[str, Any]) -> bool:
    own = config.stash[stash.OPTIONS].output
    if str(own) != workerinput[OUTPUT_KEY]:
        return False
    return (own / (TOKEN_FILE + workerinput[TOKEN_KEY])).is_file()


def _outdirs(record: core_record.BenchmarkRecord) -> list[str]:
    found = [record.run.outdir, *(a.outdir for a in record.repeats), *(c.outdir for c in record.compliance)]
    if record.peak is not None:
        found += [a.outdir for a in record.peak.attempts]
    return [d for d in found if d]


def run_folders(output: Path, record: core_record.BenchmarkRecord) -> list[str]:
    """The ``<test folder>/run_<n>`` folders (relative to ``output``) a record's runs used."""
    folders: list[str] = []
    for outdir in _outdirs(record):
        try:
            parts = Path(outdir).resolve().relative_to(output.resolve()).parts
        except ValueError:
            continue
        if len(parts) >= 2 and "/".join(parts[:2]) not in folders:
            folders.append("/".join(parts[:2]))
    return folders


class WorkerFiles:
    """On a worker whose output the controller cannot see."""

    def __init__(self, config: pytest.Config) -> None:
        self.output: Path = config.stash[stash.OPTIONS].output
        self.host = socket.gethostname()

    # Outermost, so that the status file is finished and the record attached when it packs.
    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
        report = yield
        if call.when == "call":
            record = core_record.from_report(report)
            if record is not None:
                setattr(report, FILES_ATTRIBUTE, self.pack(record, report.nodeid))
        return report

    def pack(self, record: core_record.BenchmarkRecord, nodeid: str) -> dict[str, Any]:
        buffer = io.BytesIO()
        folders = run_folders(self.output, record)
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
            for folder in folders:
                for path in sorted((self.output / folder).rglob("*")):
                    if path.is_file():
                        archive.write(path, path.relative_to(self.output).as_posix())
            status = st.status_path(self.output, nodeid)
            if status.is_file():
                archive.write(status, status.relative_to(self.output).as_posix())
        return {"host": self.host, "output": str(self.output), "folders": folders, "zip": buffer.getvalue()}


class ControllerFiles:
    """On the controller: the token, and the files of remote workers unpacked from reports."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.output: Path = config.stash[stash.OPTIONS].output
        self.token = uuid.uuid4().hex
        self._token_written = False

    def _write_token(self) -> None:
        if not self._token_written:
            self.output.mkdir(parents=True, exist_ok=True)
            (self.output / (TOKEN_FILE + self.token)).touch()
            self._token_written = True

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        self._write_token()  # before the worker starts: it looks for it in its configure
        node.workerinput[OUTPUT_KEY] = str(self.output)
        node.workerinput[TOKEN_KEY] = self.token

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if self._token_written:
            (self.output / (TOKEN_FILE + self.token)).unlink(missing_ok=True)

    # First, so the record collector, the report plugins and JUnit see the controller's paths.
    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        sent = report.__dict__.pop(FILES_ATTRIBUTE, None)
        if sent:
            unpack(self.output, report, sent)


def unpack(output: Path, report: Any, sent: dict[str, Any]) -> None:
    """Write a remote worker's files under ``output`` and point the report's record and details
    at them."""
    from pytest_mlperf.run.benchmark import new_run_dir

    remote_output = sent["output"].rstrip("/")
    moves: dict[str, str] = {}
    for folder in sent["folders"]:
        test_folder = folder.split("/")[0]
        moves[folder] = new_run_dir(output / test_folder).relative_to(output).as_posix()
    with zipfile.ZipFile(io.BytesIO(sent["zip"])) as archive:
        for name in archive.namelist():
            target = next((moves[f] + name[len(f):] for f in moves if name.startswith(f + "/")), name)
            path = output / target
            if not path.resolve().is_relative_to(output.resolve()):
                continue  # never outside the output folder, whatever a worker sent
            path.parent.mkdir(parents=True, exist_ok=True)
            data = archive.read(name)
            if name.startswith(st.STATUS_DIR + "/"):
                data = _moved(data.decode("utf-8"), remote_output, str(output), moves).encode("utf-8")
            path.write_bytes(data)
    first = next(iter(sent["folders"]), "")
    report.user_properties = [
        (name, _moved(value, remote_output, str(output), moves) if isinstance(value, str) else value)
        for name, value in report.user_properties
    ]
    for i, (name, value) in enumerate(report.user_properties):
        if name == core_record.PROPERTY:
            data = json.loads(value)
            data["worker_outdir"] = f"{sent['host']}:{remote_output}/{first}"
            report.user_properties[i] = (name, json.dumps(data, sort_keys=True))
    found = getattr(report, run_details.ATTRIBUTE, None)
    if found is not None:
        setattr(report, run_details.ATTRIBUTE,
                json.loads(_moved(json.dumps(found), remote_output, str(output), moves)))


def _moved(text: str, remote_output: str, output: str, moves: dict[str, str]) -> str:
    for old, new in moves.items():  # run_1 is not run_10: the folder ends at "/" or the string
        text = re.sub(re.escape(f"{remote_output}/{old}") + r'(?=/|"|$)', f"{output}/{new}", text)
    return text.replace(remote_output + os.sep, output + os.sep)
