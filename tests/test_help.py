"""``pytest --help``: metavars that say what to type, options grouped by task, defaults shown."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from pytest_mlperf.options import GROUPS, OPTIONS

ROOT = Path(__file__).resolve().parents[1]


def _help() -> str:
    return subprocess.run([sys.executable, "-m", "pytest", "--help", "-p", "no:cacheprovider"], capture_output=True,
                          text=True, check=True, cwd=ROOT).stdout


def test_help_groups_metavars_and_defaults() -> None:
    text = _help()
    # every group, in the order of the tasks
    titles = [title for _, title, _ in GROUPS]
    positions = [text.index(title + ":") for title in titles]
    assert positions == sorted(positions)
    # what to type, never a dest name
    usage = dict(re.findall(r"^  (--mlperf-[a-z-]+)=(\S+)", text, flags=re.M))
    assert set(usage) == {o.flag for o in OPTIONS}
    assert not [flag for flag, metavar in usage.items() if "MLPERF_" in metavar]
    assert usage["--mlperf-repeat"] == "N" and usage["--mlperf-setting"] == "KEY=VALUE"
    assert usage["--mlperf-endpoint"] == "URL" and usage["--mlperf-dataset"] == "PATH"
    assert usage["--mlperf-compare"] == "[WHICH]"
    # each option under its group's title
    for _, title, names in GROUPS:
        section = text[text.index(title + ":"):].split("\n\n")[0]
        for name in names:
            assert f"--mlperf-{name}=" in section, (title, name)
    # every default said
    flat = re.sub(r"\s+", " ", text)
    for opt in OPTIONS:
        if opt.default is not None:
            block = flat[flat.index(f"{opt.flag}="):]
            block = block[:block.index(" --", 3) if " --" in block[3:] else len(block)]
            assert "default" in block.lower(), (opt.flag, block)
