#!/bin/sh
# A throw-away PKI for trying the secure set-up on one machine (examples/README.md
# "TLS and client certificates on one machine"). Run from the repository root:
#
#   sh examples/tls/make-pki.sh            # writes /tmp/ipphone-examples/tls/
#
# It makes, with openssl (EC P-256): a CA; the broker's certificate for 127.0.0.1
# and localhost (subjectAltName IP:127.0.0.1 and DNS:localhost — the host of the
# mqtts: URLs in examples/tls/*.json; without the SAN a client refuses the broker);
# one client certificate per call manager, phone and operator, its CN the identity
# the broker's ACL sees; and the ACL itself, printed by `ipphone-admin acl`.
# FOR A TRIAL ON LOOPBACK ONLY: production keys are made on the device (or at least
# not beside the CA key) and the CA key is kept offline (README "Secure set-up").
set -eu
DIR=${1:-/tmp/ipphone-examples/tls}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$DIR"
cd "$DIR"

# The CA.
openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
  -keyout ca.key -out ca.crt -subj "/CN=ipphone trial CA" \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign

# The broker: valid for the names the clients connect to.
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -keyout server.key -out server.csr -subj "/CN=localhost"
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' > server.ext
openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 -extfile server.ext -out server.crt

# One per call manager, phone and operator: the CN is the identity.
printf 'extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n' > client.ext
for cn in cm-a cm-b p-0001 p-0002 p-0003 ops-1; do
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$cn.key" -out "$cn.csr" -subj "/CN=$cn"
  openssl x509 -req -in "$cn.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 -extfile client.ext -out "$cn.crt"
done

# Who may publish and read what: the group of examples/tls/cm-a.json, operator ops-1.
node "$ROOT/dist/bin/ipphone-admin.js" acl --config "$ROOT/examples/tls/cm-a.json" --operator ops-1 > acl

# mosquitto started as root drops to user mosquitto, which must read its files: on
# this trial, the directory, the broker's key and the ACL are readable by all.
chmod 0755 "$DIR"
chmod 0644 ca.crt server.crt server.key acl
chmod 0600 ca.key cm-a.key cm-b.key p-0001.key p-0002.key p-0003.key ops-1.key
rm -f ./*.csr
echo "made in $DIR: ca.crt server.crt/.key (IP:127.0.0.1, DNS:localhost), cm-a cm-b p-0001 p-0002 p-0003 ops-1 .crt/.key, acl"
