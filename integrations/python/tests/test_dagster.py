"""The Dagster resource on the real plane: a run launches from a template, waits, runs a Ray job
whose log reaches Dagster's event log, and never leaves its cluster behind."""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dagster import DagsterInstance

import raydar
from conftest import eventually, kubectl, ray_clusters

HERE = Path(__file__).parent


@pytest.fixture
def pipeline_env(url, namespace, tmp_path, monkeypatch):
    """The environment tests/pipelines.py reads, for this test's namespace."""
    token = tmp_path / "token"
    token.write_text(namespace.token())
    env = {"RAYDAR_URL": url, "RAYDAR_TEST_NAMESPACE": namespace.name,
           "RAYDAR_TEST_TOKEN_FILE": str(token)}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.syspath_prepend(str(HERE))
    return env


@pytest.fixture
def pipelines(pipeline_env, monkeypatch):
    """tests/pipelines.py, imported afresh: its resources read this test's environment."""
    yield _pipelines_with(monkeypatch)
    sys.modules.pop("pipelines", None)


def _pipelines_with(monkeypatch, **env: str):
    """tests/pipelines.py imported afresh with `env` set (its resources read it on import)."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    sys.modules.pop("pipelines", None)
    return importlib.import_module("pipelines")


def _failures(result) -> str:
    """What a failed run's failure events say."""
    return "\n".join(str(e.event_specific_data) for e in result.all_events
                     if "FAILURE" in e.event_type_value)


def _logged(instance: DagsterInstance, result) -> list[str]:
    """The run's log messages, as Dagster's event log holds them."""
    return [e.user_message for e in instance.all_logs(result.run_id)]


def _gone_everywhere(url: str, namespace) -> None:
    """The run's cluster is gone from raydar's list and from Kubernetes."""
    with raydar.Client(url, token=namespace.token()) as c:
        eventually("no cluster left in raydar", lambda: not c.clusters(namespace.name))
    eventually("no RayCluster left in Kubernetes", lambda: not ray_clusters(namespace.name))


def test_a_dagster_run_launches_runs_logs_and_tears_down(url, namespace, pipelines):
    instance = DagsterInstance.ephemeral()
    result = pipelines.nightly_train.execute_in_process(instance=instance)
    assert result.success
    # The job's own lines, in Dagster's event log (as the step's log messages).
    logged = "\n".join(_logged(instance, result)).splitlines()
    assert "hello from ray, by way of dagster" in logged and "computed 285" in logged, logged
    output = next(e for e in result.all_node_events if e.is_successful_output)
    metadata = output.step_output_data.metadata
    assert metadata["job status"].value == "SUCCEEDED"
    assert metadata["cluster uid"].value and metadata["job id"].value
    assert metadata["raydar cluster"].value.startswith(f"{url}/clusters/{namespace.name}/")
    _gone_everywhere(url, namespace)


def test_an_op_that_raises_still_tears_its_cluster_down(url, namespace, pipelines):
    instance = DagsterInstance.ephemeral()
    result = pipelines.failing_pipeline.execute_in_process(instance=instance, raise_on_error=False)
    assert not result.success
    logged = "\n".join(_logged(instance, result))
    # It did launch (and get Ready) before the op raised; then it went.
    assert f"raydar: {namespace.name}/failing-pipeline-" in logged and "is Ready" in logged, logged
    assert "about to fail, with failing-pipeline-" in logged and "raydar: tore down" in logged, logged
    _gone_everywhere(url, namespace)


def test_cleanup_on_success_keeps_a_failed_runs_cluster_to_look_at(
    url, namespace, pipeline_env, monkeypatch
):
    pipelines = _pipelines_with(monkeypatch, RAYDAR_TEST_CLEANUP="on_success")
    failed = pipelines.failing_pipeline.execute_in_process(raise_on_error=False)
    assert not failed.success
    kept = [c["metadata"]["name"] for c in ray_clusters(namespace.name)]
    assert len(kept) == 1 and kept[0].startswith("failing-pipeline-"), kept
    kubectl("delete", "rayclusters", "--all", "-n", namespace.name, "--wait=false")
    # A run that succeeds tears down, cleanup=on_success or not.
    assert pipelines.nightly_train.execute_in_process().success
    eventually("only the kept cluster's deletion left", lambda: not [
        c for c in ray_clusters(namespace.name) if c["metadata"]["name"].startswith("nightly-train-")])


