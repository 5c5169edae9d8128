#!/usr/bin/env bash
# Installs every Debian package qv2x needs. Idempotent: installs only what is missing.
# BLIS is the BLAS: OpenBLAS makes prometheus-cpp's HTTP exposer fail to start in any
# process that links libtorch, so this script refuses to continue when OpenBLAS is present.
set -euo pipefail

PKGS=(
  build-essential cmake ninja-build ccache pkg-config git
  libblis4-openmp libblis-openmp-dev liblapack3
  libtorch-dev
  libgrpc++-dev libgrpc-dev protobuf-compiler protobuf-compiler-grpc libprotobuf-dev
  libabsl-dev libyaml-cpp-dev prometheus-cpp-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  nlohmann-json3-dev libzstd-dev libpng-dev libjemalloc-dev liblzf-dev zlib1g-dev libzip-dev
  curl
  # deploy/ checks (ctest deploy_*): `docker-compose config` validates the compose file
  # without a Docker engine; `prometheus` is the package that ships promtool;
  # python3-yaml runs deploy/check_deploy.py. None pulls OpenBLAS. On a host running
  # systemd the prometheus package also starts a system Prometheus on :9090 (docs/deploy.md).
  docker-compose prometheus python3-yaml
  # `make demo` runs a real Prometheus (the package above) and draws its plots with gnuplot.
  gnuplot-nox
)
# Optional: Debian's PyTorch for the checkpoint interoperability test and the PyTorch
# reference check of `qv2x model forward` (ctest model_forward_reference, ~15 s), and
# mrpt-common for its real VLP-16 sweep (data_velodyne_test, dataset_cli_test); the tests
# are skipped without them.
# Installed by default; QV2X_MINIMAL_DEPS=1 skips them.
OPTIONAL=(python3-torch mrpt-common)

openblas=$(dpkg-query -W -f='${Package} ${Status}\n' 'libopenblas*' 2>/dev/null |
  awk '/install ok installed/ {print $1}' || true)
if [ -n "$openblas" ]; then
  echo "install-deps: OpenBLAS is installed ($(echo $openblas)). qv2x needs BLIS as the" >&2
  echo "  BLAS: with OpenBLAS, prometheus-cpp's exposer fails to start in any process that" >&2
  echo "  links libtorch. Remove it (apt-get remove $(echo $openblas)) and rerun." >&2
  exit 1
fi

want=("${PKGS[@]}")
[ "${QV2X_MINIMAL_DEPS:-0}" = 1 ] || want+=("${OPTIONAL[@]}")
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

# ---- Node.js + npm: the Kubernetes manifest validator (ctest deploy_k8s_schema*) --------
# deploy/k8s/validate/ runs on Node.js with npm packages pinned by its package-lock.json.
# Debian's nodejs and npm are installed (with the packages above) only where no `node` /
# `npm` is on PATH; then `npm ci` installs the validator's node_modules whenever they are
# missing or were installed from another package-lock.json (a stamp of its checksum).
K8S_VALIDATE="$(cd "$(dirname "$0")/.." && pwd)/deploy/k8s/validate"
K8S_STAMP="$K8S_VALIDATE/node_modules/.qv2x-package-lock.sha256"
# QV2X_MINIMAL_DEPS=1 (the image builds: docker/Dockerfile.cpu) skips the validator: it
# is a test tool, and the build context has no deploy/ folder.
if [ "${QV2X_MINIMAL_DEPS:-0}" != 1 ]; then
  command -v node >/dev/null 2>&1 || missing+=(nodejs)
  command -v npm >/dev/null 2>&1 || missing+=(npm)
fi
k8s_validator_current() {
  [ "${QV2X_MINIMAL_DEPS:-0}" = 1 ] && return 0
  [ -f "$K8S_STAMP" ] && [ "$(cat "$K8S_STAMP")" = "$(sha256sum < "$K8S_VALIDATE/package-lock.json")" ]
}
if [ "${1:-}" = "--check" ] && ! k8s_validator_current; then
  echo "missing: ${missing[*]:+${missing[*]} }deploy/k8s/validate/node_modules (npm ci)"; exit 1
fi
# ---- end of Node.js + npm (its npm ci step is at the end) -------------------------------

if [ "${1:-}" = "--check" ]; then
  [ ${#missing[@]} -eq 0 ] && exit 0
  echo "missing: ${missing[*]}"; exit 1
fi

SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  $SUDO apt-get update -qq
  # prometheus is installed for promtool only: keep its daemon from starting (its postinst
  # fails the install where a service cannot start) unless a policy already decides.
  policy=/usr/sbin/policy-rc.d
  added_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod +x "$policy"
    added_policy=1
  fi
  # BLIS first in the same transaction so that it satisfies libtorch's libblas.so.3.
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    libblis4-openmp "${missing[@]}"
  [ "$added_policy" = 0 ] || $SUDO rm -f "$policy"
fi

openblas=$(dpkg-query -W -f='${Package} ${Status}\n' 'libopenblas*' 2>/dev/null |
  awk '/install ok installed/ {print $1}' || true)
if [ -n "$openblas" ]; then
  echo "install-deps: apt pulled in OpenBLAS ($(echo $openblas)); qv2x cannot use it." >&2
  exit 1
fi
# Make BLIS the active libblas.so.3 even if the reference BLAS was installed too.
arch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)
blis=/usr/lib/$arch/blis-openmp/libblas.so.3
if [ -e "$blis" ]; then
  $SUDO update-alternatives --set "libblas.so.3-$arch" "$blis" >/dev/null
fi
# ---- Node.js + npm, continued: the validator's packages ------------------------------
if ! k8s_validator_current; then
  echo "install-deps: npm ci in deploy/k8s/validate"
  rm -f "$K8S_STAMP"
  (cd "$K8S_VALIDATE" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error)
  sha256sum < "$K8S_VALIDATE/package-lock.json" > "$K8S_STAMP"
fi
echo "install-deps: ok"
