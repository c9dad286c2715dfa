#!/usr/bin/env python3
"""Open a pytest-html report in headless Chromium and check what a reader would see.

    python scripts/check_report.py report.html [--screenshot report.png] [--min-plots N] [--min-gates N]
        [--expect legend,mean-line,limit-ttft,...] [--title TEXT]

It loads the page, presses pytest-html's "Show all details", waits for the images, then
checks that every MLPerf plot (``img.mlperf-plot``) decoded and is drawn at a visible size,
that at least ``--min-plots`` of them are there, and that the page logged no console error and
threw no exception. Each plot lists the marks it drew (``data-elements``: a name, a colour, a
box in the image's pixels); the browser draws the decoded image on a canvas and looks for the
mark's colour inside its box: a mark that is not there is a failure, and each ``--expect``ed
name must be drawn on at least one plot. ``--title``: text the page's title must contain. It saves a full-page screenshot. Exit status 0 when all holds; the JSON it
prints says what it found either way.

Chromium is driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``: fd 3 in,
fd 4 out, one NUL-terminated JSON message each), so nothing but Chromium is needed.
"""

from __future__ import annotations

import argparse
import base64
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "chrome")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--remote-debugging-pipe")
#: evaluated in the page once it has loaded and every row is expanded
PROBE = """(() => {
  const plots = [...document.querySelectorAll('img.mlperf-plot')];
  return {
    plots: plots.length,
    broken: plots.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.alt),
    pending: plots.filter(i => !i.complete).length,
    hidden: plots.filter(i => { const r = i.getBoundingClientRect(); return r.width < 50 || r.height < 50; }).map(i => i.alt),
    panels: document.querySelectorAll('.mlperf').length,
    gates: [...document.querySelectorAll('table.mlperf-gates tr')].filter(r => r.querySelector('td') && r.getBoundingClientRect().height > 0).length,
    trends: document.querySelectorAll('svg.mlperf-trend').length,
    rows: document.querySelectorAll('#results-table tbody.results-table-row, #results-table tbody').length,
    title: document.title,
  };
})()"""


#: every plot's listed marks, looked for in the decoded image (colour within a distance,
#: in the box widened by 2 px)
MARKS = """(() => {
  const hex = c => [1, 3, 5].map(i => parseInt(c.slice(i, i + 2), 16));
  const drawn = {}, missing = [];
  for (const img of document.querySelectorAll('img.mlperf-plot')) {
    const marks = JSON.parse(img.dataset.elements || '[]');
    if (!marks.length || !img.naturalWidth) continue;
    const canvas = document.createElement('canvas');
    canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
    const ctx = canvas.getContext('2d');
    ctx.drawImage(img, 0, 0);
    for (const m of marks) {
      const [r, g, b] = hex(m.colour);
      const x0 = Math.max(0, m.box[0] - 2), y0 = Math.max(0, m.box[1] - 2);
      const w = Math.min(canvas.width, m.box[2] + 2) - x0, h = Math.min(canvas.height, m.box[3] + 2) - y0;
      let hits = 0;
      if (w > 0 && h > 0) {
        const px = ctx.getImageData(x0, y0, w, h).data;
        for (let i = 0; i < px.length; i += 4) {
          if (Math.abs(px[i] - r) + Math.abs(px[i + 1] - g) + Math.abs(px[i + 2] - b) < 90) hits++;
        }
      }
      if (hits >= 3) drawn[m.name] = (drawn[m.name] || 0) + 1;
      else missing.push(img.alt + ': ' + m.name);
    }
  }
  return {drawn, missing};
})()"""


def find_browser() -> str | None:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


class DevTools:
    """The DevTools protocol over Chromium's pipe."""

    def __init__(self, browser: str, profile: str) -> None:
        self._log = open(Path(profile) / "chromium.log", "w+b")  # noqa: SIM115 - closed in close()
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()

        def wire() -> None:
            # In the child: the pipe ends become fds 3 and 4 (by way of fds above both, in case
            # one of them is 3 or 4 already); dup2 makes them inheritable, the rest close on exec.
            high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_child_r, from_child_w)]
            os.dup2(high[0], 3)
            os.dup2(high[1], 4)

        self.proc = subprocess.Popen(
            [browser, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            close_fds=False, preexec_fn=wire, stdout=subprocess.DEVNULL, stderr=self._log,
        )
        os.close(to_child_r)
        os.close(from_child_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []

    def send(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float = 30.0) -> dict:
        self._next_id += 1
        message: dict = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_child, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            reply = self._read(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)
        raise TimeoutError(f"no answer to {method} within {timeout:g} s")

    def wait_event(self, method: str, timeout: float = 30.0) -> dict:
        deadline = time.monotonic() + timeout
        for event in self.events:
            if event.get("method") == method:
                return event
        while time.monotonic() < deadline:
            event = self._read(deadline)
            self.events.append(event)
            if event.get("method") == method:
                return event
        raise TimeoutError(f"no {method} within {timeout:g} s")

    def _read(self, deadline: float) -> dict:
        import select

        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_child], [], [], left)[0]:
                raise TimeoutError("Chromium said nothing")
            chunk = os.read(self._from_child, 1 << 16)
            if not chunk:
                raise RuntimeError("Chromium closed the pipe: " + self._stderr())
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def _stderr(self) -> str:
        self.proc.kill()
        self.proc.wait()
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-2000:]

    def close(self) -> None:
        try:
            os.write(self._to_child, json.dumps({"id": 0, "method": "Browser.close"}).encode() + b"\0")
            self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        for fd in (self._to_child, self._from_child):
            try:
                os.close(fd)
            except OSError:
                pass
        self._log.close()


