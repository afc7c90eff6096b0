#!/usr/bin/env python3
"""An agent that asks a human before acting, through Tollgate's generic approval API.

    TOLLGATE_URL=http://127.0.0.1:8088 TOLLGATE_TOKEN=tg_... \
        examples/approval_agent.py "deploy api v2 to prod" --context '{"pr": 4242}'

It asks (POST /workflows), waits with long-polls (GET /workflows/{id}?wait=30s, so it sleeps
on the server instead of polling every few seconds; if the gateway restarts mid-wait it simply
asks again: the approval lives in Temporal), then acts only on APPROVED. Exit codes: 0 approved
(and acted), 1 rejected, 2 timed out, 3 the request was refused (bad input or token).
Standard library only.
"""
import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request


def call(method, url, token, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Authorization", f"Bearer {token}")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=90) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", help="what the agent wants to do, in words a reviewer understands")
    parser.add_argument("--context", default="{}", help="a JSON object shown to the reviewer")
    parser.add_argument("--timeout-minutes", type=int, default=30)
    parser.add_argument("--requested-by", default=os.environ.get("TOLLGATE_AGENT", "agent"))
    args = parser.parse_args()
    base = os.environ.get("TOLLGATE_URL", "http://127.0.0.1:8088").rstrip("/")
    token = os.environ["TOLLGATE_TOKEN"]

    status, created = call("POST", f"{base}/workflows", token, {
        "action": args.action,
        "requested_by": args.requested_by,
        "context": json.loads(args.context),
        "timeout_minutes": args.timeout_minutes,
    })
    if status != 201:
        print(f"refused ({status}): {created.get('detail')}", file=sys.stderr)
        return 3
    workflow_id = created["workflow_id"]
    print(f"asked {workflow_id}; waiting for a decision until {created['expires_at']}", flush=True)

    while True:
        try:
            status, record = call("GET", f"{base}/workflows/{workflow_id}?wait=30s", token)
        except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
            print(f"gateway unreachable ({e}); asking again in 2s", file=sys.stderr, flush=True)
            time.sleep(2)
            continue
        if status != 200:
            print(f"gateway answered {status}: {record.get('detail')}; asking again in 2s", file=sys.stderr, flush=True)
            time.sleep(2)
            continue
        if record["status"] != "PENDING":
            break

    if record["status"] == "APPROVED":
        print(f"approved by {record['resolved_by']}: doing it now: {args.action}", flush=True)
        # ... the agent's real work goes here ...
        return 0
    if record["status"] == "REJECTED":
        print(f"rejected by {record['resolved_by']}; not doing it", flush=True)
        return 1
    print("nobody decided in time; not doing it", flush=True)
    return 2


if __name__ == "__main__":
    sys.exit(main())
