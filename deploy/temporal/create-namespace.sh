#!/bin/sh
# One-shot (temporalio/admin-tools): the namespace and Tollgate's six search attributes.
# Nothing else creates them (the old auto-setup image is gone), and the workers run with
# register_search_attributes = false, so they need no operator rights.
set -eu
NAMESPACE="${TEMPORAL_NAMESPACE:-default}"
ADDRESS="${TEMPORAL_ADDRESS:-temporal:7233}"
until temporal operator cluster health --address "$ADDRESS" >/dev/null 2>&1; do
  echo 'waiting for the Temporal server...'; sleep 2
done
temporal operator namespace describe -n "$NAMESPACE" --address "$ADDRESS" >/dev/null 2>&1 \
  || temporal operator namespace create -n "$NAMESPACE" --address "$ADDRESS"
# Name=Type pairs; the same list as tollgate_workflows::search_attributes (a test holds them equal).
for attribute in \
  TollgateStage=Keyword TollgateRequester=Keyword TollgateKind=Keyword \
  TollgateMonthlyCost=Double TollgateExpiresAt=Datetime TollgateApprovalRequired=Bool; do
  name="${attribute%%=*}"; type="${attribute#*=}"
  temporal operator search-attribute create -n "$NAMESPACE" --address "$ADDRESS" --name "$name" --type "$type" \
    2>/dev/null || echo "search attribute $name exists"
done
echo "namespace $NAMESPACE ready"
