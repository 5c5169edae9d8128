#!/usr/bin/env bash
# Prints, one per line, the Debian/Ubuntu packages that own the shared libraries the given
# binaries link directly (their DT_NEEDED entries). The Dockerfiles run it in the build
# stage and install exactly that list in the runtime stage, so the runtime image carries
# the runtime libraries (libtorch1.13, libgrpc++1.51, ...) and none of the -dev packages,
# and the list never goes stale when a service starts linking another library.
# Libraries that no package owns (e.g. a LibTorch unpacked under /opt) are reported on
# stderr and skipped: the Dockerfile copies those itself.
# Usage: docker/runtime-packages.sh BINARY...
set -euo pipefail

[ $# -gt 0 ] || { echo "usage: $0 BINARY..." >&2; exit 2; }

owner() {  # path -> package name, or nothing
  local p=$1 out
  # usrmerge: dpkg may have recorded /lib/... while ldd resolves /usr/lib/... (or back).
  for cand in "$p" "$(readlink -f "$p")" "${p#/usr}" "/usr${p}"; do
    out=$(dpkg -S "$cand" 2>/dev/null | head -n1) || true
    if [ -n "$out" ]; then
      echo "${out%%: *}" | cut -d: -f1   # "libfoo1:amd64: /path" -> libfoo1
      return
    fi
  done
}

declare -A seen=()
for bin in "$@"; do
  [ -x "$bin" ] || { echo "runtime-packages: $bin is not an executable" >&2; exit 1; }
  # soname -> resolved path, from the dynamic loader's own view.
  declare -A path_of=()
  while read -r soname _ path _; do
    [ -n "${path:-}" ] && path_of[$soname]=$path
  done < <(ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// {print $1, $2, $3}')
  while read -r soname; do
    path=${path_of[$soname]:-}
    if [ -z "$path" ] && [[ $soname == libcuda.so* ]]; then
      continue  # the host's driver, mounted by the NVIDIA container toolkit at run time
    fi
    if [ -z "$path" ]; then
      echo "runtime-packages: $bin needs $soname, which the loader cannot find" >&2
      exit 1
    fi
    pkg=$(owner "$path")
    if [ -z "$pkg" ]; then
      echo "runtime-packages: $soname ($path) belongs to no package; copy it yourself" >&2
      continue
    fi
    seen[$pkg]=1
  done < <(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
  unset path_of
done
printf '%s\n' "${!seen[@]}" | sort
