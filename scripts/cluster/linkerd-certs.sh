#!/usr/bin/env bash
# Linkerd's mTLS roots for a local cluster, made with openssl (the equivalent of Linkerd's `step` recipe):
#   ca.crt              trust anchor: ECDSA P-256 root CA, CN root.linkerd.cluster.local, 10 years
#   issuer.crt/.key     identity issuer: ECDSA P-256 intermediate CA (pathlen 0), CN identity.linkerd.cluster.local, 1 year
# Usage: linkerd-certs.sh DIR. Idempotent: keeps existing files while the issuer is valid for 30 more days.
# DIR is git-ignored (.dev/cluster/linkerd); the CA key never leaves it.
set -euo pipefail
dir="${1:?usage: linkerd-certs.sh DIR}"
mkdir -p "$dir"
chmod 700 "$dir"
cd "$dir"

if [[ -s ca.crt && -s issuer.crt && -s issuer.key ]] \
  && openssl x509 -checkend $((30 * 24 * 3600)) -noout -in issuer.crt >/dev/null \
  && openssl verify -CAfile ca.crt issuer.crt >/dev/null 2>&1; then
  echo "linkerd certs: reusing $dir (issuer valid until $(openssl x509 -enddate -noout -in issuer.crt | cut -d= -f2))"
  exit 0
fi

umask 077
openssl ecparam -name prime256v1 -genkey -noout -out ca.key
openssl req -x509 -new -key ca.key -sha256 -days 3650 -subj "/CN=root.linkerd.cluster.local" \
  -addext "basicConstraints=critical,CA:TRUE,pathlen:1" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -addext "subjectKeyIdentifier=hash" \
  -out ca.crt
openssl ecparam -name prime256v1 -genkey -noout -out issuer.key
openssl req -new -key issuer.key -sha256 -subj "/CN=identity.linkerd.cluster.local" -out issuer.csr
cat > issuer.ext <<'EXT'
basicConstraints=critical,CA:TRUE,pathlen:0
keyUsage=critical,keyCertSign,cRLSign
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid:always
EXT
openssl x509 -req -in issuer.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 365 -sha256 -extfile issuer.ext -out issuer.crt 2>/dev/null
rm -f issuer.csr issuer.ext ca.srl
openssl verify -CAfile ca.crt issuer.crt >/dev/null
echo "linkerd certs: created trust anchor and issuer in $dir"
