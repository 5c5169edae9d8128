#!/usr/bin/env bash
# The docker-compose scene for real, end to end: builds the images, brings up fusion, the
# four agents and Prometheus with docker-compose, checks through Prometheus' HTTP API that
# every target is up and that fused frames and received bytes grow, swaps agent 1 to INT8
# from the host and reads the swap back from Prometheus, brings up the training profile
# and runs one short stage through the trainer RPC inside the containers, then takes
# everything down. Prints the time of each step; exits non-zero naming the failing step.
#
#   sudo scripts/compose-check.sh [--jobs N] [--no-build | --build-only] [--keep-daemon]
#
#   --jobs N       parallel compiles in the image build (default 2; a LibTorch file needs
#                  1.5-2.5 GB of RAM)
#   --no-build     use the qv2x:cpu and Prometheus images already in the daemon (fails if
#                  one is missing); by default they are (re)built, which is quick when
#                  the sources are unchanged (layer cache) and about an hour when not
#   --build-only   stop after building the images (prepares a later run)
#   --keep-daemon  leave a private daemon running at the end (for debugging)
#
# Docker: uses the daemon that DOCKER_HOST (or /var/run/docker.sock) reaches; when none
# answers, starts a private one (root needed) with no bridge and no iptables, data under
# QV2X_DOCKER_DATA (default /var/lib/qv2x-compose-check, which also caches the base
# image), and stops it at the end. Containers use the host's network
# (deploy/docker-compose.host.yml), so every service listens on 127.0.0.1 with the ports
# of docs/deploy.md, which must be free. No image registry is needed: the base image is
# made with debootstrap from QV2X_DEBIAN_MIRROR (default http://deb.debian.org/debian)
# and apt in the builds reaches the same archive.
#
# Needs: docker.io, docker-compose (1.29 or later), debootstrap (only while the base image
# is not cached), curl, python3, and the host build's build/bin/qv2x (QV2X_CLI).
# Logs (image builds, dockerd, the services) go to QV2X_CHECK_LOGS (/tmp/compose-logs).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

JOBS=2
BUILD=1
KEEP_DAEMON=0
BUILD_ONLY=0
while [ $# -gt 0 ]; do
  case $1 in
    --jobs) JOBS=$2; shift 2;;
    --no-build) BUILD=0; shift;;
    --build-only) BUILD_ONLY=1; shift;;
    --keep-daemon) KEEP_DAEMON=1; shift;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0;;
    *) echo "compose-check: unknown argument $1" >&2; exit 2;;
  esac
done

