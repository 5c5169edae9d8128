#!/usr/bin/env bash
# `make fuzz-long`: every fuzz target of a QV2X_FUZZ build for RUNS executions (default
# 1,000,000), FUZZ_JOBS (default 2) targets at a time, then one line of figures per target
# (executions, exec/s, coverage cov / ft, corpus size, crashes). Logs, corpora and crashes:
# BUILD/fuzz/long/<target>/.
# Usage: fuzz/fuzz-long.sh BUILD_DIR [RUNS]
set -euo pipefail
build=$(cd "$1" && pwd) runs=${2:-1000000} jobs=${FUZZ_JOBS:-2}
here=$(cd "$(dirname "$0")" && pwd)
manifest=$build/fuzz/targets.txt
[[ -s $manifest ]] || { echo "fuzz-long: no $manifest (configure with QV2X_FUZZ=ON)" >&2; exit 2; }
cd "$here/.."
echo "fuzz-long: $(wc -l <"$manifest") targets x $runs executions, $jobs at a time ($(date -u +%FT%TZ))"
start=$(date +%s)
rc=0
# shellcheck disable=SC2016
xargs -P "$jobs" -L 1 bash -c \
  'name=$1 fuzzer=$2; shift 2; exec "$0" "$fuzzer" "'"$build"'/fuzz/long/$name" "'"$runs"'x" "$@"' \
  "$here/run_fuzzer.sh" <"$manifest" >/dev/null || rc=$?
echo "fuzz-long: $(( $(date +%s) - start )) s; figures:"
while read -r name _; do
  cat "$build/fuzz/long/$name/summary.txt" 2>/dev/null || echo "FUZZ $name: no summary"
done <"$manifest"
exit $rc
