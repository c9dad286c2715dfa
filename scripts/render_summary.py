#!/usr/bin/env python3
"""Render a step summary (``summary.md``, what GitHub shows on a job's page) to a PNG with
headless Chromium, for docs/ci.md: the subset of GitHub's Markdown the summary uses (headings,
code blocks, tables, lists, bold, inline code), in GitHub's look.

    python scripts/render_summary.py summary.md docs/img/step-summary.png
"""

from __future__ import annotations

import html
import re
import subprocess
import sys
import tempfile
from pathlib import Path

STYLE = """body{font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;font-size:14px;
color:#1f2328;margin:16px;max-width:1180px} h3{font-size:16px;margin:18px 0 8px}
table{border-collapse:collapse;margin:8px 0} th,td{border:1px solid #d1d9e0;padding:4px 10px}
th{background:#f6f8fa} pre{background:#f6f8fa;padding:10px;border-radius:6px;white-space:pre-wrap}
code{background:#eff1f3;padding:1px 4px;border-radius:4px;font-size:12px}"""


def inline(text: str) -> str:
    text = html.escape(text)
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    return re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", text)


def cells(line: str) -> list[str]:
    return [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]


def render(markdown: str) -> str:
    out, lines, i = [], markdown.splitlines(), 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            j = i + 1
            while j < len(lines) and not lines[j].startswith("```"):
                j += 1
            out.append("<pre>" + html.escape("\n".join(lines[i + 1:j])) + "</pre>")
            i = j + 1
        elif line.startswith("|"):
            rows = []
            while i < len(lines) and lines[i].startswith("|"):
                rows.append(lines[i])
                i += 1
            body = "".join("<tr>" + "".join(f"<td>{inline(c)}</td>" for c in cells(r)) + "</tr>" for r in rows[2:])
            out.append("<table><tr>" + "".join(f"<th>{inline(c)}</th>" for c in cells(rows[0])) + f"</tr>{body}</table>")
        elif line.startswith("### "):
            out.append(f"<h3>{inline(line[4:])}</h3>")
            i += 1
        elif line.startswith("- "):
            out.append(f"<li>{inline(line[2:])}</li>")
            i += 1
        elif line.strip():
            out.append(f"<p>{inline(line)}</p>")
            i += 1
        else:
            i += 1
    return f"<!DOCTYPE html><html><head><meta charset='utf-8'><style>{STYLE}</style></head><body>{''.join(out)}</body></html>"


def main() -> int:
    source, target = Path(sys.argv[1]), Path(sys.argv[2]).resolve()
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "summary.html"
        page.write_text(render(source.read_text(encoding="utf-8")), encoding="utf-8")
        subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        f"--screenshot={target}", "--window-size=1220,700", page.as_uri()],
                       check=True, capture_output=True)
    print(target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
