#!/usr/bin/env bash
# GPU benchmarks end to end on the released 2B and 8B shapes (random weights), for a machine with one
# CUDA GPU. Writes bench/results/*.json and prints markdown tables. About 9-11 minutes on an H100.
#   bash bench/gpu.sh            # both shapes, every workload but the 10k stream
#   SHAPES=2b bash bench/gpu.sh  # one shape
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
for shape in ${SHAPES:-2b 8b}; do
  for w in short_texts mixed_texts images videos rerank; do
    echo "== $shape $w"
    timeout 300 "$PY" bench/bench_embed.py --shape "$shape" --workload "$w" || echo "($shape $w failed or timed out)"
  done
done
# dynamic batching in the server (issue 5): 64 clients x 20 requests, batching on and off
echo "== 2b server"
timeout 300 "$PY" bench/bench_server.py --shape 2b --time-limit 120 || echo "(2b server failed or timed out)"
