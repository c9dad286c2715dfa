"""pytest-xdist as a first-class mode: every worker pinned to devices of its own, and each
benchmark module's tests kept on one worker, so they share its engine.

On the controller, ``pytest_configure_node`` gives worker ``gw<i>`` the ``i``-th slice of
``--mlperf-gpus-per-worker`` devices (default 1) through ``workerinput``. The devices are
the GPUs ``nvidia-smi`` lists, restricted to the controller's ``CUDA_VISIBLE_DEVICES`` when set;
a machine without GPUs gets numbered ids (``0``, ``1``, ...) through the same code, which is how
a CPU machine tests it. The worker sets ``CUDA_VISIBLE_DEVICES`` in its ``pytest_configure``,
before any fixture can load an engine (the plugin's import loads none), and refuses to start
when CUDA was initialised earlier (a conftest that touched the GPU at import).

With ``--dist load`` (what ``-n`` picks), the scheduler keeps every test of one benchmark
module (its marker: one benchmark, one set of engine arguments) on one worker, so a worker
loads one engine, never two at once on one GPU; a session without benchmark tests is
scheduled exactly as xdist's ``load`` would. Any other ``--dist`` is left as chosen. Run
folders never collide: each test writes under its own id, ``run_<n>`` made atomically.

Endpoints are shared out the same way: with ``--mlperf-endpoints-per-worker N``, worker
``gw<i>`` gets the ``i``-th N of the ``--mlperf-endpoint`` list through ``workerinput`` and
replaces the session's endpoints with them in its ``pytest_configure``, so its engines, its
records (``system.endpoints``) and its reproduce line name only those.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Sequence
from typing import Any

import pytest

from pytest_mlperf.core import stash

WORKERINPUT_KEY = "mlperf_devices"
ENDPOINTS_KEY = "mlperf_endpoints"
#: a benchmark test's parameter id (the plugin's ``[<Scenario>-<mode>]``, maybe among others)
_BENCHMARK_ID = re.compile(
    r"\[(?:[^\]]*-)?(?:Offline|Server|SingleStream|Interactive)-(?:performance|accuracy)(?:-[^\]]*)?\]$"
)


def device_pool(workers: int, per_worker: int) -> tuple[list[str], str]:
    """The devices to share out and what they are: ``cuda`` when nvidia-smi lists GPUs (those
    ``CUDA_VISIBLE_DEVICES`` names, else all), else ``numbered``: ids for ``workers *
    per_worker`` (a CUDA_VISIBLE_DEVICES inherited on a machine without GPUs names none)."""
    from pytest_mlperf.core.system import device

    gpus = device().gpus
    if not gpus:
        return [str(i) for i in range(workers * per_worker)], "numbered"
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").strip()
    if visible:
        return [d.strip() for d in visible.split(",") if d.strip()], "cuda"
    return [str(i) for i in range(len(gpus))], "cuda"


def share(pool: Sequence[str], index: int, per_worker: int) -> list[str]:
    return list(pool[index * per_worker:(index + 1) * per_worker])


def worker_index(workerid: str) -> int:
    m = re.fullmatch(r"gw(\d+)", workerid)
    return int(m.group(1)) if m else 0


def is_benchmark(nodeid: str) -> bool:
    return _BENCHMARK_ID.search(nodeid) is not None


def group_of(nodeid: str) -> str:
    """The scheduling unit: a benchmark test's module, else the test itself."""
    return "mlperf:" + nodeid.split("::", 1)[0] if is_benchmark(nodeid) else nodeid


def pin(config: pytest.Config) -> None:
    """On an xdist worker: ``CUDA_VISIBLE_DEVICES`` from the controller's assignment."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput is None or WORKERINPUT_KEY not in workerinput:
        return
    torch = sys.modules.get("torch")
    cuda = getattr(torch, "cuda", None)
    if cuda is not None and cuda.is_initialized():
        raise pytest.UsageError(
            "pytest-mlperf: CUDA was initialised before this xdist worker could be pinned to its "
            "devices (a conftest or plugin used the GPU at import); load engines in fixtures"
        )
    os.environ["CUDA_VISIBLE_DEVICES"] = workerinput[WORKERINPUT_KEY]


def own_endpoints(config: pytest.Config, opts: Any) -> Any:
    """On an xdist worker given a share of the endpoints: the options with only those."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput is None or ENDPOINTS_KEY not in workerinput:
        return opts
    import dataclasses

    return dataclasses.replace(opts, endpoints=tuple(workerinput[ENDPOINTS_KEY]))


