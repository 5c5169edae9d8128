#!/usr/bin/env bash
# Trains the shipped CPU-preset model through the trainer RPC (stages 1 -> 2 -> 3), copies
# the stage-1 and stage-3 checkpoints into models/, evaluates them on the held-out scenes
# and writes models/<name>-provenance.json and models/<name>-eval.md.
# Resumable: rerun it and finished stages are skipped; a stage that was interrupted resumes
# from its last checkpoint.
#   scripts/train-shipped-model.sh [--name cpu] [--preset configs/cpu] [--set k=v ...]
#                                  [--set1|--set2|--set3 k=v ...] [--init1 CKPT]
# --init1: stage 1 fine-tunes CKPT (a stage-1 checkpoint) instead of starting from scratch.
# Each stage's client output (every step's losses, each validation's AP) is appended to
# ARTIFACTS/stageN/train.log, the source of the loss and AP curves.
set -euo pipefail
cd "$(dirname "$0")/.."
ORIG_ARGS="$*"
NAME=cpu
PRESET=configs/cpu
BUILD=${BUILD_DIR:-build}
ARTIFACTS=${ARTIFACTS:-artifacts/shipped}
EVAL_FRAMES=${EVAL_FRAMES:-0}
SETS=() SET1=() SET2=() SET3=() INIT1=
while [ $# -gt 0 ]; do
  case "$1" in
    --name) NAME=$2; shift 2;;
    --preset) PRESET=$2; shift 2;;
    --set) SETS+=(--set "$2"); shift 2;;       # every stage
    --set1) SET1+=(--set "$2"); shift 2;;      # one stage only
    --set2) SET2+=(--set "$2"); shift 2;;
    --set3) SET3+=(--set "$2"); shift 2;;
    --init1) INIT1=$2; shift 2;;
    *) echo "unknown argument $1" >&2; exit 2;;
  esac
done
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} BLIS_NUM_THREADS=${BLIS_NUM_THREADS:-2} OMP_WAIT_POLICY=PASSIVE
PRELOAD=$(ls /usr/lib/x86_64-linux-gnu/libjemalloc.so.2 2>/dev/null || true)
mkdir -p "$ARTIFACTS" models
PORTS="$ARTIFACTS/trainer.ports"
rm -f "$PORTS"
LD_PRELOAD=$PRELOAD "$BUILD/bin/qv2x-trainer" --listen=127.0.0.1:0 --metrics=127.0.0.1:0 \
  --artifacts="$ARTIFACTS" --configs=configs --port_file="$PORTS" --threads=2 \
  >>"$ARTIFACTS/trainer.log" 2>&1 &
TRAINER_PID=$!
TICKER=
trap 'kill $TICKER 2>/dev/null; kill -TERM $TRAINER_PID 2>/dev/null; wait $TRAINER_PID 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -s "$PORTS" ] && break; sleep 0.2; done
ADDR="127.0.0.1:$(cut -d' ' -f1 "$PORTS")"
echo "trainer at $ADDR, metrics on port $(cut -d' ' -f2 "$PORTS"), log $ARTIFACTS/trainer.log"

declare -A WALL
run_stage() {  # stage, from
  local stage=$1 from=$2 out="stage$1" args=()
  local -n per_stage="SET$1"
  if [ -f "$ARTIFACTS/$out/done" ]; then echo "stage $stage already done"; return; fi
  [ -n "$from" ] && args+=(--from "$from")
  [ -f "$ARTIFACTS/$out/last.pth" ] && args+=(--resume)
  local t0=$(date +%s)
  mkdir -p "$ARTIFACTS/$out"
  # Wall time over every run of the stage, an interrupted one included (to the minute).
  local wall="$ARTIFACTS/$out/wall.$t0"
  (while sleep 60; do echo $(( $(date +%s) - t0 )) > "$wall"; done) &
  TICKER=$!
  "$BUILD/bin/qv2x" train --trainer "$ADDR" --stage "$stage" --config "$PRESET/stage$stage.yaml" \
    --out "$out" "${args[@]}" "${SETS[@]}" "${per_stage[@]}" 2>&1 | tee -a "$ARTIFACTS/$out/train.log"
  kill $TICKER
  echo $(( $(date +%s) - t0 )) > "$wall"
  cat "$ARTIFACTS/$out"/wall.* | awk '{s += $1} END {print s}' > "$ARTIFACTS/$out/done"
}
INIT1_FROM=""
if [ -n "$INIT1" ]; then  # --from paths are confined to the trainer's artifacts folder
  mkdir -p "$ARTIFACTS/init" && cp "$INIT1" "$ARTIFACTS/init/stage1.pth" && INIT1_FROM=init/stage1.pth
