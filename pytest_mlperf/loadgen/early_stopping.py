"""loadgen's early stopping, as arithmetic a verdict can explain and the quick profile sizes its
latency runs by (:data:`~pytest_mlperf.loadgen.settings.QUICK_LATE_QUERIES`). Pure: no loadgen
import.

loadgen (``early_stopping.cc``, ``results.cc``) passes a Server/Interactive run at percentile
``p`` (0.99) with ``t`` queries over the latency limit only when at least ``h + t`` queries
ran, ``h`` the fewest on-time queries for which ``t`` or fewer late ones out of ``h + t`` would
happen with probability below ``1 - c`` if the true percentile sat at the limit (``c`` = 0.99,
no tolerance): the binomial CDF ``P[Bin(h + t, 1 - p) <= t] < 1 - c``. At p99 that is 459
queries with none late, 662 with one. SingleStream estimates its p90 from the first ``h + 1``
queries (64) on, discarding the highest latencies the count allows.

:func:`explain` turns loadgen's own early-stopping lines of a detail log into what a user can
act on: queries run, queries the observed tail needs, the estimate, and the next step.
"""

from __future__ import annotations

import functools
import math
import re
from typing import Any

#: loadgen's confidence and tolerance (``results.cc``)
CONFIDENCE = 0.99
TOLERANCE = 0.0


def _log_cdf_at_most(t: int, n: int, p: float) -> float:
    """log P[X <= t] for X ~ Binomial(n, 1 - p): ``t`` or fewer late queries out of ``n``."""
    q = 1.0 - p
    terms = [math.lgamma(n + 1) - math.lgamma(x + 1) - math.lgamma(n - x + 1)
             + x * math.log(q) + (n - x) * math.log(p) for x in range(min(t, n) + 1)]
    top = max(terms)
    return top + math.log(sum(math.exp(v - top) for v in terms))


@functools.cache
def on_time_needed(late: int, percentile: float, confidence: float = CONFIDENCE) -> int:
    """loadgen's ``h``: the fewest on-time queries with which a run of ``late`` late queries
    passes early stopping at ``percentile`` (a fraction, 0.99)."""
    p = percentile - TOLERANCE
    bound = math.log(1 - confidence)
    low, high = 1, max(16, math.ceil(bound / math.log(p)) * 2)
    while _log_cdf_at_most(late, high + late, p) >= bound:
        high *= 2
    while low < high:  # smallest h with odds below 1 - c
        mid = (low + high) // 2
        if _log_cdf_at_most(late, mid + late, p) < bound:
            high = mid
        else:
            low = mid + 1
    return low


def queries_needed(late: int, percentile: float) -> int:
    """The fewest queries a run with ``late`` queries over the limit needs to pass."""
    return on_time_needed(late, percentile) + late


def late_allowed(queries: int, percentile: float) -> int:
    """The most late queries a run of ``queries`` can have and still pass (-1: none pass)."""
    late = -1
    while queries_needed(late + 1, percentile) <= queries:
        late += 1
    return late


def late_from_needed(needed: int, percentile: float) -> int | None:
    """The late-query count for which loadgen says ``needed`` queries (None: no such count)."""
    late = 0
    while queries_needed(late, percentile) < needed:
        late += 1
    return late if queries_needed(late, percentile) == needed else None


_RAN = re.compile(r"Processed (\d+) queries")
_MORE = re.compile(r"Would need to run at least (\d+) more queries")
_ONLY = re.compile(r"Only processed (\d+) queries\.\s*\* Need to process at least (\d+) queries")
_ESTIMATE = re.compile(r"Early stopping ([\d.]+)th percentile estimate: (\d+)")

#: (detail-log key of loadgen's early-stopping lines, the latency, the key of its limit in ns)
_METRICS = (("early_stopping_ttft_result", "TTFT", "requested_server_ttft_latency"),
            ("early_stopping_tpot_result", "TPOT", "requested_server_tpot_latency"),
            ("early_stopping_result", "latency", "effective_target_latency_ns"))


def explain(log: Any, scenario: str) -> list[str]:
    """Early stopping of a Server/Interactive/SingleStream performance run, from its detail
    ``log`` (a :class:`~pytest_mlperf.loadgen.logs.DetailLog`): one line per latency loadgen
    judged, each with the queries run, what the observed tail needs, loadgen's estimate and the
    next step. Empty when the log has no early-stopping lines."""
    server = scenario in ("Server", "Interactive")
    percentile = log.get("effective_target_latency_percentile")
    if not isinstance(percentile, (int, float)) or not 0 < percentile < 1:
        percentile = 0.99 if server else 0.9
    constraints_met = log.get("result_perf_constraints_met")
    out = []
    for key, label, limit_key in _METRICS:
        text = log.get(key)
        if not isinstance(text, str) or not text.strip():
            continue
        text = " ".join(text.split())
        limit = log.get(limit_key)
        limit_text = f" over {limit / 1e6:g} ms" if isinstance(limit, (int, float)) and limit else " late"
        line = _explain_one(text, label, percentile, limit_text, server, constraints_met)
        if line:
            out.append(line)
    return out


def _explain_one(text: str, label: str, percentile: float, limit_text: str, server: bool,
                 constraints_met: Any) -> str | None:
    head = f"early stopping ({label}, p{percentile * 100:g})"
    only = _ONLY.search(text)
    if only:
        ran, needed = int(only.group(1)), int(only.group(2))
        return (f"{head}: {ran} queries ran, the estimate needs at least {needed}; next: a longer "
                f"run (min_query_count >= {needed})")
    more = _MORE.search(text)
    ran_match = _RAN.search(text)
    if more and ran_match:
        ran = int(ran_match.group(1))
        needed = ran + int(more.group(1))
        late = late_from_needed(needed, percentile)
        if late == 0:
            tail = f"no query{limit_text}, and early stopping needs at least {needed} even so"
        elif late is not None:
            tail = (f"{late} quer{'y' if late == 1 else 'ies'}{limit_text}, which need at least "
                    f"{needed} queries")
        else:
            tail = f"its late queries need at least {needed} queries"
        line = (f"{head}: {ran} queries ran; the observed tail: {tail} (loadgen: {more.group(1)} "
                "more, if every further query were on time)")
        if constraints_met is False:
            return line + ("; next: lower server_target_qps (a percentile is over its limit: a "
                           f"longer run will not fix that), with at least {needed} queries")
        step = f"a longer run (min_query_count >= {needed}"
        step += ", or min_duration long enough at this QPS)" if server else ")"
        if late:
            step += " or a lower server_target_qps, so fewer queries run late"
        return f"{line}; next: {step}"
    estimates = _ESTIMATE.findall(text)
    if estimates and constraints_met is False:
        shown = ", ".join(f"p{float(p):g} {int(ns) / 1e6:,.1f} ms" for p, ns in estimates)
        return f"{head}: loadgen's estimate {shown}"
    return None
