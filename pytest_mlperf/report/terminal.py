"""One line per benchmark test for pytest's terminal summary."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def _ms(ns: float | None) -> str:
    return "-" if ns is None else f"{ns / 1e6:.1f} ms"


def summary_line(record: dict[str, Any]) -> str:
    run = record["run"]
    verdict = "PASS" if record["verdict"]["passed"] else "FAIL"
    head = (f"{verdict} {record['benchmark']} {record['scenario']} {record['mode']} "
            f"[{record['backend']}, {record['profile']} profile, {record['samples']} samples]")
    if record["mode"] == "performance":
        figures = run["figures"]
        parts = [run["validity"] or "NO RESULT"]
        if "tokens_per_second" in figures:
            parts.append(f"{figures['tokens_per_second']:.1f} tokens/s")
        if "ttft_p99_ns" in figures:
            parts.append(f"p99 TTFT {_ms(figures['ttft_p99_ns'])}")
        if "tpot_p99_ns" in figures:
            parts.append(f"p99 TPOT {_ms(figures['tpot_p99_ns'])}")
        if run["scenario"] == "SingleStream" and "latency_p90_ns" in figures:
            parts.append(f"p90 latency {_ms(figures['latency_p90_ns'])}")
        body = ", ".join(parts)
    else:
        acc = record.get("accuracy")
        base = record.get("baseline", {})
        if acc:
            body = ", ".join(
                f"{k} {acc[k]:.4f}" + (f" (>= {base[k] * base['ratio']:.4f})" if base.get(k) else "")
                for k in ("rouge1", "rouge2", "rougeL", "rougeLsum")
            ) + f", gen_len {acc['gen_len']}, gen_num {acc['gen_num']}"
        else:
            body = "not scored"
    line = f"{head}: {body}  logs: {run['outdir']}"
    if not record["verdict"]["passed"]:
        line += "\n    " + "; ".join(record["verdict"]["reasons"])
    return line


def summary_lines(records: Iterable[dict[str, Any]]) -> list[str]:
    return [summary_line(r) for r in sorted(records, key=lambda r: r.get("nodeid", ""))]
