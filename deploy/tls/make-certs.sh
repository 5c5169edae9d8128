#!/bin/sh
# Makes the TLS material of a qv2x cluster with openssl: a CA, one certificate and key per
# service, and a bearer token for the control RPCs (docs/deploy.md, "TLS and mutual TLS").
#
#   deploy/tls/make-certs.sh DIR [NAME[,SAN...] ...]
#
# DIR/ca.crt and DIR/ca.key are made once and reused; DIR/token too. Each NAME gets
# DIR/NAME.crt and DIR/NAME.key: CN=NAME, Subject Alternative Names DNS:NAME, DNS:localhost,
# IP:127.0.0.1 and any extra SAN given after a comma (e.g. agent-0,DNS:agent-ego), usable
# as server and as client certificate. An agent's certificate must be named agent-<id>
# (agent--1 for id -1): the fusion service checks each agent's id against it. Without
# NAMEs: the names `qv2x scene up --tls-dir` and deploy/docker-compose.tls.yml expect for
# the intersection scene (fusion, trainer, quantizer, client, agents 0, 1, 2, -1).
# Keys are EC P-256, valid QV2X_CERT_DAYS days (default 365). Never commit DIR.
set -eu

if [ $# -lt 1 ]; then
  sed -n '2,16p' "$0" >&2
  exit 2
fi
dir=$1
shift
[ $# -gt 0 ] || set -- fusion trainer quantizer client agent-0 agent-1 agent-2 agent--1
days=${QV2X_CERT_DAYS:-365}
mkdir -p "$dir"
umask 077

if [ ! -f "$dir/ca.crt" ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$dir/ca.key" -out "$dir/ca.crt" -days "$days" -subj "/CN=qv2x cluster CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    2>/dev/null
fi
[ -f "$dir/token" ] || openssl rand -hex 32 >"$dir/token"

for spec in "$@"; do
  name=${spec%%,*}
  extra=
  [ "$name" = "$spec" ] || extra=,${spec#*,}
  ext=$(mktemp)
  printf 'subjectAltName=DNS:%s,DNS:localhost,IP:127.0.0.1%s\n' "$name" "$extra" >"$ext"
  printf 'extendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:FALSE\n' >>"$ext"
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$dir/$name.key" \
    -out "$dir/$name.csr" -subj "/CN=$name" 2>/dev/null
  openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
    -CAcreateserial -out "$dir/$name.crt" -days "$days" -extfile "$ext" 2>/dev/null
  rm -f "$dir/$name.csr" "$ext"
done
# The certificates are public; containers running as another user must read the keys:
# loosen them only where you mount the folder (docs/deploy.md).
chmod 644 "$dir"/*.crt
echo "make-certs: CA, token and $# certificates in $dir"
