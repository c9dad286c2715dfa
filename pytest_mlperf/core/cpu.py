"""The CPU as the engines see it: the cores this process may use, and how many compute threads
an engine runs when the user named none. torch is imported only inside functions."""

from __future__ import annotations

import os

#: At most this many usable cores makes a "small" CPU, where the engines run one compute thread
#: (vLLM: OMP_NUM_THREADS=1 unless set; transformers: the worker's torch thread count). Their
#: kernels run OpenMP regions across all cores, and with the frontend, loadgen or anything else
#: on one of two cores every region waits for a descheduled thread: measured on 2 cores, one
#: 16-token vLLM generate took 2.5-3 s instead of 55 ms, and transformers fell from ~1,300 to
#: ~150 tokens/s beside one busy process (docs/performance.md).
SMALL_CPU_CORES = 4


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask, where the OS has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def default_threads(*, small_cpu: bool = True) -> int | None:
    """Compute threads for an engine whose user named none: ``OMP_NUM_THREADS`` when it is one
    plain number; else one on a CPU of at most ``SMALL_CPU_CORES`` usable cores (unless
    ``small_cpu`` is False, e.g. for an engine on a GPU); else None, the library's default."""
    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if env:  # "4,2" (nested levels) stays OpenMP's own
        return int(env) if env.isdigit() and int(env) > 0 else None
    if small_cpu and usable_cores() <= SMALL_CPU_CORES:
        return 1
    return None


def set_torch_threads(count: int) -> None:
    """torch's thread count for the calling thread (OpenMP's count is per thread). torch._C's
    own function: vLLM's CPU worker replaces ``torch.set_num_threads`` with a no-op."""
    import torch

    torch._C.set_num_threads(count)
