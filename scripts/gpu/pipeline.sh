#!/usr/bin/env bash
# The default job as a GPU pipeline runs it (docs/ci.md), on a machine where the package is not
# installed (the H200 lease: vLLM and friends in /tmp/site, extra wheels in /tmp/site2).
#
#   1. save:  pytest benchmarks/ --mlperf-backend=vllm, every scenario, accuracy included, TEST06,
#             records stored (--mlperf-save), JUnit + JSON written
#   2. gate:  the same again against the stored session (--mlperf-compare-fail) as the next
#             pipeline run would
#   3. bf16:  Offline accuracy with dtype=bfloat16 (the embedded model's config says float32, which
#             vLLM keeps on a GPU; this answers whether the GPU's usual dtype still meets the
#             baseline made on the CPU)
#   4. peak:  --mlperf-find-peak on Server
#
# Env: OUT (where logs, JUnit, JSON and the run summaries go; default /tmp/pipeline), STEPS
# (default "save gate bf16 peak"), QPS (server_target_qps, 16), PEAK_QPS (the search's start, 64),
# T_<STEP> (a step's time limit in seconds), DRY=1 (collect only: checks the command lines here).
set -u
OUT=${OUT:-/tmp/pipeline}
mkdir -p "$OUT"
cd "$(dirname "$0")/../.."
export PYTHONPATH=/tmp/site:/tmp/site2:. PYTHONUNBUFFERED=1 VLLM_NO_USAGE_STATS=1 HF_HUB_OFFLINE=1
STORE=${STORE:-/tmp/mlperf-store}
RESULTS=${RESULTS:-/tmp/mlperf-results}
QPS=${QPS:-16}
PEAK_QPS=${PEAK_QPS:-64}
if python3 -c "import importlib.metadata as m; m.distribution('pytest-mlperf')" 2>/dev/null; then
  PYTEST=(python3 -m pytest -p no:cacheprovider)
else
  PYTEST=(python3 -m pytest -p pytest_mlperf.plugin -p no:cacheprovider)
fi
[ "${DRY:-0}" = 1 ] && PYTEST+=(--co -q)
ALL=(benchmarks/ --mlperf-backend=vllm --mlperf-scenario=Offline,Server,SingleStream,Interactive
     --mlperf-setting=server_target_qps="$QPS" --mlperf-storage="$STORE" --mlperf-progress-interval=60 -ra)

step() {  # name, limit, command...
  local name=$1 limit=$2 start rc
  shift 2
  start=$(date +%s)
  timeout --signal=INT --kill-after=30 "$limit" "$@" > "$OUT/$name.log" 2>&1
  rc=$?
  echo "STEP $name rc=$rc $(( $(date +%s) - start ))s"
  grep -E "^(PASSED|FAILED|ERROR|SKIPPED)|passed|failed|regressed|VALID|rouge|TEST06|peak|Error" "$OUT/$name.log" | tail -40
}

for s in ${STEPS:-save gate bf16 peak}; do
  case $s in
    save) step save "${T_SAVE:-330}" "${PYTEST[@]}" "${ALL[@]}" --mlperf-output="$RESULTS/save" \
            --mlperf-compliance=TEST06 --mlperf-save=pipeline-1 \
            --junitxml="$OUT/junit-save.xml" --mlperf-json="$OUT/save.json" ;;
    gate) step gate "${T_GATE:-240}" "${PYTEST[@]}" "${ALL[@]}" --mlperf-output="$RESULTS/gate" \
            --mlperf-compare --mlperf-compare-fail=tokens_per_second:5% --mlperf-compare-fail=rouge1:0.5% \
            --junitxml="$OUT/junit-gate.xml" --mlperf-json="$OUT/gate.json" ;;
    bf16) step bf16 "${T_BF16:-120}" "${PYTEST[@]}" benchmarks/test_llama3_1_8b.py --mlperf-backend=vllm \
            --mlperf-scenario=Offline --mlperf-mode=accuracy --mlperf-engine-arg dtype=bfloat16 \
            --mlperf-output="$RESULTS/bf16" -ra --junitxml="$OUT/junit-bf16.xml" --mlperf-json="$OUT/bf16.json" ;;
    peak) step peak "${T_PEAK:-200}" "${PYTEST[@]}" benchmarks/test_llama3_1_8b.py --mlperf-backend=vllm \
            --mlperf-scenario=Server --mlperf-mode=performance --mlperf-setting=server_target_qps="$PEAK_QPS" \
            --mlperf-find-peak=5% --mlperf-output="$RESULTS/peak" -ra --junitxml="$OUT/junit-peak.xml" \
            --mlperf-json="$OUT/peak.json" ;;
    *) echo "unknown step $s"; exit 2 ;;
  esac
done
# the stored sessions and every run's summary and accuracy files (the detail logs stay behind)
cp -r "$STORE" "$OUT/store" 2>/dev/null
(cd "$RESULTS" 2>/dev/null && find . \( -name 'mlperf_log_summary.txt' -o -name 'accuracy.txt' \
   -o -name 'verify_accuracy.txt' -o -name '*.json' \) -size -2M -print0 | tar --null -czf "$OUT/runs.tgz" -T -) 2>/dev/null
exit 0
