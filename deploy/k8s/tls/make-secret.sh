#!/bin/sh
# The TLS material of the Kubernetes scene (deploy/k8s/tls) and the Secret qv2x-tls that
# carries it (docs/deploy.md, Kubernetes, "Mutual TLS"):
#
#   deploy/k8s/tls/make-secret.sh DIR
#   kubectl create namespace qv2x; kubectl apply -f DIR/qv2x-tls.yaml
#
# Runs deploy/tls/make-certs.sh DIR for every qv2x pod's certificate, each also naming the
# pod's Service (qv2x-fusion, qv2x-fusion.qv2x.svc, ...: the host its clients dial, which
# TLS verifies; the agents dial qv2x-fusion:50080), and for `client`. DIR's CA and token
# are reused, so DIR may be compose's deploy/tls/certs: the certificates still name
# fusion, agent-1, ..., localhost and 127.0.0.1. Then writes DIR/qv2x-tls.yaml (mode 0600):
# the Secret with ca.crt, token and each pod's NAME.crt / NAME.key; not ca.key (it signs
# certificates: keep it off the cluster), nor client.crt / client.key (yours, for
# `qv2x ... --tls-cert` through `kubectl port-forward`). Never commit DIR.
set -eu

if [ $# -ne 1 ]; then
  sed -n '2,15p' "$0" >&2
  exit 2
fi
dir=$1
ns=qv2x
specs=
names=
# certificate name:Service of its pod (deploy/k8s/base)
for pair in fusion:qv2x-fusion trainer:qv2x-trainer quantizer:qv2x-quantizer \
    agent-0:qv2x-agent-ego agent-1:qv2x-agent-vehicle-1 agent-2:qv2x-agent-vehicle-2 \
    agent--1:qv2x-agent-rsu; do
  name=${pair%%:*}
  svc=${pair#*:}
  specs="$specs $name,DNS:$svc,DNS:$svc.$ns.svc,DNS:$svc.$ns.svc.cluster.local"
  names="$names $name"
done
# shellcheck disable=SC2086  # word splitting wanted; no spaces in these
"$(dirname "$0")/../../tls/make-certs.sh" "$dir" $specs client

out=$dir/qv2x-tls.yaml
umask 077
{
  printf 'apiVersion: v1\nkind: Secret\ntype: Opaque\nmetadata:\n'
  printf '  name: qv2x-tls\n  namespace: %s\n' "$ns"
  printf '  labels: {app.kubernetes.io/name: qv2x, app.kubernetes.io/component: tls}\ndata:\n'
  for f in ca.crt token $(for n in $names; do echo "$n.crt $n.key"; done); do
    printf '  %s: %s\n' "$f" "$(base64 <"$dir/$f" | tr -d '\n')"
  done
} >"$out.tmp"
mv "$out.tmp" "$out"
echo "make-secret: $out holds Secret $ns/qv2x-tls (kubectl apply -f $out)"
