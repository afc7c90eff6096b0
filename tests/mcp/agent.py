"""An agent as the official MCP Python SDK (PyPI `mcp`) makes one: it connects to Tollgate's
MCP server over stdio (`tollgate mcp`) or streamable HTTP (the gateway's /mcp), lists the tools
and checks their schemas, asks for an s3 bucket and follows it to ACTIVE, sends bad arguments,
asks a person for approval and waits for the decision. Prints one JSON object per step on
stdout for tests/tests/suite/mcp.rs, which approves when it reads the "asked" step.

usage: agent.py stdio <tollgate binary> <user> <gateway url> <token>
       agent.py http <gateway url> <token>
"""
import asyncio
import json
import os
import sys

import jsonschema
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client


def say(step, **data):
    print(json.dumps({"step": step, **data}), flush=True)


def result(r):
    return {"is_error": bool(r.is_error), "structured": r.structured_content}


async def exercise(session):
    init = await session.initialize()
    say("initialized", server=init.server_info.name, instructions=init.instructions)
    listed = await session.list_tools()
    schemas_valid = True
    for tool in listed.tools:
        try:
            jsonschema.Draft202012Validator.check_schema(tool.input_schema)
            jsonschema.Draft202012Validator.check_schema(tool.output_schema or {})
        except jsonschema.SchemaError as e:
            schemas_valid = False
            say("bad schema", tool=tool.name, error=str(e))
    say(
        "tools",
        names=sorted(t.name for t in listed.tools),
        with_output_schema=sorted(t.name for t in listed.tools if t.output_schema),
        read_only=sorted(t.name for t in listed.tools if t.annotations and t.annotations.read_only_hint),
        schemas_valid=schemas_valid,
    )

    asked = await session.call_tool("request_infrastructure", {"kind": "s3", "params": {"storage_gb": "20"}})
    say("requested", **result(asked))
    request_id = asked.structured_content["request_id"]
    stage = None
    for _ in range(300):
        got = await session.call_tool("get_request", {"request_id": request_id})
        stage = got.structured_content["stage"]
        if stage == "ACTIVE":
            break
        await asyncio.sleep(0.2)
    say("followed", stage=stage, requester=got.structured_content.get("requester"),
        monthly_cost=got.structured_content.get("monthly_cost"))
    audit = await session.call_tool("start_audit", {"target": request_id, "target_kind": "request"})
    say("audit started", **result(audit))
    audit_id = audit.structured_content["audit_id"]
    report = None
    for _ in range(150):
        report = (await session.call_tool("get_audit", {"audit_id": audit_id})).structured_content
        if report["step"] in ("DONE", "PAUSED", "CANCELLED"):
            break
        await asyncio.sleep(0.2)
    say("audited", audit_step=report["step"], summary=report["summary"], resources=len(report["resources"]))
    listed = await session.call_tool("list_requests", {"stage": "ACTIVE", "limit": 5})
    say("listed", ids=[r["request_id"] for r in listed.structured_content["requests"]])

    for name, args in [
        ("bad param", {"kind": "s3", "params": {"storage_gb": "lots"}}),
        ("wrong type", {"kind": 7}),
        ("unknown argument", {"kind": "s3", "colour": "red"}),
        ("missing kind", {}),
        ("bad ttl", {"kind": "s3", "ttl": "forever"}),
        ("bad stage", {"stage": "SOMEWHERE"}),
    ]:
        tool = "list_requests" if name == "bad stage" else "request_infrastructure"
        r = await session.call_tool(tool, args)
        say(name, **result(r))
    nothing = await session.call_tool("start_audit", {"target": "i-nowhere", "target_kind": "resource"})
    say("nothing to audit", **result(nothing))
    unknown = await session.call_tool("get_request", {"request_id": "req-nope-00000000"})
    say("unknown request", **result(unknown))

    asked = await session.call_tool(
        "ask_for_approval",
        {"action": "rotate the api's database password", "context": {"service": "api", "ticket": "OPS-12"}},
    )
    say("asked", **result(asked))
    approval_id = asked.structured_content["workflow_id"]
    decided = await session.call_tool("get_approval", {"approval_id": approval_id, "wait_seconds": 45})
    say("decided", **result(decided))
    bad_wait = await session.call_tool("get_approval", {"approval_id": approval_id, "wait_seconds": 600})
    say("bad wait", **result(bad_wait))


async def main():
    mode = sys.argv[1]
    if mode == "stdio":
        binary, user, gateway, token = sys.argv[2:6]
        # The server process gets only a safe environment by default: pass Temporal's address
        # and Tollgate's configuration on.
        keep = ("TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "TOLLGATE_CONFIG")
        params = StdioServerParameters(
            command=binary,
            args=["mcp", "--as", user, "--gateway", gateway, "--token", token],
            env={k: v for k, v in os.environ.items() if k in keep},
        )
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write) as session:
                await exercise(session)
    else:
        gateway, token = sys.argv[2:4]
        http = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
        async with http:
            async with streamable_http_client(f"{gateway}/mcp", http_client=http) as streams:
                async with ClientSession(streams[0], streams[1]) as session:
                    await exercise(session)
    say("done")


asyncio.run(main())