def problems_from(events: list[dict]) -> list[str]:
    """Console errors, uncaught exceptions and error log entries among the events."""
    found = []
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            found.append("console." + params["type"] + ": " + " ".join(
                str(a.get("value", a.get("description", ""))) for a in params.get("args", [])))
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            found.append("exception: " + str(details.get("exception", {}).get("description") or details.get("text")))
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            found.append(f"log ({entry.get('source')}): {entry.get('text')} {entry.get('url', '')}".strip())
    return found


def check(page: Path, screenshot: Path | None, min_plots: int, browser: str, min_gates: int = 0,
          expect: tuple[str, ...] = (), title: str | None = None) -> dict:
    with tempfile.TemporaryDirectory(prefix="check-report-") as profile:
        tools = DevTools(browser, profile)
        try:
            target = tools.send("Target.createTarget", {"url": "about:blank"})["targetId"]
            session = tools.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            for domain in ("Page", "Runtime", "Log"):
                tools.send(f"{domain}.enable", session=session)
            tools.send("Emulation.setDeviceMetricsOverride",
                       {"width": 1400, "height": 1000, "deviceScaleFactor": 1, "mobile": False}, session=session)
            tools.send("Page.navigate", {"url": page.resolve().as_uri()}, session=session)
            tools.wait_event("Page.loadEventFired", timeout=60)
            tools.send("Runtime.evaluate", {"expression": "document.getElementById('show_all_details')?.click()"},
                       session=session)
            found: dict = {}
            for _ in range(50):  # the rows are redrawn; give the images a moment to decode
                time.sleep(0.2)
                found = tools.send("Runtime.evaluate", {"expression": PROBE, "returnByValue": True},
                                   session=session)["result"]["value"]
                if found["plots"] >= min_plots and not found["broken"]:
                    break
                if found["pending"] == 0 and found["plots"]:  # all decoded or failed: no use waiting
                    break
            found["marks"] = tools.send("Runtime.evaluate", {"expression": MARKS, "returnByValue": True},
                                        session=session)["result"]["value"]
            if screenshot is not None:
                shot = tools.send("Page.captureScreenshot",
                                  {"format": "png", "captureBeyondViewport": True}, session=session)
                screenshot.write_bytes(base64.b64decode(shot["data"]))
                found["screenshot"] = str(screenshot)
            found["problems"] = problems_from(tools.events)
        finally:
            tools.close()
    failures = list(found["problems"])
    if found["plots"] < min_plots:
        failures.append(f"{found['plots']} plots on the page, expected at least {min_plots}")
    if found["gates"] < min_gates:
        failures.append(f"{found['gates']} gate rows (stored vs now) shown, expected at least {min_gates}")
    failures += [f"plot not drawn: {alt}" for alt in found["broken"]]
    failures += [f"plot not visible: {alt}" for alt in found["hidden"]]
    marks = found.get("marks") or {"drawn": {}, "missing": []}
    failures += [f"plot mark not drawn: {what}" for what in marks["missing"]]
    failures += [f"no plot draws a {name}" for name in expect if not marks["drawn"].get(name)]
    if title is not None and title not in found["title"]:
        failures.append(f"the page's title {found['title']!r} does not contain {title!r}")
    found["failures"] = failures
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("page", type=Path)
    parser.add_argument("--screenshot", type=Path)
    parser.add_argument("--min-plots", type=int, default=1)
    parser.add_argument("--min-gates", type=int, default=0,
                        help="at least this many visible rows of 'Against the stored run' tables")
    parser.add_argument("--expect", default="", metavar="NAMES",
                        help="comma-separated marks at least one plot must draw: legend, mean-line, "
                             "limit-ttft, limit-tpot, p50, p99")
    parser.add_argument("--title", default=None, help="text the page's title must contain")
    parser.add_argument("--browser", default=None, help="Chromium's path (default: found on PATH)")
    args = parser.parse_args()
    browser = args.browser or find_browser()
    if browser is None:
        print("no Chromium found (tried " + ", ".join(BROWSERS) + ")", file=sys.stderr)
        return 2
    expect = tuple(n.strip() for n in args.expect.split(",") if n.strip())
    found = check(args.page, args.screenshot, args.min_plots, browser, args.min_gates, expect, args.title)
    print(json.dumps(found, indent=2))
    return 1 if found["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