DOCKER=/usr/bin/docker            # explicitly: another `docker` may come first in PATH
DATA=${QV2X_DOCKER_DATA:-/var/lib/qv2x-compose-check}
RUN_DIR=${QV2X_DOCKER_RUN:-/run/qv2x-compose-check}   # exec-root, socket, pid file
LOGS=${QV2X_CHECK_LOGS:-/tmp/compose-logs}
MIRROR=${QV2X_DEBIAN_MIRROR:-http://deb.debian.org/debian}
QV2X=${QV2X_CLI:-$ROOT/build/bin/qv2x}
BASE_IMAGE=qv2x-base:bookworm
PROM_URL=http://127.0.0.1:9090
PROJECT=${QV2X_COMPOSE_PROJECT:-qv2x-check}
# 127.0.0.1 ports the scene and the training profile listen on (docs/deploy.md).
PORTS=(50080 9480 50090 9490 50091 9491 50092 9492 50093 9493 50070 9470 50060 9460 9090)

export COMPOSE_PROJECT_NAME=$PROJECT
# docker-compose 1.29: build with docker-py's classic builder, which honours
# `build: network: host`, not through the CLI / BuildKit.
export COMPOSE_DOCKER_CLI_BUILD=0 DOCKER_BUILDKIT=0
# What the compose file builds from: our debootstrap base instead of a registry's image.
export QV2X_DEBIAN_IMAGE=$BASE_IMAGE QV2X_BUILD_JOBS=$JOBS
unset QV2X_PROMETHEUS_IMAGE QV2X_INT8_ARTIFACT   # the check runs the defaults
mkdir -p "$LOGS"
# The compose file + the host-network override, rendered into one file without `ports:`.
# docker-compose 1.29 refuses published ports with network_mode host ("host" network_mode
# is incompatible with port_bindings) and an override cannot delete the base file's
# `ports:`; with host networking they mean nothing anyway (the ports are the host's).
RENDERED=$LOGS/docker-compose.host.rendered.yml
COMPOSE=(docker-compose -p "$PROJECT" -f "$RENDERED")
render_compose() {
  docker-compose -f deploy/docker-compose.yml -f deploy/docker-compose.host.yml config |
    python3 -c '
import sys, yaml
c = yaml.safe_load(sys.stdin)
for name, svc in c["services"].items():
    if svc.get("network_mode") != "host":
        sys.exit(f"compose-check: service {name} is not on the host network")
    svc.pop("ports", None)
yaml.safe_dump(c, sys.stdout, sort_keys=False)' >"$RENDERED.tmp"
  mv "$RENDERED.tmp" "$RENDERED"
}

# docker-compose 1.29 runs `exec` through the `docker` found in PATH: make it ours.
SHIM=$(mktemp -d /tmp/compose-check-bin.XXXXXX)
ln -s "$DOCKER" "$SHIM/docker"
export PATH=$SHIM:$PATH

STEP=start
STEP_T0=0
TIMINGS=()
STARTED_DAEMON=0
DAEMON_PID=
COMPOSE_UP=0

log() { printf '[%s] %s\n' "$(date +%T)" "$*"; }
now() { date +%s.%N; }
elapsed() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$1" "$(now)"; }

# run_step NAME FUNCTION [ARGS]: times one step. A failure inside exits the script (set -e)
# and the EXIT trap names $STEP.
run_step() {
  STEP=$1; shift
  STEP_T0=$(now)
  log "== step $STEP"
  "$@"
  local s
  s=$(elapsed "$STEP_T0")
  TIMINGS+=("$(printf '%-16s %7ss  ok' "$STEP" "$s")")
  log "== step $STEP: ok (${s}s)"
}

fail() { echo "compose-check: $*" >&2; return 1; }

# ---------------------------------------------------------------------------- helpers
prom_query() {  # PromQL -> the result as JSON (fails when Prometheus does not answer)
  curl -fsS --max-time 5 "$PROM_URL/api/v1/query" --data-urlencode "query=$1"
}
prom_value() {  # PromQL -> the first sample's value, or "none"
  prom_query "$1" | python3 -c '
import json, sys
r = json.load(sys.stdin)["data"]["result"]
print(r[0]["value"][1] if r else "none")'
}
gt() { python3 -c 'import sys; a, b = sys.argv[1:]; sys.exit(0 if a != "none" and (b == "none" or float(a) > float(b)) else 1)' "$1" "$2"; }

# targets JOB... -> prints each active target of those jobs; succeeds when all are up.
targets_up() {
  curl -fsS --max-time 5 "$PROM_URL/api/v1/targets?state=active" | python3 -c '
import json, sys
jobs = set(sys.argv[1:])
ts = [t for t in json.load(sys.stdin)["data"]["activeTargets"] if t["labels"]["job"] in jobs]
for t in sorted(ts, key=lambda t: (t["labels"]["job"], t["labels"].get("instance", ""))):
    job, inst = t["labels"]["job"], t["labels"].get("instance", "")
    print("  %-15s %-16s %-8s %s" % (job, inst, t["health"], t.get("lastError") or ""))
seen = {t["labels"]["job"] for t in ts}
sys.exit(0 if ts and seen == jobs and all(t["health"] == "up" for t in ts) else 1)' "$@"
}

# wait_healthy TIMEOUT SERVICE...: every service's container running and healthy. A
# container that exits or restarts fails at once, with its last log lines.
wait_healthy() {
  local timeout=$1; shift
  local t0=$SECONDS svc id state health pending
  declare -A done_at=()
  while :; do
    pending=()
    for svc in "$@"; do
      [ -n "${done_at[$svc]:-}" ] && continue
      id=$("${COMPOSE[@]}" ps -q "$svc" 2>/dev/null || true)
      if [ -z "$id" ]; then pending+=("$svc(no container)"); continue; fi
      read -r state health < <($DOCKER inspect -f \
        '{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$id")
      if [ "$state" = exited ] || [ "$state" = dead ] ||
         [ "$($DOCKER inspect -f '{{.RestartCount}}' "$id")" != 0 ]; then
        "${COMPOSE[@]}" logs --tail=30 "$svc" >&2 || true
        fail "$svc is $state (restarts: $($DOCKER inspect -f '{{.RestartCount}}' "$id"))"
      fi
      if [ "$state" = running ] && [ "$health" = healthy ]; then
        done_at[$svc]=$((SECONDS - t0))
        log "  $svc healthy after ${done_at[$svc]}s"
      else
        pending+=("$svc($state/$health)")
      fi
    done
    [ ${#pending[@]} -eq 0 ] && return 0
    if [ $((SECONDS - t0)) -ge "$timeout" ]; then
      for svc in "$@"; do "${COMPOSE[@]}" logs --tail=20 "$svc" >&2 || true; done
      fail "not healthy after ${timeout}s: ${pending[*]}"
    fi
    sleep 3
  done
}

# grows EXPR TIMEOUT: the value of EXPR rises within TIMEOUT seconds; prints both values.
grows() {
  local expr=$1 timeout=$2 t0=$SECONDS v0 v1
  v0=$(prom_value "$expr") || v0=none
  while :; do
    sleep 5
    v1=$(prom_value "$expr") || v1=none
    if gt "$v1" "$v0"; then
      log "  $expr: $v0 -> $v1 in $((SECONDS - t0))s"
      return 0
    fi
    [ $((SECONDS - t0)) -ge "$timeout" ] && fail "$expr did not grow in ${timeout}s ($v0 -> $v1)"
  done
}

# ------------------------------------------------------------------------------ steps
preflight() {
  local c p busy=()
  for c in "$DOCKER" docker-compose curl python3 ss; do
    command -v "$c" >/dev/null || fail "$c not found (apt-get install docker.io docker-compose curl iproute2)"
  done
  if [ "$BUILD_ONLY" = 0 ]; then
    "$QV2X" --help >/dev/null || fail "$QV2X does not run (build the host tools: make build)"
  fi
  for p in "${PORTS[@]}"; do
    [ -n "$(ss -Hltn "sport = :$p")" ] && busy+=("$p")
  done
  [ ${#busy[@]} -eq 0 ] || fail "ports already in use on this host: ${busy[*]} (a scene or Prometheus running?)"
  render_compose
  # `qv2x agent` prefers a running `qv2x scene up`'s endpoints over the fixed ports.
  [ ! -e .qv2x-run/intersection/endpoints.json ] ||
    log "  warning: .qv2x-run/intersection/endpoints.json exists; qv2x agent will use it"
  log "  docker-compose $(docker-compose version --short), CLI $QV2X, revision $(git describe --always --dirty 2>/dev/null || echo unknown)"
}

daemon_start() {
  if $DOCKER info >/dev/null 2>&1; then
    log "  using the daemon at ${DOCKER_HOST:-unix:///var/run/docker.sock}"
    return 0
  fi
  [ "$(id -u)" = 0 ] || fail "no Docker daemon answers and a private one needs root"
  command -v dockerd >/dev/null || fail "dockerd not found (apt-get install docker.io)"
  export DOCKER_HOST=unix://$RUN_DIR/docker.sock
  mkdir -p "$DATA/docker" "$RUN_DIR/exec"
  if $DOCKER info >/dev/null 2>&1; then
    # Ours, left running by an interrupted run: adopt it, and stop it at the end.
    DAEMON_PID=$(cat "$RUN_DIR/dockerd.pid")
    STARTED_DAEMON=1
    log "  adopted the private daemon left running (pid $DAEMON_PID)"
    return 0
  fi
  # No bridge, no NAT, no iptables: containers use the host's network namespace only.
  nohup dockerd --bridge=none --iptables=false --ip-masq=false --ip-forward=false \
    --storage-driver=overlay2 --data-root "$DATA/docker" --exec-root "$RUN_DIR/exec" \
    --pidfile "$RUN_DIR/dockerd.pid" -H "$DOCKER_HOST" >>"$LOGS/dockerd.log" 2>&1 &
  DAEMON_PID=$!
  STARTED_DAEMON=1
  for _ in $(seq 60); do
    $DOCKER info >/dev/null 2>&1 && { log "  private dockerd pid $DAEMON_PID on $DOCKER_HOST"; return 0; }
    kill -0 "$DAEMON_PID" 2>/dev/null || { tail -20 "$LOGS/dockerd.log" >&2; fail "dockerd exited"; }
    sleep 1
  done
  tail -20 "$LOGS/dockerd.log" >&2
  fail "dockerd did not answer within 60s"
}

# The base of every image: Debian 12 minbase from debootstrap, imported as an image. The
# rootfs tarball is cached next to the daemon's data, so a new daemon imports it again in
# seconds instead of re-running debootstrap.
base_image() {
  if $DOCKER image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    log "  $BASE_IMAGE already in the daemon"
    return 0
  fi
  local cache=$DATA/cache tar=$DATA/cache/bookworm-minbase.tar
  mkdir -p "$cache"
  if [ ! -s "$tar" ]; then
    command -v debootstrap >/dev/null || fail "debootstrap not found (apt-get install debootstrap)"
    local rootfs=$cache/rootfs
    rm -rf "$rootfs"
    debootstrap --variant=minbase bookworm "$rootfs" "$MIRROR" >"$LOGS/debootstrap.log" 2>&1 ||
      { tail -20 "$LOGS/debootstrap.log" >&2; fail "debootstrap failed"; }
    # Point releases and security updates too, like Debian's own images.
    cat >"$rootfs/etc/apt/sources.list" <<EOF
deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
deb ${MIRROR%/debian}/debian-security bookworm-security main
EOF
    # As in Debian's images: package installs never start services.
    printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
    chmod 0755 "$rootfs/usr/sbin/policy-rc.d"
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    # /dev, /proc and /sys are provided by the container runtime.
    tar -C "$rootfs" --numeric-owner --exclude=./dev/* --exclude=./proc/* --exclude=./sys/* \
      -cf "$tar.tmp" .
    mv "$tar.tmp" "$tar"
    rm -rf "$rootfs"
  fi
  $DOCKER import --change 'CMD ["bash"]' - "$BASE_IMAGE" <"$tar" >/dev/null
  log "  imported $BASE_IMAGE ($(du -h "$tar" | cut -f1) rootfs)"
}

build_images() {
  local rev
  rev=$(git describe --always --dirty 2>/dev/null || echo unknown)
  # One service builds qv2x:cpu for all of them (same image and build).
  "${COMPOSE[@]}" build --build-arg "QV2X_REVISION=$rev" fusion >"$LOGS/build-qv2x.log" 2>&1 ||
    { tail -40 "$LOGS/build-qv2x.log" >&2; fail "image qv2x:cpu did not build (log: $LOGS/build-qv2x.log)"; }
  "${COMPOSE[@]}" build prometheus >"$LOGS/build-prometheus.log" 2>&1 ||
    { tail -40 "$LOGS/build-prometheus.log" >&2; fail "Prometheus image did not build"; }
  # Tag the build stage's last layer too (the classic builder prints each step's image id;
  # the one before the runtime stage's FROM): its layers are the next build's cache, and
  # untagged they would go with the prune below, which removes the older builds'
  # leftovers (each source change leaves a ~7 GB build stage behind).
  local stage
  stage=$(awk '/^ ---> [0-9a-f]+$/ {id = $2} /^Step [0-9]+\/[0-9]+ : FROM .* AS runtime$/ {print id; exit}' \
    "$LOGS/build-qv2x.log")
  [ -n "$stage" ] || fail "no build-stage image id in $LOGS/build-qv2x.log"
  $DOCKER tag "$stage" qv2x:cpu-build
  log "  $($DOCKER image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' qv2x:cpu)," \
      "$($DOCKER image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' qv2x-prometheus)"
  # Only in our private daemon: elsewhere the dangling images may be someone else's.
  if [ "$STARTED_DAEMON" = 1 ]; then
    $DOCKER container prune -f >/dev/null   # left by interrupted builds
    log "  older builds' layers pruned: $($DOCKER image prune -f | sed -n 's/^Total reclaimed space: //p')"
  fi
}

check_images() {
  $DOCKER image inspect qv2x:cpu qv2x-prometheus:2.42 >/dev/null ||
    fail "--no-build: qv2x:cpu or qv2x-prometheus:2.42 is not in the daemon"
  log "  qv2x:cpu revision $($DOCKER image inspect -f \
    '{{index .Config.Labels "org.opencontainers.image.revision"}}' qv2x:cpu)"
}

scene_up() {
  COMPOSE_UP=1
  "${COMPOSE[@]}" up -d --no-build
}

scene_healthy() { wait_healthy 600 fusion agent-ego agent-1 agent-2 agent-rsu prometheus; }

scene_targets() {
  local t0=$SECONDS
  until targets_up qv2x-fusion qv2x-agent prometheus >/dev/null; do
    [ $((SECONDS - t0)) -ge 60 ] && { targets_up qv2x-fusion qv2x-agent prometheus || true; fail "targets not all up"; }
    sleep 2
  done
  targets_up qv2x-fusion qv2x-agent prometheus
}

frames_grow() {
  grows 'sum(qv2x_fusion_frames_total{outcome="fused"})' 180
  grows 'sum(qv2x_fusion_received_bytes_total)' 60
  log "  fused frames/s over 1m: $(prom_value 'sum(rate(qv2x_fusion_frames_total{outcome="fused"}[1m]))')," \
      "agents per frame: $(prom_value 'sum(rate(qv2x_fusion_agents_per_frame_sum[1m])) / sum(rate(qv2x_fusion_agents_per_frame_count[1m]))')," \
      "rejected: $(prom_value 'sum(qv2x_fusion_rejected_messages_total)')"
}

int8_swap() {
  local int8='sum(qv2x_agent_frames_sent_total{agent="1",precision="int8"})'
  local fp32='sum(qv2x_agent_frames_sent_total{agent="1",precision="fp32"})'
  local rejected0 t0=$SECONDS v
  rejected0=$(prom_value 'sum(qv2x_fusion_rejected_messages_total)')
  log "  before: int8 frames $(prom_value "$int8"), fp32 frames $(prom_value "$fp32")"
  "$QV2X" agent set-precision --agent 1 int8
  # The swap lands between two frames; the int8 series then counts up.
  until v=$(prom_value "$int8") && gt "$v" 0; do
    [ $((SECONDS - t0)) -ge 120 ] && fail "no INT8 frames from agent 1 within 120s"
    sleep 2
  done
  log "  first INT8 frames counted after $((SECONDS - t0))s"
  grows "$int8" 60
  local f0 f1
  f0=$(prom_value "$fp32"); sleep 5; f1=$(prom_value "$fp32")
  [ "$f0" = "$f1" ] || fail "agent 1 still sends FP32 frames after the swap ($f0 -> $f1)"
  log "  agent 1 FP32 frames stopped at $f1; fusion rejections $rejected0 -> $(prom_value 'sum(qv2x_fusion_rejected_messages_total)')"
  "$QV2X" agent status --agent 1 || true
}

training_up() {
  "${COMPOSE[@]}" --profile training up -d --no-build trainer quantizer
  wait_healthy 600 trainer quantizer
  local t0=$SECONDS
  until targets_up qv2x-fusion qv2x-agent qv2x-trainer qv2x-quantizer prometheus >/dev/null; do
    [ $((SECONDS - t0)) -ge 60 ] && { targets_up qv2x-trainer qv2x-quantizer || true; fail "training targets not all up"; }
    sleep 2
  done
  targets_up qv2x-fusion qv2x-agent qv2x-trainer qv2x-quantizer prometheus
}

# Stage 1 of the cpu preset, shrunk to a few frames: the RPC, the data path (simulator
# scenes under /opt/qv2x/configs), the training loop and checkpoint writing on the
# artifacts volume, in well under the minutes a real epoch takes.
train_stage() {
  timeout 900 "${COMPOSE[@]}" exec -T trainer qv2x train --trainer 127.0.0.1:50070 --stage 1 \
    --config configs/cpu/stage1.yaml --out compose-check/stage1 \
    --set train_params.train_frames=4 --set train_params.val_frames=2 \
    --set train_params.batch_size=2 --set train_params.epoches=1
  "${COMPOSE[@]}" exec -T trainer ls -l /var/lib/qv2x/artifacts/compose-check/stage1
  "${COMPOSE[@]}" exec -T trainer test -s /var/lib/qv2x/artifacts/compose-check/stage1/last.pth ||
    fail "no last.pth on the artifacts volume"
  sleep 6  # one trainer scrape (5 s)
  log "  trainer jobs by state: $(prom_query 'qv2x_trainer_jobs_total' | python3 -c '
import json, sys
print(", ".join("%s=%s" % (r["metric"].get("state"), r["value"][1])
                for r in json.load(sys.stdin)["data"]["result"]))')"
}

scene_down() {
  "${COMPOSE[@]}" --profile training logs --no-color --timestamps >"$LOGS/services.log" 2>&1 || true
  "${COMPOSE[@]}" --profile training down -v --remove-orphans --timeout 20
  COMPOSE_UP=0
  local left
  left=$($DOCKER ps -aq --filter "label=com.docker.compose.project=$PROJECT")
  [ -z "$left" ] || fail "containers left: $left"
  left=$($DOCKER volume ls -q --filter "label=com.docker.compose.project=$PROJECT")
  [ -z "$left" ] || fail "volumes left: $left"
  left=$($DOCKER network ls -q --filter "label=com.docker.compose.project=$PROJECT")
  [ -z "$left" ] || fail "networks left: $left"
}

daemon_stop() {
  [ "$STARTED_DAEMON" = 1 ] || { log "  not ours: left running"; return 0; }
  [ "$KEEP_DAEMON" = 1 ] && { log "  --keep-daemon: dockerd $DAEMON_PID left running on $DOCKER_HOST"; return 0; }
  kill -TERM "$DAEMON_PID" 2>/dev/null || true
  for _ in $(seq 60); do
    kill -0 "$DAEMON_PID" 2>/dev/null || break
    sleep 1
  done
  kill -0 "$DAEMON_PID" 2>/dev/null && fail "dockerd $DAEMON_PID still running 60s after SIGTERM"
  STARTED_DAEMON=0
  # dockerd bind-mounts its netns folder and does not always unmount it.
  local m
  while read -r m; do
    umount "$m" || fail "cannot unmount $m"
  done < <(awk -v a="$RUN_DIR" -v b="$DATA" 'index($2, a) == 1 || index($2, b) == 1 {print $2}' /proc/mounts | sort -r)
  m=$(awk -v a="$RUN_DIR" -v b="$DATA" 'index($2, a) == 1 || index($2, b) == 1' /proc/mounts)
  [ -z "$m" ] || fail "mounts left: $m"
  log "  dockerd stopped; images cached in $DATA ($(du -sh "$DATA" 2>/dev/null | cut -f1))"
}

summary() {
  echo
  echo "compose-check timings:"
  printf '  %s\n' "${TIMINGS[@]}"
}

on_exit() {
  local rc=$?
  trap - EXIT
  set +e
  if [ "$rc" != 0 ]; then
    local s
    s=$(elapsed "$STEP_T0")
    TIMINGS+=("$(printf '%-16s %7ss  FAILED' "$STEP" "$s")")
    log "== step $STEP: FAILED (${s}s); cleaning up"
    if [ "$COMPOSE_UP" = 1 ]; then
      "${COMPOSE[@]}" --profile training logs --no-color --timestamps >"$LOGS/services.log" 2>&1
      "${COMPOSE[@]}" --profile training down -v --remove-orphans --timeout 20
    fi
    [ "$STARTED_DAEMON" = 1 ] && daemon_stop
  fi
  rm -rf "$SHIM"
  summary
  if [ "$rc" != 0 ]; then
    echo "compose-check: FAILED at step $STEP (logs in $LOGS)"
  else
    echo "compose-check: OK"
  fi
  exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT TERM

T_ALL=$(now)
run_step preflight preflight
run_step daemon daemon_start
run_step base-image base_image
if [ "$BUILD" = 1 ]; then
  run_step build-images build_images
else
  run_step check-images check_images
fi
if [ "$BUILD_ONLY" = 1 ]; then
  run_step daemon-stop daemon_stop
  TIMINGS+=("$(printf '%-16s %7ss' total "$(elapsed "$T_ALL")")")
  exit 0
fi
run_step up scene_up
run_step healthy scene_healthy
run_step targets scene_targets
run_step frames-grow frames_grow
run_step int8-swap int8_swap
run_step training-up training_up
run_step train-stage train_stage
run_step down scene_down
run_step daemon-stop daemon_stop
TIMINGS+=("$(printf '%-16s %7ss' total "$(elapsed "$T_ALL")")")
