"""The loadgen TestSettings server_compare.py gives a Server / Interactive run against those
probe_server.py builds, attribute by attribute; prints the differences, one JSON line each.

    python scripts/gpu/settings_diff.py [QPS]        # anywhere mlperf_loadgen is installed
"""

from __future__ import annotations

import sys

from common import emit
from server_compare import probe_seeds

from pytest_mlperf.core.vocabulary import Mode, Profile, Scenario
from pytest_mlperf.loadgen.settings import SettingsPlan

#: probe_server.py's TTFT_MS / TPOT_MS for each scenario (its defaults are Server's)
PROBE_LIMITS_MS = {Scenario.SERVER: (2000, 100), Scenario.INTERACTIVE: (500, 30)}


def probe_settings(qps: float, ttft_ms: float, tpot_ms: float):
    import mlperf_loadgen as lg

    ts = lg.TestSettings()
    ts.scenario = lg.TestScenario.Server
    ts.mode = lg.TestMode.PerformanceOnly
    ts.server_target_qps = qps
    ts.min_duration_ms = 60000
    ts.min_query_count = 1000
    ts.use_token_latencies = True
    ts.ttft_latency = int(ttft_ms * 1e6)
    ts.tpot_latency = int(tpot_ms * 1e6)
    return ts


def main() -> None:
    qps = float(sys.argv[1]) if len(sys.argv) > 1 else 44.0
    for scenario, (ttft, tpot) in PROBE_LIMITS_MS.items():
        plan = SettingsPlan(
            benchmark="llama3.1-8b", scenario=scenario, profile=Profile.OFFICIAL,
            total_count=2000, performance_count=2000,
            cli_overrides={"server_target_qps": qps, "min_duration_ms": 60000, "min_query_count": 1000,
                           **probe_seeds(), "sample_concatenate_permutation": 0},
        )
        ours, probe = plan.build(Mode.PERFORMANCE), probe_settings(qps, ttft, tpot)
        for name in sorted(dir(ours)):
            if name.startswith("_") or callable(getattr(ours, name)):
                continue
            if getattr(ours, name) != getattr(probe, name):
                emit(scenario=scenario.value, setting=name, plugin=str(getattr(ours, name)),
                     probe=str(getattr(probe, name)))


if __name__ == "__main__":
    main()
