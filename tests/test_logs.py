"""Log readers, on logs the real loadgen writes here, and on public results when present."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from pytest_mlperf.backends.base import Backend, SystemSpec
from pytest_mlperf.core.vocabulary import Mode, Profile, Scenario
from pytest_mlperf.loadgen.logs import LogError, read_detail, read_summary
from pytest_mlperf.loadgen.runner import run_loadgen
from pytest_mlperf.loadgen.settings import SettingsPlan
from tests.shared import public_logs_dir


class Instant(Backend):
    name = "instant"
    streaming = True

    def start(self) -> None:
        pass

    def issue(self, queries, responder) -> None:
        def work() -> None:
            for q in queries:
                responder.first_token(q, 7)
                responder.complete(q, [7, 8, 9, 10])
        threading.Thread(target=work).start()


def run(tmp_path: Path, scenario: Scenario, user_conf: Path | None = None, name: str = "run", **overrides) -> Path:
    plan = SettingsPlan("llama3.1-8b", scenario, Profile.QUICK, 32, 32, user_conf=user_conf, cli_overrides=overrides)
    backend = Instant(SystemSpec.local(tmp_path))
    result = run_loadgen(plan=plan, mode=Mode.PERFORMANCE, backend=backend, prompts=[[1, 2]] * 32, outdir=tmp_path / name)
    assert result.outdir == tmp_path / name
    return result.outdir


def test_user_conf_in_many_runs_of_one_process_logs_no_error(tmp_path: Path) -> None:
    """loadgen's FromConfig, called twice in a process, logs an error into the next run and
    re-applies mlperf.conf over the profile: neither may happen to a pytest session."""
    user_conf = tmp_path / "user.conf"
    user_conf.write_text("*.Server.target_qps = 7\n")
    for name in ("a", "b"):
        detail = read_detail(run(tmp_path, Scenario.OFFLINE, user_conf=user_conf, name=name) / "mlperf_log_detail.txt")
        assert detail.errors == ()
        assert detail.get("generated_samples_per_query") == 32  # not mlperf.conf's 13368


def test_offline_detail_and_summary_agree(tmp_path: Path) -> None:
    outdir = run(tmp_path, Scenario.OFFLINE)
    detail = read_detail(outdir / "mlperf_log_detail.txt")
    summary = read_summary(outdir / "mlperf_log_summary.txt")
    assert detail.get("result_validity") == "VALID" == summary.get("result is")
    assert detail.get("result_tokens_per_second") > 0
    assert summary.get("scenario") == "Offline"
    assert detail.get("generated_samples_per_query") == 32
    assert detail.errors == ()
    assert isinstance(detail.get("effective_schedule_rng_seed"), int)  # > 2**63 is read exactly


def test_server_invalid_reason_is_read(tmp_path: Path) -> None:
    # The instant SUT answers in microseconds, but a 1 ns TTFT limit fails every query.
    outdir = run(tmp_path, Scenario.SERVER, server_target_qps=200, ttft_latency=1, min_duration_ms=200)
    detail = read_detail(outdir / "mlperf_log_detail.txt")
    assert detail.get("result_validity") == "INVALID"
    assert "TTFT" in detail.get("result_invalid_reason")
    assert read_summary(outdir / "mlperf_log_summary.txt").get("result is") == "INVALID"


def test_not_a_log_is_named(tmp_path: Path) -> None:
    bogus = tmp_path / "mlperf_log_detail.txt"
    bogus.write_text("hello\n")
    with pytest.raises(LogError, match="mlperf_log_detail.txt: no ':::MLLOG' entries"):
        read_detail(bogus)
    with pytest.raises(LogError, match="missing.txt: cannot read"):
        read_summary(tmp_path / "missing.txt")


PUBLIC = public_logs_dir()


@pytest.mark.skipif(not PUBLIC.is_dir(), reason=f"public MLPerf logs not found at {PUBLIC} "
                    "(set MLPERF_PUBLIC_LOGS, or PYTEST_MLPERF_SHARED to the shared folder)")
def test_reads_every_public_log() -> None:
    """Real results from v4.0 to v5.1: every file parses and says what a careful reader sees."""
    seen = {}
    for path in sorted(PUBLIC.rglob("mlperf_log_*.txt")):
        log = read_detail(path) if "detail" in path.name else read_summary(path)
        seen[path.relative_to(PUBLIC).as_posix()] = log
    assert seen, "no logs found"
    by_tail = {k.split("/results/")[-1]: v for k, v in seen.items()}
    redhat_off = by_tail["XE8640_4xH100_vLLM/llama3.1-8b/Offline/performance/run_1/mlperf_log_summary.txt"]
    assert redhat_off.number("tokens per second") == 5777.08 and redhat_off.get("result is") == "VALID"
    redhat_srv = by_tail["XE8640_4xH100_vLLM/llama3.1-8b/Server/performance/run_1/mlperf_log_summary.txt"]
    assert redhat_srv.number("completed tokens per second") == 5103.99
    assert redhat_srv.number("99.00 percentile first token latency (ns)") == pytest.approx(1.911e9, rel=1e-3)
    hpe = next(v for k, v in by_tail.items() if "Interactive" in k)
    assert hpe.get("scenario") == "Server" and hpe.number("completed tokens per second") == 36052.31
    jshim = next(v for k, v in seen.items() if "jshim0978" in k and "detail" in k)
    assert jshim.get("result_validity") == "INVALID" and "TTFT" in jshim.get("result_invalid_reason")
    assert jshim.get("result_completed_tokens_per_second") == pytest.approx(44.52, abs=0.01)
    intel = next(v for k, v in seen.items() if "Intel" in k and "detail" in k)
    assert intel.get("result_validity") == "VALID" and intel.get("result_90.00_percentile_latency_ns") == 3545895439
    nvidia = next(v for k, v in seen.items() if "NVIDIA" in k)
    assert nvidia.get("result is") == "VALID" and nvidia.get("scenario") == "Server"


def test_progress_is_reported_during_and_at_the_end_of_a_run(tmp_path: Path) -> None:
    plan = SettingsPlan(benchmark="llama3.1-8b", scenario=Scenario.SERVER, profile=Profile.QUICK,
                        total_count=16, performance_count=16,
                        cli_overrides={"server_target_qps": 200, "min_duration_ms": 1500})
    seen = []
    result = run_loadgen(plan=plan, mode=Mode.PERFORMANCE, backend=Instant(SystemSpec.local(tmp_path)),
                         prompts=[[1, 2, 3]] * 16, outdir=tmp_path / "run", on_progress=seen.append,
                         progress_interval_s=0.3)
    assert result.validity == "VALID"
    assert len(seen) >= 3  # during the run, and once at its end
    last = seen[-1]
    assert last.completed == last.issued == result.figures.query_count
    assert last.output_tokens == result.output_tokens and last.in_flight == 0
    assert len(last.ttft_s) == last.completed and all(t >= 0 for t in last.ttft_s)
    assert [p.completed for p in seen] == sorted(p.completed for p in seen)
