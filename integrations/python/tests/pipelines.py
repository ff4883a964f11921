"""Dagster jobs the tests run, in process and with `dagster job execute -f`: each uses a
RaydarCluster configured from the environment the test sets (RAYDAR_URL, RAYDAR_TEST_NAMESPACE,
RAYDAR_TEST_TOKEN_FILE, RAYDAR_TEST_PARAMETERS, RAYDAR_TEST_STUCK_AFTER, RAYDAR_TEST_CLEANUP)."""


import json
import os
import time

from dagster import Definitions, OpExecutionContext, job, op

from raydar.dagster import Cleanup, RaydarCluster

# A line the job prints and a number it computes: what a test looks for in Dagster's event log.
TRAIN = ("python -c \"print('hello from ray, by way of dagster'); "
         "print('computed', sum(i * i for i in range(10)))\"")


def ray_resource() -> RaydarCluster:
    return RaydarCluster(
        url=os.environ["RAYDAR_URL"],
        token_path=os.environ["RAYDAR_TEST_TOKEN_FILE"],
        template="cpu-small",
        namespace=os.environ["RAYDAR_TEST_NAMESPACE"],
        parameters=json.loads(os.environ.get("RAYDAR_TEST_PARAMETERS", '{"workers": 0}')),
        ready_timeout=180,
        stuck_after=float(os.environ.get("RAYDAR_TEST_STUCK_AFTER", "120")),
        cleanup=Cleanup(os.environ.get("RAYDAR_TEST_CLEANUP", "always")),
    )


@op
def train(context: OpExecutionContext, ray: RaydarCluster) -> int:
    done = ray.run(TRAIN, context=context)
    context.add_output_metadata(ray.metadata(done))
    return 1


@op
def fail_after_launch(context: OpExecutionContext, ray: RaydarCluster) -> None:
    context.log.info(f"about to fail, with {ray.cluster.name} up")
    raise RuntimeError("the op failed after its cluster was launched")


@op
def train_for_long(context: OpExecutionContext, ray: RaydarCluster) -> None:
    ray.run("python -c \"import time\nfor i in range(600):\n    print('step', i, flush=True)\n"
            "    time.sleep(1)\"", context=context)


@job(resource_defs={"ray": ray_resource()})
def nightly_train():
    train()


@job(resource_defs={"ray": ray_resource()})
def failing_pipeline():
    fail_after_launch()


@op
def hold(context: OpExecutionContext, ray: RaydarCluster) -> None:
    context.log.info(f"holding {ray.cluster.name}")
    time.sleep(600)


@job(resource_defs={"ray": ray_resource()})
def long_training():
    train_for_long()


@job(resource_defs={"ray": ray_resource()})
def held_cluster():
    hold()


defs = Definitions(jobs=[nightly_train, failing_pipeline, long_training, held_cluster])
