#!/usr/bin/env bash
# Quantizes the shipped CPU-preset stage-3 model to INT8 through the quantizer RPC (the way
# a user would): starts qv2x-quantizer with models/ as its artifacts folder, runs
# `qv2x quantize`, writes models/cpu-stage3.int8 and models/cpu-int8-report.json, stops it.
# Usage: scripts/quantize-shipped-model.sh [extra `qv2x quantize` flags, e.g. --iters-w 2000
#        --n-bits-w 4]; W8A8 with the SPEC defaults otherwise.
# Env: BUILD_DIR (default build), OUT (artifact name, default cpu-stage3.int8),
#      REPORT (default cpu-int8-report.json).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
OUT=${OUT:-cpu-stage3.int8}
REPORT=${REPORT:-cpu-int8-report.json}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} BLIS_NUM_THREADS=${BLIS_NUM_THREADS:-2}
export OMP_WAIT_POLICY=PASSIVE
run=$(mktemp -d)
trap 'kill $(cat "$run/pid" 2>/dev/null) 2>/dev/null || true; rm -rf "$run"' EXIT
"$BUILD_DIR/bin/qv2x-quantizer" --artifacts models --configs configs --listen 127.0.0.1:0 \
  --metrics 127.0.0.1:0 --port_file "$run/port" >"$run/quantizer.log" 2>&1 &
echo $! >"$run/pid"
for _ in $(seq 600); do [ -s "$run/port" ] && break; sleep 0.1; done
port=$(cut -d' ' -f1 "$run/port")
"$BUILD_DIR/bin/qv2x" quantize --quantizer "127.0.0.1:$port" \
  --checkpoint cpu-stage3.pth --config configs/cpu/stage3.yaml --out "$OUT" \
  --report "$REPORT" "$@"