fi
run_stage 1 "$INIT1_FROM"
run_stage 2 stage1/last.pth
run_stage 3 stage2/last.pth

cp "$ARTIFACTS/stage1/last.pth" "models/$NAME-stage1.pth"
cp "$ARTIFACTS/stage3/last.pth" "models/$NAME-stage3.pth"

# Held-out evaluation: (a) ego only, (b) cooperative stage 1, (c) cooperative stage 3.
TEST_SCENE=$(awk '/^test_dir:/ {sub("sim:", "", $2); print $2}' "$PRESET/stage1.yaml")
eval_run() {  # label, stage, extra
  local label=$1 stage=$2; shift 2
  "$BUILD/bin/qv2x" infer --config "$PRESET/stage$stage.yaml" --checkpoint "models/$NAME-stage$stage.pth" \
    --scene "$TEST_SCENE" --frames "$EVAL_FRAMES" --out "$ARTIFACTS/eval/$label" "$@" > "$ARTIFACTS/eval/$label.txt"
  "$BUILD/bin/qv2x" eval --pred "$ARTIFACTS/eval/$label/pred.json" --gt "$ARTIFACTS/eval/$label/gt.json" --json \
    > "$ARTIFACTS/eval/$label.json"
}
mkdir -p "$ARTIFACTS/eval"
eval_run ego_only_stage1 1 --ego-only
eval_run coop_stage1 1
eval_run ego_only_stage3 3 --ego-only
eval_run coop_stage3 3

python3 - "$NAME" "$PRESET" "$ARTIFACTS" "$TEST_SCENE" "$EVAL_FRAMES" "$ORIG_ARGS" \
  "${SETS[*]:-}" "${SET1[*]:-}" "${SET2[*]:-}" "${SET3[*]:-}" <<'PY'
import json, subprocess, sys, os, datetime, re
name, preset, art, test_scene, eval_frames, argv = sys.argv[1:7]
sets = dict(zip(["all", "stage1", "stage2", "stage3"], sys.argv[7:11]))
res = {}
for label in ["ego_only_stage1", "coop_stage1", "ego_only_stage3", "coop_stage3"]:
    res[label] = json.load(open(f"{art}/eval/{label}.json"))
commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
prov = {
  "name": name, "preset": preset, "git_commit": commit,
  "date": datetime.datetime.utcnow().isoformat() + "Z",
  "command": "scripts/train-shipped-model.sh " + argv,
  "configs": {f"stage{s}": f"{preset}/stage{s}.yaml" for s in (1, 2, 3)},
  "overrides": {k: v.replace("--set ", "").split() for k, v in sets.items() if v},
  "eval_frames": int(eval_frames),
  "seeds": {
    "train_params.seed": {f"stage{s}": re.search(r"^\s+seed:\s*(\d+)", open(f"{preset}/stage{s}.yaml").read(), re.M).group(1) for s in (1, 2, 3)},
    "scenes": {f: re.search(r"^seed:\s*(\d+)", open(f"configs/scenes/{f}.yaml").read(), re.M).group(1) for f in ("train", "val", "test")},
  },
  "wall_time_s": {f"stage{s}": int(open(f"{art}/stage{s}/done").read()) for s in (1, 2, 3)},
  "test_scene": test_scene,
  "evaluation": res,
}
for s in (1, 2, 3):
    p = f"{art}/stage{s}/losses.json"
    if os.path.exists(p):
        prov.setdefault("final_losses", {})[f"stage{s}"] = json.load(open(p))
json.dump(prov, open(f"models/{name}-provenance.json", "w"), indent=2)
rows = []
for label, title in [("ego_only_stage3", "(a) ego only (stage 3 weights)"), ("ego_only_stage1", "(a') ego only (stage 1 weights)"),
                     ("coop_stage1", "(b) cooperative, stage 1"), ("coop_stage3", "(c) cooperative, stage 3 + codebook")]:
    ap = res[label]["ap"]
    cells = [f"{ap[c][t]:.3f}" for c in ("vehicle", "pedestrian", "truck") for t in ("0.3", "0.5", "0.7")]
    rows.append(f"| {title} | " + " | ".join(cells) + " |")
hdr = "| run | veh 0.3 | veh 0.5 | veh 0.7 | ped 0.3 | ped 0.5 | ped 0.7 | truck 0.3 | truck 0.5 | truck 0.7 |\n|---|" + "---|" * 9
open(f"models/{name}-eval.md", "w").write(hdr + "\n" + "\n".join(rows) + "\n")
print(open(f"models/{name}-eval.md").read())
PY
