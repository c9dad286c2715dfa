"""Did the model's weights load? A checkpoint whose tensors do not match its config (another
architecture, another layer count, untied embeddings without their head) loads "fine" into
both engines: what is missing is initialised at random, what is unexpected is dropped, and a
performance run on the result is VALID. Here a mismatch is an error naming the weights.

- :func:`checkpoint_problem` compares the tensor names of the ``*.safetensors`` files (their
  headers only) with the parameters transformers builds from ``config.json`` on the meta
  device (no memory, no weights read): what vLLM's start calls.
- :func:`loading_problem` words what transformers' own ``output_loading_info`` reports: what
  the hf backend's start calls.

``load_format=dummy`` (an engine argument of both backends) asks for random weights on purpose
and skips the check.
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

#: engine argument values that mean "no real weights, on purpose"
DUMMY = "dummy"
_SHOWN = 4
#: buffers older checkpoints carry and every engine recomputes
_IGNORED_UNEXPECTED = (re.compile(r"(^|\.)rotary_emb\.inv_freq$"),)


class WeightsError(ValueError):
    """A checkpoint that does not match its config; the message names the weights."""


def wants_dummy(engine_args: Mapping[str, Any]) -> bool:
    return str(engine_args.get("load_format", "")).lower() == DUMMY


def mismatch_message(path: Path, missing: Iterable[str], unexpected: Iterable[str],
                     mismatched: Iterable[str] = ()) -> str | None:
    """The error for a checkpoint in ``path`` with these weight names, or None when all agree."""
    parts = []
    for label, names in (("missing from the checkpoint (they would be random)", missing),
                         ("in the checkpoint but not in the model (they would be dropped)", unexpected),
                         ("of another shape than the model's", mismatched)):
        names = sorted(names)
        if names:
            shown = ", ".join(names[:_SHOWN]) + (f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else "")
            parts.append(f"{len(names)} weight(s) {label}: {shown}")
    if not parts:
        return None
    return (f"model folder {path}: the weights do not match config.json ({_architecture(path)}): "
            + "; ".join(parts) + ". Fix config.json or the checkpoint; for a run on random "
            "weights on purpose, pass --mlperf-engine-arg load_format=dummy")


def loading_problem(path: Path, info: Mapping[str, Any]) -> str | None:
    """transformers' ``output_loading_info`` of a load from ``path``, as an error, or None."""
    mismatched = [m[0] if isinstance(m, (tuple, list)) else str(m) for m in info.get("mismatched_keys", ())]
    return mismatch_message(path, info.get("missing_keys", ()), info.get("unexpected_keys", ()), mismatched)


def checkpoint_problem(path: Path) -> str | None:
    """Compare the checkpoint's tensor names with the model config.json describes; None when
    they agree or when it cannot be told (no safetensors, a config transformers does not know,
    a quantized checkpoint, whose tensor names differ by design)."""
    files = sorted(Path(path).glob("*.safetensors"))
    if not files:
        return None
    try:
        config = json.loads((Path(path) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(config, dict) or config.get("quantization_config") or config.get("auto_map"):
        return None
    have: set[str] = set()
    for file in files:
        have |= _tensor_names(file)
    expected = _model_names(path)
    if expected is None:
        return None
    groups, known, ignored = expected
    missing = [group[0] for group in groups if not any(name in have for name in group)]
    unexpected = [name for name in have - known if not any(p.search(name) for p in ignored)]
    return mismatch_message(Path(path), missing, unexpected)


def _tensor_names(file: Path) -> set[str]:
    with open(file, "rb") as fh:
        (size,) = struct.unpack("<Q", fh.read(8))
        header = json.loads(fh.read(size))
    return {name for name in header if name != "__metadata__"}


def _model_names(path: Path) -> tuple[list[list[str]], set[str], list[re.Pattern[str]]] | None:
    """The model's parameters, grouped by tensor (tied ones share a group), every name its
    state dict may hold, and the checkpoint names it ignores; None when transformers cannot
    build it from the config."""
    try:
        import torch
        from transformers import AutoConfig, AutoModelForCausalLM

        config = AutoConfig.from_pretrained(path)
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(config)
        model.tie_weights()
    except Exception:  # noqa: BLE001 - an architecture transformers cannot build: not checkable
        return None
    groups: dict[int, list[str]] = {}
    for name, param in model.named_parameters(remove_duplicate=False):
        groups.setdefault(id(param), []).append(name)
    known = {name for group in groups.values() for name in group} | set(model.state_dict())
    ignored = getattr(model, "_keys_to_ignore_on_load_unexpected", None) or ()
    return list(groups.values()), known, [*_IGNORED_UNEXPECTED, *(re.compile(p) for p in ignored)]


def _architecture(path: Path) -> str:
    try:
        config = json.loads((Path(path) / "config.json").read_text(encoding="utf-8"))
        return f"architectures {config.get('architectures')}, {config.get('num_hidden_layers')} layers"
    except (OSError, ValueError, AttributeError):
        return "unreadable"
