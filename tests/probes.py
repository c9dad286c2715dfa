"""What a piece of code imports, seen from a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence


def loaded_modules(code: str, modules: Sequence[str]) -> list[str]:
    """Which of ``modules`` are in ``sys.modules`` after running ``code`` in a new Python."""
    probe = (code + "\nimport json, sys\n"
             f"print(json.dumps(sorted(m for m in {tuple(modules)!r} if m in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])
