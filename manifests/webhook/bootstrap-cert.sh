#!/usr/bin/env bash
# Self-signed TLS for the Sympozium admission webhook, for clusters without cert-manager.
#
# Creates a CA and a serving certificate for sympozium-webhook-service.<namespace>.svc,
# stores them in the Secret sympozium-webhook-tls (tls.crt, tls.key, ca.crt) and puts the
# CA into the caBundle of the ValidatingWebhookConfiguration sympozium-validating-webhook.
# Run it after `kubectl apply -k manifests/`; re-run it to rotate (default: 365 days).
#
# Needs: bash, openssl (1.1.1+ for -addext), kubectl pointing at the cluster.
# Usage:  manifests/webhook/bootstrap-cert.sh [--namespace NS] [--days N] [--kubectl CMD]
set -euo pipefail

namespace=sympozium-system
days=365
kubectl=${KUBECTL:-kubectl}
service=sympozium-webhook-service
secret=sympozium-webhook-tls
webhook=sympozium-validating-webhook

while [ $# -gt 0 ]; do
  case "$1" in
    --namespace) namespace=$2; shift 2 ;;
    --days) days=$2; shift 2 ;;
    --kubectl) kubectl=$2; shift 2 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "bootstrap-cert.sh: unknown argument: $1" >&2; exit 2 ;;
  esac
done

command -v openssl >/dev/null || { echo "bootstrap-cert.sh: openssl not found" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
dns="${service}.${namespace}.svc"

# 1. A CA that exists only to sign the serving certificate.
openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days "$days" \
  -keyout "$work/ca.key" -out "$work/ca.crt" \
  -subj "/CN=sympozium-webhook-ca" >/dev/null 2>&1

# 2. The serving certificate, with the Service's DNS names as subjectAltNames.
openssl req -newkey rsa:2048 -nodes -sha256 \
  -keyout "$work/tls.key" -out "$work/tls.csr" \
  -subj "/CN=${dns}" >/dev/null 2>&1
cat > "$work/ext.cnf" <<EXT
subjectAltName = DNS:${service}, DNS:${service}.${namespace}, DNS:${dns}, DNS:${dns}.cluster.local
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
basicConstraints = CA:FALSE
EXT
openssl x509 -req -sha256 -days "$days" -in "$work/tls.csr" \
  -CA "$work/ca.crt" -CAkey "$work/ca.key" -CAcreateserial \
  -extfile "$work/ext.cnf" -out "$work/tls.crt" >/dev/null 2>&1

# 3. The Secret the webhook Deployment mounts (create or replace).
"$kubectl" create secret generic "$secret" --namespace "$namespace" \
  --type kubernetes.io/tls \
  --from-file=tls.crt="$work/tls.crt" \
  --from-file=tls.key="$work/tls.key" \
  --from-file=ca.crt="$work/ca.crt" \
  --dry-run=client -o yaml | "$kubectl" apply -f -

# 4. Tell the API server to trust that CA when calling the webhook.
ca_bundle=$(base64 < "$work/ca.crt" | tr -d '\n')
"$kubectl" patch validatingwebhookconfiguration "$webhook" --type=json \
  -p "[{\"op\":\"add\",\"path\":\"/webhooks/0/clientConfig/caBundle\",\"value\":\"${ca_bundle}\"}]"

# 5. A running webhook pod reads its certificate at start: restart it to pick up a new one.
"$kubectl" rollout restart deployment/sympozium-webhook --namespace "$namespace" >/dev/null 2>&1 || true

echo "webhook certificate for ${dns} stored in ${namespace}/${secret}; caBundle set on ${webhook}"
