#!/bin/sh
# Certificates for mutual TLS between the engine (worker, API) and the Temporal frontend, and between
# the Temporal UI and the frontend: a private CA, a server certificate for the frontend and one client
# certificate for the engine. See docs/operations.md, "Personal data: TLS to Temporal".
#
#   deploy/tls/make-certs.sh [OUT_DIR]          (default: deploy/tls/certs, git-ignored)
#
# Environment:
#   TEMPORAL_TLS_SERVER_NAME  the frontend's name in the certificate (default: temporal, the compose
#                             service name); localhost and 127.0.0.1 are always added
#   CERT_DAYS                 validity of the server and client certificates (default: 365)
#
# Keys are written owner-readable only. The CA key signs new client certificates; keep it offline.
# Rotate by running the script again into a new directory and rolling the services onto it.
set -eu

OUT="${1:-$(dirname "$0")/certs}"
NAME="${TEMPORAL_TLS_SERVER_NAME:-temporal}"
DAYS="${CERT_DAYS:-365}"
umask 077
mkdir -p "$OUT"
cd "$OUT"

# The CA (10 years): signs the frontend's and the clients' certificates.
openssl req -x509 -newkey rsa:3072 -sha256 -nodes -days 3650 \
  -keyout ca.key -out ca.pem -subj "/CN=callbacks Temporal CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null

# The frontend's certificate, valid for its compose name, localhost and loopback.
cat > server.ext <<EXT
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:${NAME},DNS:localhost,IP:127.0.0.1
EXT
openssl req -newkey rsa:3072 -sha256 -nodes -keyout server.key -out server.csr -subj "/CN=${NAME}" 2>/dev/null
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -sha256 -days "$DAYS" \
  -extfile server.ext -out server.pem 2>/dev/null

# The engine's client certificate (worker and API; the UI may use it too).
cat > client.ext <<EXT
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth
EXT
openssl req -newkey rsa:3072 -sha256 -nodes -keyout client.key -out client.csr -subj "/CN=callbacks-engine" 2>/dev/null
openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -sha256 -days "$DAYS" \
  -extfile client.ext -out client.pem 2>/dev/null

rm -f server.csr client.csr server.ext client.ext ca.srl
chmod 600 ca.key server.key client.key
chmod 644 ca.pem server.pem client.pem
echo "certificates in $(pwd): ca.pem, server.pem/server.key (frontend), client.pem/client.key (engine)"