class XdistDevices:
    """The controller's half (registered only when xdist runs the session)."""

    def __init__(self, config: pytest.Config, workers: int) -> None:
        self.config = config
        opts = config.stash[stash.OPTIONS]
        self.per_worker = opts.gpus_per_worker or 1
        self.pool, self.kind = device_pool(workers, self.per_worker)
        if self.kind == "cuda" and len(self.pool) < workers * self.per_worker:
            raise pytest.UsageError(
                f"-n {workers} with --mlperf-gpus-per-worker={self.per_worker} needs "
                f"{workers * self.per_worker} GPUs; this machine offers {len(self.pool)} "
                f"({','.join(self.pool)}): use fewer workers or fewer GPUs each"
            )
        self.workers = workers
        self.endpoints, self.endpoints_per_worker = opts.endpoints, opts.endpoints_per_worker
        if self.endpoints_per_worker and len(self.endpoints) < workers * self.endpoints_per_worker:
            raise pytest.UsageError(
                f"-n {workers} with --mlperf-endpoints-per-worker={self.endpoints_per_worker} needs "
                f"{workers * self.endpoints_per_worker} endpoints; --mlperf-endpoint names "
                f"{len(self.endpoints)} ({', '.join(self.endpoints)}): give more endpoints, or "
                "fewer workers or endpoints each"
            )

    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        shares = "; ".join(f"gw{i}: {','.join(share(self.pool, i, self.per_worker))}"
                           for i in range(self.workers))
        what = "GPUs" if self.kind == "cuda" else "device ids (no GPU)"
        lines = [f"mlperf: xdist workers pinned to {what} through CUDA_VISIBLE_DEVICES: {shares}"]
        if self.endpoints_per_worker:
            per = self.endpoints_per_worker
            lines.append("mlperf: xdist workers' endpoints (--mlperf-endpoints-per-worker): " + "; ".join(
                f"gw{i}: {', '.join(share(self.endpoints, i, per))}" for i in range(self.workers)))
        return lines

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        index = worker_index(node.workerinput["workerid"])
        node.workerinput[WORKERINPUT_KEY] = ",".join(share(self.pool, index, self.per_worker))
        if self.endpoints_per_worker:
            node.workerinput[ENDPOINTS_KEY] = share(self.endpoints, index, self.endpoints_per_worker)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: Any) -> Any:
        if config.getvalue("dist") != "load":
            return None
        return BenchmarkGroupScheduling(config, log)


def register(config: pytest.Config) -> None:
    """On the controller of an xdist session: pin workers, group benchmarks."""
    if hasattr(config, "workerinput") or not config.pluginmanager.hasplugin("xdist"):
        return
    if config.getoption("dist", "no") == "no" or not config.getoption("tx", None):
        return
    workers = len(config.getoption("tx"))
    config.pluginmanager.register(XdistDevices(config, workers), "mlperf-xdist")


class BenchmarkGroupScheduling:
    """xdist's ``load`` scheduling, unless benchmark tests were collected: then a ``loadscope``
    whose scopes are benchmark modules (other tests each their own scope)."""

    def __init__(self, config: pytest.Config, log: Any) -> None:
        from xdist.scheduler import LoadScheduling, LoadScopeScheduling

        class _Grouped(LoadScopeScheduling):
            def _split_scope(self, nodeid: str) -> str:
                return group_of(nodeid)

        self._load = LoadScheduling(config, log)
        self._grouped = _Grouped(config, log)
        self._chosen: Any = None

    # Until the collection is known, both hear about every node.
    def add_node(self, node: Any) -> None:
        self._load.add_node(node)
        self._grouped.add_node(node)

    def add_node_collection(self, node: Any, collection: Sequence[str]) -> None:
        self._load.add_node_collection(node, collection)
        self._grouped.add_node_collection(node, collection)

    def remove_node(self, node: Any) -> Any:
        if self._chosen is not None:
            return self._chosen.remove_node(node)
        self._grouped.remove_node(node)
        return self._load.remove_node(node)

    def schedule(self) -> None:
        if self._chosen is None:
            collection = next(iter(self._load.node2collection.values()), [])
            self._chosen = self._grouped if any(map(is_benchmark, collection)) else self._load
        self._chosen.schedule()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._chosen if self._chosen is not None else self._load, name)
