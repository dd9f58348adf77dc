#!/usr/bin/env bash
# Creates the TLS material of the integration tests in OUTDIR:
#   ca.pem/ca.key                  test CA
#   server.pem/server.key          localhost + 127.0.0.1 + ::1, signed by the CA
#   wrong-host.pem/wrong-host.key  signed by the CA, but only for not-localhost.example
#   self-signed.pem/self-signed.key  localhost, signed by nobody the client trusts
# EC P-256 keys keep it well under a second. Idempotent: valid existing files
# are kept, so parallel tests may share one directory.
set -euo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: $0 OUTDIR" >&2
  exit 1
fi
out=$1
mkdir -p "$out"
out=$(cd "$out" && pwd)
files=(ca.pem ca.key server.pem server.key wrong-host.pem wrong-host.key self-signed.pem self-signed.key)

complete() {
  local f
  for f in "${files[@]}"; do [[ -s "$out/$f" ]] || return 1; done
  openssl verify -CAfile "$out/ca.pem" "$out/server.pem" "$out/wrong-host.pem" >/dev/null 2>&1 || return 1
  local c
  for c in ca.pem server.pem wrong-host.pem self-signed.pem; do
    openssl x509 -in "$out/$c" -noout -checkend 86400 >/dev/null 2>&1 || return 1
  done
}

# Serialize concurrent callers on the same directory.
exec 9>"$out/.make_test_ca.lock"
flock 9
if complete; then
  exit 0
fi

work=$(mktemp -d "$out/.tmp.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"

new_key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

leaf_ext() {  # $1 = subjectAltName value
  printf '%s\n' "basicConstraints=critical,CA:FALSE" \
    "keyUsage=critical,digitalSignature" \
    "extendedKeyUsage=serverAuth" \
    "subjectKeyIdentifier=hash" \
    "authorityKeyIdentifier=keyid" \
    "subjectAltName=$1"
}

new_key ca.key
openssl req -x509 -new -key ca.key -sha256 -days 3650 -subj "/CN=cerebras-metrics-proxy test CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -addext "subjectKeyIdentifier=hash" -out ca.pem

signed_leaf() {  # $1 = name, $2 = CN, $3 = subjectAltName
  new_key "$1.key"
  openssl req -new -key "$1.key" -subj "/CN=$2" -out "$1.csr"
  leaf_ext "$3" >"$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -sha256 -days 825 \
    -extfile "$1.ext" -out "$1.pem" 2>/dev/null
}
signed_leaf server localhost "DNS:localhost,IP:127.0.0.1,IP:::1"
signed_leaf wrong-host not-localhost.example "DNS:not-localhost.example"

new_key self-signed.key
openssl req -x509 -new -key self-signed.key -sha256 -days 825 -subj "/CN=localhost" \
  -addext "basicConstraints=critical,CA:FALSE" -addext "extendedKeyUsage=serverAuth" \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1" -out self-signed.pem

chmod 600 ./*.key
chmod 644 ./*.pem
for f in "${files[@]}"; do mv -f "$f" "$out/$f"; done