def test_a_parameter_out_of_bounds_fails_the_run_naming_it_and_makes_nothing(
    url, namespace, pipeline_env, monkeypatch
):
    pipelines = _pipelines_with(monkeypatch, RAYDAR_TEST_PARAMETERS=json.dumps({"workers": 99}))
    result = pipelines.nightly_train.execute_in_process(raise_on_error=False)
    assert not result.success
    said = _failures(result)
    assert "Invalid" in said and "workers: must be an integer from 0 to 4, got 99" in said, said
    assert not ray_clusters(namespace.name)


def test_a_failure_while_setting_up_tears_the_launched_cluster_down(
    url, namespace, pipeline_env, monkeypatch
):
    # Launched, then never Ready (the namespace's quota refuses its pods): the run fails in
    # set-up, saying why, and the cluster goes.
    kubectl("create", "quota", "no-pods", "-n", namespace.name, "--hard=pods=0")
    pipelines = _pipelines_with(monkeypatch, RAYDAR_TEST_STUCK_AFTER="3")
    result = pipelines.nightly_train.execute_in_process(raise_on_error=False)
    assert not result.success
    said = _failures(result)
    assert "QuotaExceeded" in said and "exceeded quota" in said, said
    _gone_everywhere(url, namespace)


def _dagster(job: str, env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster"), "job", "execute",
         "-f", str(HERE / "pipelines.py"), "-j", job],
        env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def test_dagster_job_execute_runs_the_pipeline_and_tears_down(url, namespace, pipeline_env, tmp_path):
    done = _dagster("nightly_train", {**pipeline_env, "DAGSTER_HOME": str(tmp_path)})
    out, _ = done.communicate(timeout=400)
    assert done.returncode == 0, out[-4000:]
    assert "hello from ray, by way of dagster" in out and "computed 285" in out, out[-4000:]
    # One cluster for the run: none for Dagster's reading of outputs after it.
    assert out.count("raydar: launched") == 1, out[-4000:]
    _gone_everywhere(url, namespace)


def test_a_terminated_run_tears_its_cluster_down(url, namespace, pipeline_env, tmp_path):
    run = _dagster("long_training", {**pipeline_env, "DAGSTER_HOME": str(tmp_path)})
    try:
        with raydar.Client(url, token=namespace.token()) as c:
            def running():
                jobs = c.rayjobs(namespace.name)
                return jobs and jobs[0].job_status == "RUNNING"
            eventually("the run's Ray job running", running, within=240)
            cluster = c.clusters(namespace.name)[0]
            # The run's identity, as labels the list shows.
            assert cluster.raw.get("pipeline") == "long_training", cluster.raw
            assert cluster.raw.get("run"), cluster.raw
        run.send_signal(signal.SIGTERM)  # what Kubernetes does to a run's pod, and Dagster's terminate
        out, _ = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode != 0, out[-3000:]
    _gone_everywhere(url, namespace)


def test_a_run_killed_with_sigkill_leaves_nothing_after_the_lease_timeout(
        url, namespace, pipeline_env, tmp_path):
    # Its own session: the kill takes the run and every process it started (the step's), as
    # the loss of its pod would.
    run = subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster"), "job", "execute",
         "-f", str(HERE / "pipelines.py"), "-j", "held_cluster"],
        env={**os.environ, **pipeline_env, "DAGSTER_HOME": str(tmp_path)},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    try:
        with raydar.Client(url, token=namespace.token()) as c:
            ready = eventually(
                "the run's cluster Ready",
                lambda: [x for x in c.clusters(namespace.name) if x.phase == "Ready"], within=240,
            )
            cluster = ready[0]
            # Renewed by the run while it lives: well past raydar's timeout here (20 s).
            time.sleep(30)
            assert c.cluster(namespace.name, cluster.name).uid == cluster.uid, "kept while renewed"
            os.killpg(run.pid, signal.SIGKILL)
            run.wait(timeout=30)
            killed = time.monotonic()
            # Nobody tears it down: raydar reclaims it once the lease lapses.
            eventually("the cluster reclaimed", lambda: not ray_clusters(namespace.name), within=90)
            assert time.monotonic() - killed >= 10, "torn down by someone other than raydar"
            record = c.record(cluster.uid)
            assert record["cluster"]["outcome"] == "reclaimed", record["cluster"]
            assert record["cluster"]["endedBy"] == "raydar (lease)", record["cluster"]
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)

