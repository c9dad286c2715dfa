"""loadgen's early stopping as arithmetic (loadgen/early_stopping.py): the counts loadgen itself
logs, the quick profile sized by them, and verdicts that explain an INVALID latency run. Real
loadgen with a test-double engine that makes one query late."""

from __future__ import annotations

import pytest

from pytest_mlperf.core.vocabulary import Mode, Profile, Scenario
from pytest_mlperf.loadgen.early_stopping import (
    explain,
    late_allowed,
    late_from_needed,
    queries_needed,
)
from pytest_mlperf.loadgen.logs import read_detail
from pytest_mlperf.loadgen.settings import QUICK_LATE_QUERIES, SettingsPlan
from tests.fake_world import setup
from tests.shared import public_logs_dir


def test_the_counts_are_loadgens() -> None:
    # loadgen: 459 queries pass at p99 with none late (an instant SUT passes at 460, fails at 450),
    # one late query raises the need to 662; SingleStream's p90 estimate starts at 64 queries
    assert [queries_needed(t, 0.99) for t in range(4)] == [459, 662, 838, 1001]
    assert queries_needed(1, 0.9) == 64
    assert late_allowed(460, 0.99) == 0 and late_allowed(662, 0.99) == 1 and late_allowed(458, 0.99) == -1
    assert late_from_needed(662, 0.99) == 1 and late_from_needed(663, 0.99) is None


def test_the_quick_profile_tolerates_a_few_late_queries() -> None:
    server = SettingsPlan("llama3.1-8b", Scenario.SERVER, Profile.QUICK, 64, 64).build(Mode.PERFORMANCE)
    assert server.min_query_count == queries_needed(QUICK_LATE_QUERIES, 0.99) == 838
    assert late_allowed(server.min_query_count, 0.99) == QUICK_LATE_QUERIES == 2


def test_a_public_invalid_server_log_is_explained() -> None:
    log = read_detail(public_logs_dir() / "jshim0978__MLPerf_local_test/results/examples/"
                      "sample_performance_run/mlperf_log_detail.txt")
    line, = explain(log, "Server")
    assert line.startswith("early stopping (TPOT, p99): 100 queries ran; the observed tail: no query "
                           "over 100 ms, and early stopping needs at least 459 even so (loadgen: 359 more")
    assert "next: lower server_target_qps" in line  # TTFT's p99 was over its limit


LATE_ONE = r'''

class LateOneBackend(CopyBackend):
    """Every query at once, but the 50th's first token 2 s late: one query over 1 s."""
    name = "late-one"

    def issue(self, queries, responder):
        import time
        for q in queries:
            self.count = getattr(self, "count", 0) + 1
            if self.count == 50:
                def late(q=q):
                    time.sleep(2.0)
                    out = self.answer(q.prompt)
                    responder.first_token(q, out[0])
                    responder.complete(q, out)
                threading.Thread(target=late, daemon=True).start()
                continue
            out = self.answer(q.prompt)
            responder.first_token(q, out[0])
            responder.complete(q, out)


BACKENDS[LateOneBackend.name] = LateOneBackend
'''


def test_one_late_query_in_a_short_server_run_says_how_many_queries_it_needs(pytester: pytest.Pytester) -> None:
    args = setup(pytester, scenarios='("Server",)')
    conftest = pytester.path / "conftest.py"
    conftest.write_text(conftest.read_text() + LATE_ONE)
    # 500 queries in 5 s, TTFT limit 1 s: p99 is on time, yet one late query needs 662
    result = pytester.runpytest("--mlperf-backend=late-one", "--mlperf-scenario=Server", "--mlperf-mode=performance",
                                "--mlperf-setting=server_target_qps=100", "--mlperf-setting=min_query_count=500",
                                "--mlperf-setting=min_duration_ms=0", "--mlperf-setting=ttft_latency=1000000000", *args)
    result.assert_outcomes(failed=1)
    text = "\n".join(result.outlines)
    assert "early stopping (TTFT, p99): 504 queries ran; the observed tail: 1 query over 1000 ms, which need at " \
           "least 662 queries (loadgen: 158 more, if every further query were on time); next: a longer run " \
           "(min_query_count >= 662, or min_duration long enough at this QPS) or a lower server_target_qps, " \
           "so fewer queries run late" in " ".join(text.split()), text


@pytest.mark.parametrize(("scenario", "log", "expected"), [
    ("SingleStream", {"early_stopping_ttft_result": " * Only processed 30 queries.\n * Need to process at least 64 "
                                                    "queries for early stopping."},
     "early stopping (TTFT, p90): 30 queries ran, the estimate needs at least 64; next: a longer run "
     "(min_query_count >= 64)"),
    ("Interactive", {"early_stopping_tpot_result": " * Run unsuccessful.\n * Processed 700 queries.\n * Would need "
                                                   "to run at least 138 more queries,\n with the run being successful "
                                                   "if every additional\n query were under latency.",
                     "requested_server_tpot_latency": 30_000_000, "result_perf_constraints_met": True,
                     "effective_target_latency_percentile": 0.99},
     "early stopping (TPOT, p99): 700 queries ran; the observed tail: 2 queries over 30 ms, which need at least "
     "838 queries (loadgen: 138 more, if every further query were on time); next: a longer run (min_query_count "
     ">= 838, or min_duration long enough at this QPS) or a lower server_target_qps, so fewer queries run late"),
])
def test_each_kind_of_early_stopping_line(scenario: str, log: dict, expected: str) -> None:
    assert explain(log, scenario) == [expected]


def test_a_passed_or_offline_run_has_nothing_to_explain() -> None:
    assert explain({"early_stopping_ttft_result": " * Run successful."}, "Server") == []
    assert explain({}, "Offline") == []
