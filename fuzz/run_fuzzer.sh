#!/usr/bin/env bash
# Runs one libFuzzer target for a bounded time or number of executions and prints one
# summary line of its figures. Usage:
#   run_fuzzer.sh FUZZER WORKDIR LIMIT [-LIBFUZZER_FLAG...] CORPUS_DIR...
# LIMIT is seconds ("30") or executions ("1000000x"). New inputs go to WORKDIR/corpus,
# crashes to WORKDIR/crashes/, the log to WORKDIR/fuzz.log; CORPUS_DIRs (seeds,
# regressions) are only read and skipped when absent. Exit status: libFuzzer's (0: no crash).
set -uo pipefail
fuzzer=$1 work=$2 limit=$3
shift 3
here=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=../sanitizers/options.sh
QV2X_SANITIZER=address,undefined . "$here/sanitizers/options.sh"

# crashes/ holds this run's findings only: copy one into fuzz/regressions/<target>/ to keep it.
rm -rf "$work/crashes"
mkdir -p "$work/corpus" "$work/crashes"
flags=() dirs=()
for a in "$@"; do
  if [[ $a == -* ]]; then flags+=("$a"); elif [[ -d $a ]]; then dirs+=("$a"); fi
done
if [[ $limit == *x ]]; then
  bound=(-runs="${limit%x}")
else
  bound=(-max_total_time="$limit")
fi
# -timeout: an input that takes 25 s is a hang; -rss_limit_mb: one that needs 2 GiB is a
# bomb. One worker: CI machines have two cores and run two tests at once.
"$fuzzer" "${bound[@]}" "${flags[@]}" -timeout=25 -rss_limit_mb=2048 -print_final_stats=1 \
  -artifact_prefix="$work/crashes/" "$work/corpus" "${dirs[@]}" >"$work/fuzz.log" 2>&1
rc=$?

name=$(basename "$fuzzer")
stat() { sed -n "s/^stat::$1: *//p" "$work/fuzz.log" | tail -1; }
last=$(grep -E '#[0-9]+.*cov: ' "$work/fuzz.log" | tail -1)
cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9]*[a-zA-Z]*\).*/\1/p' <<<"$last")
crashes=$(find "$work/crashes" -type f | wc -l)
echo "FUZZ $name: execs=$(stat number_of_executed_units) exec/s=$(stat average_exec_per_sec)" \
  "cov=$cov ft=$ft corpus=$corp crashes=$crashes peak_rss_mb=$(stat peak_rss_mb) rc=$rc" |
  tee "$work/summary.txt"
if [[ $rc -ne 0 ]]; then
  echo "--- $work/fuzz.log (last 60 lines)"
  tail -60 "$work/fuzz.log"
fi
exit $rc
