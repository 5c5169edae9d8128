#!/usr/bin/env bash
# Commits a training run's resumable state as it comes, so that a run outlives the machine
# it runs on: each time a stage saves an epoch (its last.pth changes), the stage's
# last.pth, the optimiser state it names, the client's step log and the wall-time files
# are committed (only those paths). Runs until killed; polls once a minute.
#   scripts/commit-training-run.sh RUN_DIR [NAME]
# A commit that loses a race for git's index lock is retried at the next poll.
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=${1:?usage: commit-training-run.sh RUN_DIR [NAME]}
NAME=${2:-$(basename "$RUN")}
declare -A SEEN
while true; do
  for dir in "$RUN"/stage1 "$RUN"/stage2 "$RUN"/stage3; do
    [ -f "$dir/last.pth" ] || continue
    stamp=$(stat -c %Y "$dir/last.pth")
    [ "${SEEN[$dir]:-}" = "$stamp" ] && continue
    sleep 5  # the epoch's files are written last.pth last; let the step log catch up
    paths=("$dir/last.pth" "$dir/train.log")
    for f in "$dir"/epoch_*.optim "$dir"/wall.* "$dir"/done "$dir"/losses.json; do
      [ -e "$f" ] && paths+=("$f")
    done
    # Optimiser states of earlier epochs that the trainer has since deleted.
    mapfile -t gone < <(git ls-files --deleted -- "$dir")
    epochs=$(ls "$dir"/epoch_*.pth 2>/dev/null | wc -l)
    git add -- "${paths[@]}" "${gone[@]}" &&
      git commit -q -m "training run $NAME: $(basename "$dir") after epoch $epochs (resumable state)" \
        -- "${paths[@]}" "${gone[@]}" &&
      SEEN[$dir]=$stamp && echo "$(date -u +%H:%M) committed $dir epoch $epochs"
  done
  sleep 60
done
