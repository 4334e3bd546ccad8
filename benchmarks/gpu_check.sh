#!/usr/bin/env bash
# The GPU check in one command, for a machine with one GPU (about 6 minutes on one H200):
#   1. the device-aware tests on the GPU (REASONLAB_TEST_DEVICE=cuda: models, sampling paths, bf16, judges);
#   2. benchmarks/gpu_check.py: sampling throughput (eager vs static cache + CUDA graphs vs `generate`, at 128
#      and 512 sequences x 256 tokens on a 0.36B Qwen2), one RL step vs TRL's GRPOTrainer, and
#      `reasonlab run --set device=cuda` (the tiny default run on the GPU).
# Results land in $OUT (default benchmarks/out/gpu): tests.log, gpu_check.json, gpu_check.log.
# The package runs from src/ (no install needed). Packages the machine lacks (pydantic, typer 0.29,
# math-verify, chess, trl, datasets, ...) are installed from .whl/ when it is there: make it with
# `bash benchmarks/gpu_wheels.sh` on a machine that reaches PyPI and carry it along.
# Usage, from the repository root:  bash benchmarks/gpu_check.sh
set -uo pipefail
OUT=${OUT:-benchmarks/out/gpu}
mkdir -p "$OUT"
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || { echo "gpu_check: installing .whl/ failed" >&2; exit 1; }
  export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
fi
export PYTHONPATH=$PWD/src:$PWD/benchmarks:${PYTHONPATH:-} PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
start=$(date +%s)
REASONLAB_TEST_DEVICE=cuda timeout 100 python3 -m pytest -q -p no:cacheprovider \
  tests/test_hf_models.py tests/test_hf_protocol.py tests/test_transformer.py tests/test_precision.py \
  tests/test_sampling_static.py tests/test_rl_mismatch.py tests/test_sampling.py 2>&1 | tee "$OUT/tests.log" | tail -25
echo "tests: $(( $(date +%s) - start )) s"
timeout 300 python3 benchmarks/gpu_check.py --repeats 2 --out "$OUT/gpu_check.json" 2>&1 | tee "$OUT/gpu_check.log" | tail -30
echo "gpu check: $(( $(date +%s) - start )) s in all"
