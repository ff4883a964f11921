"""make bench: what a pipeline pays for going through raydar, next to going around it.

1. Overhead: from a Dagster op's start to its Ray job RUNNING (the op submits through raydar's
   resource and waits) next to `kubectl apply` of the same RayJob and `kubectl wait` until
   RUNNING, alternated on the same cluster in the same run. Target: ratio <= 1.2.
2. Log into Dagster: lines per second of one job's log reaching Dagster's event log (the
   resource's follow, lines that arrive together as one message) next to `ray job logs
   --follow` on the same job at the same time.
   Target: ratio >= 0.9.

Runs with RAYDAR_URL set (scripts/raydar.sh run) against the local plane.
"""


import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from dagster import DagsterInstance, OpExecutionContext, job, op

import raydar
from raydar.dagster import RaydarCluster

ROUNDS = int(os.environ.get("BENCH_PIPELINE_ROUNDS", "8"))
LINES = int(os.environ.get("BENCH_PIPELINE_LINES", "20000"))
LOG_ROUNDS = int(os.environ.get("BENCH_PIPELINE_LOG_ROUNDS", "3"))
NS = "raydar-bench-pipeline"
LOCAL = Path(os.environ.get("RAYDAR_LOCAL", Path(__file__).resolve().parents[3] / ".local"))
SLEEPER = "python -c \"import time; time.sleep(3)\""


def kubectl(*args: str, input: "str | None" = None) -> str:
    done = subprocess.run(["kubectl", *args], input=input, capture_output=True, text=True,
                          timeout=180)
    if done.returncode != 0:
        raise SystemExit(f"kubectl {' '.join(args)}: {done.stderr}")
    return done.stdout


def setup() -> Path:
    """The namespace, a pipeline ServiceAccount that may launch there, its token in a file."""
    if subprocess.run(["kubectl", "get", "ns", NS], capture_output=True).returncode != 0:
        kubectl("create", "namespace", NS)
        kubectl("create", "serviceaccount", "pipeline", "-n", NS)
        kubectl("create", "rolebinding", "pipeline", "-n", NS,
                "--clusterrole=raydar-local-developer", f"--serviceaccount={NS}:pipeline")
    token = Path(f"/tmp/raydar-bench-pipeline-{os.getpid()}.token")
    token.write_text(kubectl("create", "token", "pipeline", "-n", NS, "--duration=1h").strip())
    return token


def rayjob_manifest(name: str, cluster: str) -> str:
    """The RayJob raydar would make for a submission, as a kubectl user writes it."""
    return json.dumps({
        "apiVersion": "ray.io/v1", "kind": "RayJob",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"entrypoint": SLEEPER, "submissionMode": "HTTPMode", "jobId": name,
                 "clusterSelector": {"ray.io/cluster": cluster}},
    })


def report(title: str, unit: str, ours: list[float], theirs: list[float], ours_name: str,
           theirs_name: str) -> None:
    print(f"\n{title}")
    for name, xs in ((ours_name, ours), (theirs_name, theirs)):
        print(f"  {name:<36} p50 {statistics.median(xs):8.2f} {unit}  mean {statistics.mean(xs):8.2f}"
              f"  (n={len(xs)})")


RESULTS: dict[str, list[float]] = {"raydar": [], "kubectl": [], "dagster_lps": [], "ray_lps": []}


@op
def overhead(context: OpExecutionContext, ray: RaydarCluster) -> None:
    cluster = ray.cluster.name
    for i in range(ROUNDS):
        # Around raydar: kubectl apply, then kubectl wait (a watch) until the job runs.
        name = f"direct-{i}-{os.getpid() % 10000}"
        start = time.monotonic()
        kubectl("apply", "-f", "-", input=rayjob_manifest(name, cluster))
        kubectl("wait", f"rayjob/{name}", "-n", NS, "--for=jsonpath={.status.jobStatus}=RUNNING",
                "--timeout=120s")
        RESULTS["kubectl"].append(time.monotonic() - start)
        # Through raydar, as an op does: submit, wait until RUNNING.
        start = time.monotonic()
        submitted = ray.submit(SLEEPER)
        ray.client.wait_job(NS, submitted.name, until_running=True, check=False, timeout=120)
        RESULTS["raydar"].append(time.monotonic() - start)
        time.sleep(3.5)  # both jobs end before the next round


@op
def log_rate(context: OpExecutionContext, ray: RaydarCluster) -> None:
    for _ in range(LOG_ROUNDS):
        one_flood(context, ray)


def one_flood(context: OpExecutionContext, ray: RaydarCluster) -> None:
    flood = ray.submit(
        f"python -c \"import sys\nfor i in range({LINES}):\n    print('line', i)\"")
    started = ray.client.wait_job(NS, flood.name, until_running=True, check=False, timeout=120)
    address = f"http://{started.cluster}-head-svc.{NS}.svc.cluster.local:8265"
    native: dict[str, float] = {}

    def ray_follow() -> None:
        begin = time.monotonic()
        out = subprocess.run([str(LOCAL / "ray/bin/ray"), "job", "logs", "--follow", "--address",
                              address, started.job_id], capture_output=True, text=True,
                             timeout=600)
        native["seconds"] = time.monotonic() - begin
        native["lines"] = sum(1 for l in out.stdout.splitlines() if l.startswith("line "))

    reader = threading.Thread(target=ray_follow)
    reader.start()
    begin = time.monotonic()
    lines = ray.follow(started, context)
    ours = time.monotonic() - begin
    reader.join()
    RESULTS["dagster_lps"].append(lines / ours)
    RESULTS["ray_lps"].append(native["lines"] / native["seconds"])
    print(f"  dagster: {lines} lines in {ours:.2f}s; ray job logs --follow: {native['lines']} "
          f"lines in {native['seconds']:.2f}s", flush=True)


def main() -> None:
    token = setup()
    resource = RaydarCluster(url=os.environ["RAYDAR_URL"], token_path=str(token),
                             template="cpu-small", namespace=NS, parameters={"workers": 0},
                             ready_timeout=240)

    @job(resource_defs={"ray": resource})
    def bench_pipeline():
        overhead()
        log_rate()

    try:
        # The event log keeps every line; the console shows warnings only, not 60,000 lines.
        quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
        result = bench_pipeline.execute_in_process(instance=DagsterInstance.ephemeral(),
                                                   run_config=quiet)
    finally:
        token.unlink(missing_ok=True)
        kubectl("delete", "rayjobs", "--all", "-n", NS, "--wait=false")
    if not result.success:
        raise SystemExit("the benchmark's Dagster run failed")
    report("pipeline overhead: op start -> Ray job RUNNING (s)", "s", RESULTS["raydar"],
           RESULTS["kubectl"], "Dagster op through raydar", "kubectl apply + kubectl wait")
    ratio = statistics.median(RESULTS["raydar"]) / statistics.median(RESULTS["kubectl"])
    print(f"  ratio (p50) {ratio:.2f}  (target <= 1.2)")
    report(f"log into Dagster: lines/s of one {LINES}-line job", "lines/s", RESULTS["dagster_lps"],
           RESULTS["ray_lps"], "into Dagster's event log", "ray job logs --follow")
    rate = statistics.median(RESULTS["dagster_lps"]) / statistics.median(RESULTS["ray_lps"])
    print(f"  ratio {rate:.2f}  (target >= 0.9)")


if __name__ == "__main__":
    sys.exit(main())
