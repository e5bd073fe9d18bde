#!/bin/sh
# One-shot job of docker-compose.yml (image temporalio/admin-tools): the namespace and the custom search
# attributes of the engine (workflows/search_attributes.py; tests/test_compose.py checks this list).
# Idempotent: what exists is left alone.
set -eu

address="${TEMPORAL_ADDRESS:-temporal:7233}"
namespace="${TEMPORAL_NAMESPACE:-default}"
retention="${TEMPORAL_NAMESPACE_RETENTION:-720h}"

until temporal operator cluster health --address "$address"; do
  echo "waiting for Temporal at $address"
  sleep 2
done

temporal operator namespace describe --address "$address" --namespace "$namespace" >/dev/null 2>&1 \
  || temporal operator namespace create --address "$address" --namespace "$namespace" --retention "$retention"

existing=$(temporal operator search-attribute list --address "$address" --namespace "$namespace")
for attribute in \
  CallbackStatus=Keyword \
  CallbackPriority=Keyword \
  CompanyId=Int \
  BranchId=Int \
  AssignedStaffId=Keyword \
  SlaDeadline=Datetime \
  EscalationCount=Int \
  CallbackStuck=Bool
do
  name="${attribute%%=*}"
  kind="${attribute#*=}"
  if echo "$existing" | grep -qw "$name"; then
    echo "search attribute $name exists"
  else
    temporal operator search-attribute create --address "$address" --namespace "$namespace" \
      --name "$name" --type "$kind"
  fi
done
echo "namespace $namespace and search attributes are ready"
