"""loadgen's built-in mlperf.conf: its text, read from the extension module without importing
it, and the model names it knows. A leaf of ``loadgen/``: settings and user.conf checks both
read it."""

from __future__ import annotations

import functools
from pathlib import Path


@functools.cache
def builtin_mlperf_conf() -> str:
    """loadgen's built-in mlperf.conf, as compiled into its extension module ("" if not found)."""
    import importlib.util

    spec = importlib.util.find_spec("mlperf_loadgen")
    if spec is None or spec.origin is None:
        return ""
    data = Path(spec.origin).read_bytes()
    start = data.find(b"# The format of this config file")
    if start < 0:
        return ""
    end = data.find(b"\x00", start)
    return data[start:end].decode("utf-8", errors="replace")


@functools.cache
def known_models() -> frozenset[str]:
    """The model names of loadgen's built-in mlperf.conf (empty if it cannot be read)."""
    models = set()
    for raw in builtin_mlperf_conf().splitlines():
        words = raw.split()
        if len(words) == 3 and words[1] == "=" and not raw.lstrip().startswith("#"):
            model = words[0].rsplit(".", 2)[0]
            if model != "*":
                models.add(model)
    return frozenset(models)
