"""What a local model folder's ``config.json`` says about the inputs it takes: its context
length and vocabulary size. Read as JSON (no transformers), cached. A leaf module.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: config keys that hold the context length, by model family
_CONTEXT_KEYS = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length",
                 "max_seq_len")


@dataclass(frozen=True)
class ModelLimits:
    config: Path
    context: int | None = None
    vocab_size: int | None = None


def model_limits(path: Path | None) -> ModelLimits | None:
    """The limits in ``path/config.json``, or None (no folder, no readable config)."""
    if path is None:
        return None
    config = Path(path) / "config.json"
    try:
        stamp = config.stat().st_mtime_ns
    except OSError:
        return None
    return _read(config, stamp)


@functools.cache
def _read(config: Path, _stamp: int) -> ModelLimits | None:
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    sections = [data] + [data[k] for k in ("text_config", "llm_config") if isinstance(data.get(k), dict)]
    return ModelLimits(config=config, context=_first(sections, _CONTEXT_KEYS),
                       vocab_size=_first(sections, ("vocab_size",)))


def _first(sections: list[dict[str, Any]], keys: tuple[str, ...]) -> int | None:
    for section in sections:
        for key in keys:
            value = section.get(key)
            if type(value) is int and value > 0:
                return value
    return None


def custom_code(path: Path | None) -> str | None:
    """What Python code of its own a model folder's ``config.json`` asks transformers to run
    (``auto_map``), or None."""
    if path is None:
        return None
    try:
        data = json.loads((Path(path) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    auto_map = data.get("auto_map") if isinstance(data, dict) else None
    if not auto_map:
        return None
    if isinstance(auto_map, dict):
        return ", ".join(f"{k}: {v}" for k, v in auto_map.items())
    return str(auto_map)
