"""The client against a real raydar, the real KubeRay operator and real Ray heads."""

from __future__ import annotations

import socket
import threading
from typing import Any

import pytest

import raydar
from conftest import Namespace, eventually, kubectl, ray_clusters

# A job whose output is known and computed: what a test can look for in a log.
HELLO = "python -c \"print('hello from a raydar pipeline'); print('answer', sum(range(10)))\""


def test_a_pipeline_launches_waits_runs_follows_and_tears_down(client, namespace):
    ns = namespace.name
    assert "cpu-small" in [t.name for t in client.templates()]
    assert client.whoami()["user"] == f"system:serviceaccount:{ns}:pipeline"
    client.launch("cpu-small", ns, "train", {"workers": 0})
    seen: list[raydar.Progress] = []
    ready = client.wait_ready(ns, "train", timeout=180, progress=seen.append)
    assert ready.ready and ready.uid and ready.owner.endswith("pipeline")
    assert seen and seen[0].phase == "Provisioning", seen

    job = client.submit_job(ns, "train", HELLO)
    assert job.job_id.startswith("train-") and job.cluster == "train"
    lines = [line.text for line in client.job_logs(job)]
    assert "hello from a raydar pipeline" in lines and "answer 45" in lines, lines
    done = client.wait_job(ns, job.name, timeout=120)
    assert done.succeeded, done
    assert job.job_id in [j.id for j in client.jobs(ns, "train")]
    assert client.job(ns, "train", job.job_id).status == "SUCCEEDED"
    # The whole log, after the fact, is the same lines.
    assert [l.text for l in client.logs(ns, "train", job.job_id, follow=False)] == lines

    gone = client.teardown(ns, "train")
    assert gone.result in ("deleting", "deleted")
    eventually("the cluster gone from raydar", lambda: _missing(client, ns, "train"))
    eventually("the RayCluster gone from Kubernetes", lambda: not ray_clusters(ns))
    assert client.teardown(ns, "train").already_gone


def _missing(client: raydar.Client, ns: str, name: str) -> bool:
    try:
        client.cluster(ns, name)
        return False
    except raydar.NotFound:
        return True


def test_a_parameter_out_of_bounds_is_named_and_nothing_is_made(client, namespace):
    with pytest.raises(raydar.Invalid) as refused:
        client.launch("cpu-small", namespace.name, "big", {"workers": 99})
    assert refused.value.fields == ["workers"] and "99" in str(refused.value)
    with pytest.raises(raydar.Invalid) as refused:
        client.run_job("cpu-small", namespace.name, "big", "python -V", {"cpus": 0})
    assert "cpus" in refused.value.fields
    assert not ray_clusters(namespace.name)


def test_identity_is_the_tokens_and_rbac_decides(url, namespace):
    ns = namespace.name
    with raydar.Client(url, token=namespace.token("intruder")) as intruder:
        with pytest.raises(raydar.Forbidden) as refused:
            intruder.launch("cpu-small", ns, "sneaky", {"workers": 0})
    # Kubernetes' own words, naming the ServiceAccount.
    assert f"system:serviceaccount:{ns}:intruder" in refused.value.message, refused.value
    with raydar.Client(url, token="not-a-token") as garbage:
        with pytest.raises(raydar.Unauthorized):
            garbage.templates()
        with pytest.raises(raydar.Unauthorized):
            garbage.launch("cpu-small", ns, "sneaky", {"workers": 0})
    assert not ray_clusters(ns)


def test_a_token_file_is_read_and_reread_when_it_changes(url, namespace, tmp_path):
    path = tmp_path / "token"
    path.write_text("not-a-token\n")
    with raydar.Client(url, token_path=str(path)) as c:
        with pytest.raises(raydar.Unauthorized):
            c.whoami()
        path.write_text(namespace.token() + "\n")
        assert c.whoami()["user"].endswith(":pipeline")


