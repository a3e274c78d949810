#!/usr/bin/env bash
# One script for a lent GPU machine (H100/H200, Python 3.12, torch+CUDA, nvcc, pybind11 and scikit-build-core
# preinstalled, no internet): build with CUDA against the preinstalled packages, run the CUDA tests and the kernel
# benchmarks, print a summary table last. Logs go to $OUT when set (else ./gpu-check-out). Target: < 8 minutes.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/gpu-check-out}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-16} TOOLBOX_CUDA=ON PYTHONUNBUFFERED=1
summary=()

step() {  # step NAME COMMAND...: run, log to $OUT/NAME.log, remember pass/fail and time
  local name=$1; shift
  local t0=$SECONDS
  "$@" >"$OUT/$name.log" 2>&1
  local rc=$?
  summary+=("$(printf '%-22s %-6s %5ss' "$name" "$([ $rc -eq 0 ] && echo ok || echo FAIL:$rc)" $((SECONDS - t0)))")
  tail -n 25 "$OUT/$name.log"
  return $rc
}

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
step build "$PY" -m pip install --no-build-isolation --no-deps -v . || { printf '%s\n' "${summary[@]}"; exit 1; }
# Run from outside the source tree so the installed package (with _core) is imported.
cd tests
step doctor "$PY" -c "from toolbox.cli.main import doctor_report; import json; print(json.dumps(doctor_report(), indent=1))"
step cuda_tests "$PY" -m pytest .. -m cuda -q -p no:cacheprovider --continue-on-collection-errors -o addopts=""
cd ..
# Kernel benchmarks with a CUDA side (each also times its CPU/naive baselines in the same run).
step bench_entropy timeout 150 "$PY" bench/bench_entropy.py --device cuda --json "$OUT/bench_entropy.json"
step bench_entrocraft timeout 90 "$PY" bench/bench_entrocraft.py --json "$OUT/bench_entrocraft.json"
step bench_gpoe timeout 120 "$PY" bench/bench_gpoe.py --skip-reference --json "$OUT/bench_gpoe.json"
step bench_diffusion timeout 120 "$PY" bench/bench_diffusion.py --json "$OUT/bench_diffusion.json"
echo
echo "== summary ($(cat "$OUT/gpu.txt"))"
printf '%s\n' "${summary[@]}" | tee "$OUT/summary.txt"
