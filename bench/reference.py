"""The Python SDK reference for tollgate-bench: the shape of Tollgate's direct path (the same
activities in the same order, the same payload sizes, the same retry policy, the same
search-attribute upserts and patch markers) with activities that do nothing but return a
payload of the measured size. Its throughput and CPU are what a Python worker doing no work
costs on the same server.

Two shapes: `lean` is Tollgate's today (the quick reads as local activities, one upsert per
workflow task); `plain` is the straightforward port, every step an activity and every stage
its own upsert (Tollgate's shape before the `fewer-round-trips` patch).

    reference.py start  --shape S --port P --count N --prefix ID   # start N workflows (no worker)
    reference.py worker --shape S --port P                         # run a worker until killed

BENCH_SIZES (JSON: activity name -> [input bytes, result bytes]) carries the sizes measured
from a Tollgate request's history.
"""

import argparse
import asyncio
import json
import os
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.common import RetryPolicy, SearchAttributeKey
from temporalio.worker import Worker

TASK_QUEUES = {"plain": "bench-reference", "lean": "bench-reference-lean"}
SIZES = {k: tuple(v) for k, v in json.loads(os.environ.get("BENCH_SIZES", "{}")).items()}
STEPS = ["load_settings", "generate_module", "plan", "check_policy", "estimate_cost", "cost_context", "apply", "notify"]

STAGE = SearchAttributeKey.for_keyword("TollgateStage")
REQUESTER = SearchAttributeKey.for_keyword("TollgateRequester")
KIND = SearchAttributeKey.for_keyword("TollgateKind")
COST = SearchAttributeKey.for_float("TollgateMonthlyCost")
APPROVAL = SearchAttributeKey.for_bool("TollgateApprovalRequired")
EXPIRES = SearchAttributeKey.for_datetime("TollgateExpiresAt")


def _make(name):
    @activity.defn(name=name)
    async def run(payload: str) -> str:
        return "x" * SIZES.get(name, (16, 16))[1]

    return run


ACTIVITIES = [_make(name) for name in STEPS]


@workflow.defn(name="ReferenceWorkflow")
class ReferenceWorkflow:
    @workflow.run
    async def run(self, request: dict) -> None:
        retry = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0, maximum_attempts=5)

        async def step(name):
            size = SIZES.get(name, (16, 16))[0]
            return await workflow.execute_activity(
                name, "x" * size, start_to_close_timeout=timedelta(minutes=5), retry_policy=retry
            )

        up = workflow.upsert_search_attributes
        up([STAGE.value_set("REQUESTED")])
        up([REQUESTER.value_set(request["requester"]), KIND.value_set("s3")])
        await step("load_settings")
        up([STAGE.value_set("GENERATING")])
        await step("generate_module")
        up([STAGE.value_set("PLANNING")])
        await step("plan")
        workflow.patched("policy-check")
        up([STAGE.value_set("CHECKING_POLICY")])
        await step("check_policy")
        up([STAGE.value_set("ESTIMATING")])
        await step("estimate_cost")
        workflow.patched("cost-context")
        await step("cost_context")
        up([COST.value_set(1.5), APPROVAL.value_set(False)])
        up([STAGE.value_set("APPLYING")])
        await step("apply")
        up([EXPIRES.value_set(workflow.now() + timedelta(days=1)), STAGE.value_set("ACTIVE")])
        await step("notify")
        await workflow.sleep(timedelta(days=1))


@workflow.defn(name="ReferenceLeanWorkflow")
class ReferenceLeanWorkflow:
    @workflow.run
    async def run(self, request: dict) -> None:
        retry = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0, maximum_attempts=5)

        def arg(name):
            return "x" * SIZES.get(name, (16, 16))[0]

        async def step(name):
            return await workflow.execute_activity(
                name, arg(name), start_to_close_timeout=timedelta(minutes=5), retry_policy=retry
            )

        async def local(name):
            return await workflow.execute_local_activity(
                name,
                arg(name),
                start_to_close_timeout=timedelta(seconds=30),
                schedule_to_close_timeout=timedelta(minutes=10),
                retry_policy=retry,
            )

        up = workflow.upsert_search_attributes
        workflow.patched("fewer-round-trips")
        await local("load_settings")
        up([REQUESTER.value_set(request["requester"]), KIND.value_set("s3"), STAGE.value_set("GENERATING")])
        await step("generate_module")
        up([STAGE.value_set("PLANNING")])
        await step("plan")
        await local("check_policy")
        await local("estimate_cost")
        await local("cost_context")
        up([COST.value_set(1.5), APPROVAL.value_set(False), STAGE.value_set("APPLYING")])
        await step("apply")
        up([EXPIRES.value_set(workflow.now() + timedelta(days=1)), STAGE.value_set("ACTIVE")])
        await step("notify")
        await workflow.sleep(timedelta(days=1))


WORKFLOWS = {"plain": ReferenceWorkflow, "lean": ReferenceLeanWorkflow}


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["start", "worker"])
    parser.add_argument("--shape", choices=sorted(WORKFLOWS), default="lean")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument("--prefix", default="ref")
    args = parser.parse_args()
    client = await Client.connect(f"127.0.0.1:{args.port}")
    if args.mode == "start":
        sem = asyncio.Semaphore(32)

        async def one(i):
            async with sem:
                await client.start_workflow(
                    WORKFLOWS[args.shape].run,
                    {"requester": f"bench-{i % 50}"},
                    id=f"{args.prefix}-{i}",
                    task_queue=TASK_QUEUES[args.shape],
                )

        await asyncio.gather(*(one(i) for i in range(args.count)))
        return
    worker = Worker(
        client, task_queue=TASK_QUEUES[args.shape], workflows=[WORKFLOWS[args.shape]], activities=ACTIVITIES
    )
    await worker.run()


if __name__ == "__main__":
    asyncio.run(main())
    # The SDK's native runtime can abort while the interpreter finalizes (PyGILState_Release);
    # everything is done by now, so leave without finalizing.
    os._exit(0)