def test_a_job_on_a_cluster_of_its_own_runs_and_its_cluster_goes(client, namespace):
    ns = namespace.name
    # Its cluster stays 10 s after the job: time for the log to be read to its end.
    job = client.run_job("cpu-small", ns, "once", HELLO, {"workers": 0},
                         ttl_seconds_after_finished=10)
    assert job.ephemeral
    lines = [l.text for l in client.job_logs(job, timeout=240)]
    assert "answer 45" in lines, lines
    done = client.wait_job(ns, "once", timeout=60)
    assert done.succeeded and done.cluster, done
    eventually("the job's cluster gone", lambda: not ray_clusters(ns), within=120)


def test_waiting_for_a_cluster_the_quota_refuses_says_so(client, namespace):
    ns = namespace.name
    kubectl("create", "quota", "no-pods", "-n", ns, "--hard=pods=0")
    client.launch("cpu-small", ns, "squeezed", {"workers": 0})
    with pytest.raises(raydar.QuotaExceeded) as refused:
        client.wait_ready(ns, "squeezed", timeout=120, stuck_after=3)
    assert "exceeded quota" in refused.value.message and "no-pods" in refused.value.message, refused.value
    client.teardown(ns, "squeezed")


class Relay:
    """A TCP relay in front of raydar whose connections the test can cut, as a network would."""

    def __init__(self, target: str) -> None:
        host, port = target.removeprefix("http://").split(":")
        self.target = (host, int(port))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.open: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                near, _ = self.listener.accept()
            except OSError:
                return
            far = socket.create_connection(self.target, timeout=10)
            far.settimeout(None)
            with self.lock:
                self.open += [near, far]
            for a, b in ((near, far), (far, near)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> None:
        """Drops every connection open now (new ones still go through)."""
        with self.lock:
            cut, self.open = self.open, []
        for s in cut:
            try:
                s.shutdown(socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass

    def close(self) -> None:
        self.listener.close()
        self.cut()


def test_a_dropped_log_stream_resumes_without_repeating_or_losing_a_line(url, client, namespace):
    ns = namespace.name
    client.launch("cpu-small", ns, "chatty", {"workers": 0})
    client.wait_ready(ns, "chatty", timeout=180)
    count = 200
    job = client.submit_job(
        ns, "chatty",
        f"python -c \"import time\nfor i in range({count}):\n    print('line', i, flush=True)\n"
        f"    time.sleep(0.1)\"",
    )
    client.wait_job(ns, job.name, until_running=True, timeout=120)
    relay = Relay(url)
    try:
        with raydar.Client(relay.url, token=namespace.token()) as through:
            stream = through.logs(ns, "chatty", job.job_id)
            got: list[Any] = []
            for line in stream:
                got.append(line)
                if len(got) % 25 == 0 and len(got) <= 100:
                    relay.cut()  # mid-stream, while the job still prints (a line per 0.1 s)
    finally:
        relay.close()
    texts = [l.text for l in got]
    assert [t for t in texts if t.startswith("line ")] == [f"line {i}" for i in range(count)], texts
    assert [l.number for l in got] == list(range(1, len(got) + 1))
    assert stream.resumed >= 2 and stream.end_reason is not None
    client.teardown(ns, "chatty")


def test_a_client_goes_to_the_kubernetes_cluster_it_names(url, namespace):
    token = namespace.token()
    # This raydar serves one, its home, under the name a raydar without --contexts gives it.
    with raydar.Client(url, token=token, context="default") as home:
        assert home.templates()
        assert home.page_url("a", "b").endswith("/clusters/a/b?context=default")
    with raydar.Client(url, token=token, context="elsewhere") as elsewhere:
        with pytest.raises(raydar.NotFound, match='no Kubernetes cluster is called "elsewhere"'):
            elsewhere.launch("cpu-small", namespace.name, "nowhere")
    assert not ray_clusters(namespace.name), "nothing was launched anywhere"
