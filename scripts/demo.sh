#!/usr/bin/env bash
# The Tollgate demo: a dev server with the Web UI, a worker, one small request (created
# directly), one large request (approved by carol), one withdrawn, one whose workflow is
# terminated behind Tollgate's back (the reconciler cleans up after it), both survivors
# expiring and destroyed on short demo durations. Set DEMO_EXIT=1 to stop everything at the
# end instead of staying up for the Web UI.
set -euo pipefail
cd "$(dirname "$0")/.."

PORT="${DEMO_PORT:-7233}"
UI_PORT="${DEMO_UI_PORT:-8233}"
export TOLLGATE_CONFIG="${TOLLGATE_CONFIG:-demo/tollgate.toml}"
export TEMPORAL_ADDRESS="127.0.0.1:${PORT}"
export TOLLGATE_WEB_UI_URL="http://127.0.0.1:${UI_PORT}"
T=target/debug/tollgate
TEMPORAL=.tools/py/bin/temporal
# Each run starts from scratch: its own server database, artifacts and sandbox cloud.
rm -rf .tollgate/demo
mkdir -p .tollgate/demo

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '\033[2m$ %s\033[0m\n' "$*"; "$@"; }

say "Starting the Temporal dev server and a Tollgate worker (log: .tollgate/demo/dev.log)"
"$T" dev --port "$PORT" --ui-port "$UI_PORT" >.tollgate/demo/dev.log 2>&1 &
DEV_PID=$!
trap 'kill $DEV_PID 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do
  if "$T" list >/dev/null 2>&1; then break; fi
  if ! kill -0 "$DEV_PID" 2>/dev/null; then cat .tollgate/demo/dev.log; exit 1; fi
  sleep 0.5
done
"$T" list >/dev/null
sed -n '1,/^Approvers/p' .tollgate/demo/dev.log

say "A small request: an S3 bucket for alice (cheap, so it is created directly)"
SMALL=$("$T" request s3 --requester alice --name "demo-logs-$RANDOM" --ttl 30s)
echo "request id: $SMALL"
run "$T" status "$SMALL" --watch

say "A large request: a db.r5.2xlarge Postgres for bob (about \$742/month: needs approval)"
BIG=$("$T" request rds --requester bob --name "demo-orders-$RANDOM" --param instance_class=db.r5.2xlarge --param allocated_storage_gb=100 --ttl 40s)
echo "request id: $BIG"
run "$T" status "$BIG" --watch --brief

say "bob tries to approve his own request (refused)"
run "$T" approve "$BIG" --as bob || true

say "carol, a configured approver, approves it"
run "$T" approve "$BIG" --as carol --comment "approved for the load test"
run "$T" status "$BIG" --watch

say "A third request: dave asks for an EC2 box, then withdraws it (nothing more is created; what exists is destroyed)"
THIRD=$("$T" request ec2 --requester dave --name "demo-ci-$RANDOM" --ttl 1m)
echo "request id: $THIRD"
run "$T" status "$THIRD" --watch --brief
run "$T" cancel "$THIRD" --as dave --reason "the CI job moved elsewhere"
run "$T" status "$THIRD" --follow --brief

say "A fourth request: erin's bucket, whose workflow an operator terminates in Temporal (no cleanup runs)"
LOST=$("$T" request s3 --requester erin --name "demo-scratch-$RANDOM" --ttl 1m)
echo "request id: $LOST"
"$T" status "$LOST" --watch --brief
run "$TEMPORAL" workflow terminate --address "$TEMPORAL_ADDRESS" --workflow-id "$LOST" --reason "demo: terminated by hand" >/dev/null
echo "terminated; its bucket still exists:"
run "$T" status "$LOST" | grep -E '^(Stage|Stopped|Output)' || true

say "Everything Tollgate is looking after"
run "$T" list

say "The reconciler: finds what a closed request left behind and destroys it"
run "$T" reconcile

say "Waiting for alice's and bob's requests to expire; Tollgate warns the requesters, then destroys them"
run "$T" status "$SMALL" --follow --brief
run "$T" status "$BIG" --follow --brief
run "$T" list

say "Policy as code: the same Rego pack the worker runs, on a plan that opens SSH to the world"
run "$T" policy check tests/fixtures/policies/open-ingress/fail.json || echo "(exit $?: denied)"

say "Notifications the worker sent (log channel)"
grep -a "\[tollgate\]" .tollgate/demo/dev.log | sed 's/\x1b\[[0-9;]*m//g' | cut -c1-160 || true

say "Done. Every request is in the Temporal Web UI"
echo "All requests:      http://127.0.0.1:${UI_PORT}/namespaces/default/workflows?query=WorkflowType%20%3D%20%22ProvisionWorkflow%22"
echo "Add Tollgate's columns with 'Configure Columns' (TollgateStage, TollgateRequester, ...); see the README's Web UI section."
if [ "${DEMO_EXIT:-0}" != "1" ]; then
  echo "The server and worker keep running for the Web UI; press Ctrl-C to stop."
  wait "$DEV_PID"
fi
