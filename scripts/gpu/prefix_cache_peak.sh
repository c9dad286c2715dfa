#!/usr/bin/env bash
# H200: best VALID Server QPS of the 8B shape with vLLM's prefix caching off (the plugin's default:
# MLPerf forbids caching across queries) and on (vLLM's own default), through the plugin's vLLM
# backend and loadgen (scripts/gpu/server_compare.py): the same 2,000 prompts, engine arguments,
# mlperf.conf's seeds and sample permutation, official Server limits (2 s / 100 ms, p99), 60 s
# runs of at least 1,000 queries. One arm per call keeps each under the 10-minute limit:
#
#   ARMS=off MODEL_DIR=/tmp/llama8b_dummy PYTHONPATH=/tmp/site bash scripts/gpu/prefix_cache_peak.sh
#   ARMS=on  MODEL_DIR=/tmp/llama8b_dummy PYTHONPATH=/tmp/site bash scripts/gpu/prefix_cache_peak.sh
#
# Env: ARMS ("off on"), QPS_OFF ("30,32,34,36"), QPS_ON ("38,40,44,48"), DUR_MS (60000), NQ (1000).
# Each run prints one JSON line (server_compare.py's emit): the highest target QPS with
# "validity": "VALID" is the arm's figure for docs/performance.md and docs/rules.md.
set -u
cd "$(dirname "$0")/../.."
export PYTHONPATH=${PYTHONPATH:-/tmp/site}:. PYTHONUNBUFFERED=1 VLLM_NO_USAGE_STATS=1 HF_HUB_OFFLINE=1
for arm in ${ARMS:-off on}; do
  case $arm in
    off) qps=${QPS_OFF:-30,32,34,36}; cache=false ;;
    on) qps=${QPS_ON:-38,40,44,48}; cache=true ;;
    *) echo "unknown arm $arm (off, on)"; exit 2 ;;
  esac
  echo "== prefix caching $arm: server_target_qps $qps"
  SEEDS=conf SERVER_QPS="$qps" INTERACTIVE_QPS= ENGINE_ARGS="{\"enable_prefix_caching\": $cache}" \
    DUR_MS=${DUR_MS:-60000} NQ=${NQ:-1000} timeout --signal=INT 570 python3 scripts/gpu/server_compare.py
done
