"""The client: raydar's HTTP API as Python calls, authenticated by a bearer token.

A pipeline needs nothing else: no kubeconfig, no Kubernetes client, no Ray. raydar checks the
token with the apiserver and acts as whoever it belongs to (a ServiceAccount, typically), so
Kubernetes RBAC decides what the pipeline may do, as it would for a person.
"""

from __future__ import annotations

import json
import os
import time
from types import TracebackType
from typing import Any, Callable, Iterator, Mapping, Optional, Union
from urllib.parse import quote

import httpx

try:  # Tracing is optional: with OpenTelemetry installed, each request carries the current span.
    from opentelemetry.propagate import inject as _inject_trace_context
except ImportError:  # pragma: no cover - without it, requests carry no trace context
    _inject_trace_context = None

from . import waiting
from .errors import (
    ClusterGone,
    ClusterNotReady,
    ConnectionFailed,
    JobFailed,
    JobTimeout,
    LogStreamLost,
    NotFound,
    RateLimited,
    RaydarError,
    ReadyTimeout,
    Unavailable,
    api_error,
)
from .models import Cluster, Job, LogLine, Progress, RayJob, Template, TornDown

#: Where Kubernetes mounts a pod's ServiceAccount token: used when no token is given.
SERVICE_ACCOUNT_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"

Scalar = Union[str, int]


def _q(segment: str) -> str:
    return quote(segment, safe="")


class Client:
    """raydar at ``url`` (``https://raydar.example.com``), as the owner of a bearer token.

    The token is ``token``, else the file ``token_path`` (re-read when it changes, as projected
    ServiceAccount tokens are rotated), else ``$RAYDAR_TOKEN``, else the pod's own ServiceAccount
    token. ``timeout`` bounds every request (seconds); a followed log waits on its stream's
    keep-alives instead. ``context`` is the Kubernetes cluster every call goes to, one that
    raydar's ``--contexts`` lists (``GET /api/v1/contexts``); ``None``, raydar's home one.
    """

    def __init__(
        self,
        url: str,
        token: Optional[str] = None,
        token_path: Optional[str] = None,
        timeout: float = 30.0,
        transport: Optional[httpx.BaseTransport] = None,
        context: Optional[str] = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.context = context
        self._token = token or (None if token_path else os.environ.get("RAYDAR_TOKEN"))
        self._token_path = token_path
        if self._token is None and self._token_path is None and os.path.exists(SERVICE_ACCOUNT_TOKEN):
            self._token_path = SERVICE_ACCOUNT_TOKEN
        self._read_token: tuple[float, str] = (-1.0, "")
        self.timeout = timeout
        self._http = httpx.Client(
            base_url=f"{self.url}/api/v1",
            timeout=httpx.Timeout(timeout),
            transport=transport,
            headers={"accept": "application/json", "user-agent": "raydar-python"},
            params={"context": context} if context else None,
        )

    # --- plumbing ---------------------------------------------------------------------------

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(
        self,
        kind: Optional[type[BaseException]],
        value: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()

    def _headers(self) -> dict[str, str]:
        """The token's header and, when OpenTelemetry is installed and a span is current (a
        Dagster op's, say), its ``traceparent``: raydar's trace of the request is that span's
        child."""
        headers = self._bearer()
        if _inject_trace_context is not None:
            _inject_trace_context(headers)
        return headers

    def _bearer(self) -> dict[str, str]:
        if self._token is not None:
            return {"authorization": f"Bearer {self._token}"}
        if self._token_path is None:
            return {}
        try:
            mtime = os.stat(self._token_path).st_mtime
            if mtime != self._read_token[0]:
                with open(self._token_path, encoding="utf-8") as f:
                    self._read_token = (mtime, f.read().strip())
        except OSError as e:
            raise RaydarError(f"cannot read the token file {self._token_path}: {e}") from e
        return {"authorization": f"Bearer {self._read_token[1]}"}

    def _request(
        self,
        method: str,
        path: str,
        body: Optional[Mapping[str, Any]] = None,
        params: Optional[Mapping[str, Any]] = None,
    ) -> Any:
        try:
            answer = self._http.request(
                method, path, json=body, params=params, headers=self._headers()
            )
        except httpx.TransportError as e:
            raise ConnectionFailed(f"{method} {self.url}/api/v1{path}: {e!r}") from e
        if answer.is_success:
            if not answer.content:
                return None
            if answer.headers.get("content-type", "").startswith("application/json"):
                return answer.json()
            return answer.text
        raise _refused(answer, method, path)

    def page_url(self, namespace: str, name: str) -> str:
        """The cluster's page in raydar, for people (a run's metadata links it)."""
        page = f"{self.url}/clusters/{_q(namespace)}/{_q(name)}"
        return f"{page}?context={_q(self.context)}" if self.context else page

    # --- templates and clusters -------------------------------------------------------------

    def whoami(self) -> Mapping[str, Any]:
        """Who raydar takes this client for (``user``, ``groups``), as the apiserver said."""
        return self._request("GET", "/session")

    def templates(self) -> list[Template]:
        """The vetted templates clusters are launched from, with their parameters and bounds."""
        return [Template.of(t) for t in self._request("GET", "/templates")["items"]]

    def launch(
        self,
        template: str,
        namespace: str,
        name: str,
        parameters: Optional[Mapping[str, Scalar]] = None,
        pipeline: Optional[str] = None,
        run: Optional[str] = None,
        dry_run: bool = False,
        lease: bool = False,
    ) -> Cluster:
        """Launches cluster `namespace/name` from `template` as this client's identity.

        Parameters left out take the template's defaults; one out of bounds raises
        :class:`~raydar.errors.Invalid` naming it, and nothing is created. `pipeline` and `run`
        label the cluster (``raydar.dev/pipeline``, ``raydar.dev/run``) so raydar's list shows
        which run made it. With `dry_run`, the rendered manifest is checked and nothing is made
        (the answer's ``raw["manifest"]`` holds it). With `lease`, raydar reclaims the cluster
        unless :meth:`renew_lease` is called at least every ``timeout`` seconds (raydar's
        ``--lease-timeout``; :class:`LeaseKeeper` does it from a thread).
        """
        body: dict[str, Any] = {
            "template": template,
            "namespace": namespace,
            "name": name,
            "parameters": dict(parameters or {}),
        }
        if pipeline or run:
            body["pipeline"] = {"name": pipeline or "", "run": run or ""}
        if lease:
            body["lease"] = True
        answer = self._request(
            "POST", "/clusters", body, params={"dryRun": "true"} if dry_run else None
        )
        if answer.get("cluster"):
            return Cluster.of(answer["cluster"])
        meta = answer["manifest"].get("metadata", {})
        return Cluster.of(
            {"namespace": namespace, "name": name, "uid": meta.get("uid", ""),
             "phase": "Provisioning", "manifest": answer["manifest"]}
        )

    def renew_lease(self, namespace: str, name: str) -> float:
        """Renews the lease of a cluster launched with one; the seconds it now holds unrenewed.
        :class:`~raydar.errors.Conflict` if it has no lease."""
        path = f"/clusters/{_q(namespace)}/{_q(name)}/lease"
        return float(self._request("POST", path)["timeout"])

    def release_lease(self, namespace: str, name: str) -> bool:
        """Gives up the lease of a cluster launched with one: raydar keeps it however long
        nothing renews it (its expiry still holds). Whether it had one."""
        path = f"/clusters/{_q(namespace)}/{_q(name)}/lease"
        return bool(self._request("DELETE", path)["released"])

    def record(self, uid: str) -> dict[str, Any]:
        """Everything raydar's history keeps of the cluster whose uid is `uid`, also after it is
        gone: ``cluster`` (how it ended, who ended it), ``parameters``, ``manifest``, ``phases``,
        ``events``."""
        return self._request("GET", f"/history/clusters/{_q(uid)}")

    def clusters(self, namespace: Optional[str] = None) -> list[Cluster]:
        """The clusters this client may see (in `namespace` only, if given)."""
        params = {"namespace": namespace} if namespace else None
        return [Cluster.of(c) for c in self._request("GET", "/clusters", params=params)["items"]]

    def cluster(self, namespace: str, name: str) -> Cluster:
        """One cluster; :class:`~raydar.errors.NotFound` when it does not exist (or is hidden)."""
        return Cluster.of(self._request("GET", f"/clusters/{_q(namespace)}/{_q(name)}"))

    def overview(self, namespace: str, name: str) -> Mapping[str, Any]:
        """The cluster page's data: pods, conditions, Kubernetes events, Ray's view."""
        return self._request("GET", f"/clusters/{_q(namespace)}/{_q(name)}/overview")

    def wait_ready(
        self,
        namespace: str,
        name: str,
        timeout: float = 600.0,
        progress: Optional[Callable[[Progress], None]] = None,
        stuck_after: float = 60.0,
        interval: float = 0.25,
    ) -> Cluster:
        """Waits until the cluster is Ready and returns it.

        `progress` is called whenever the phase, the workers or the reason change. A reason
        that holds for `stuck_after` seconds (pods that fit no node, an image that cannot be
        pulled, a quota, KubeRay refusing the spec) raises its :class:`ClusterNotReady` subclass
        then rather than at `timeout`; KubeRay's own Failed phase raises at once (as the reason
        found, else :class:`ClusterFailed`), a deleted cluster raises :class:`ClusterGone`, and
        `timeout` with no reason :class:`ReadyTimeout`.
        """
        start = time.monotonic()
        seen = False
        said: Optional[tuple[Any, ...]] = None
        cause: Optional[ClusterNotReady] = None
        cause_since = 0.0
        # Most clusters are Ready within seconds: the overview (which costs more than the summary,
        # and may wait on a Ray dashboard) is looked at only after a while, then every 2 s.
        next_look = start + 3.0
        while True:
            now = time.monotonic()
            elapsed = now - start
            try:
                cluster = self.cluster(namespace, name)
                seen = True
            except NotFound:
                # Just launched: raydar's watch may not have seen it yet.
                if seen or elapsed > min(30.0, timeout):
                    raise ClusterGone(namespace, name, "it was deleted (or is not visible)") from None
                time.sleep(interval)
                continue
            if cluster.ready:
                return cluster
            verdict = waiting.failed(namespace, name, cluster.raw)
            if verdict is not None:
                # KubeRay's reason is a word (FailedCreateHeadPod); the overview has the sentence.
                try:
                    found = waiting.diagnose(namespace, name, self.overview(namespace, name))
                except RaydarError:
                    found = None
                raise found or verdict
            if now >= next_look:
                try:
                    found = waiting.diagnose(namespace, name, self.overview(namespace, name))
                except (NotFound, Unavailable, RateLimited):
                    found = cause
                now = time.monotonic()
                elapsed, next_look = now - start, now + 2.0
                if type(found) is not type(cause):
                    cause_since = now
                cause = found
            if progress is not None:
                now_said = (cluster.phase, cluster.workers_ready, cluster.workers_desired,
                            cause.message if cause else None)
                if now_said != said:
                    said = now_said
                    progress(Progress(cluster.phase, cluster.workers_ready,
                                      cluster.workers_desired, elapsed,
                                      cause.message if cause else None))
            if cause is not None and now - cause_since >= stuck_after:
                raise cause
            if elapsed >= timeout:
                if cause is not None:
                    raise cause
                raise ReadyTimeout(
                    namespace, name,
                    f"still {cluster.phase} after {timeout:.0f}s "
                    f"({cluster.workers_ready}/{cluster.workers_desired} workers ready)",
                )
            time.sleep(interval)

    def teardown(self, namespace: str, name: str) -> TornDown:
        """Tears the cluster down; one already gone is success (``already_gone``)."""
        return TornDown.of(self._request("DELETE", f"/clusters/{_q(namespace)}/{_q(name)}"))

    # --- jobs -------------------------------------------------------------------------------

    def jobs(self, namespace: str, cluster: str) -> list[Job]:
        """The Ray jobs of a cluster, as its Ray dashboard reports them."""
        path = f"/clusters/{_q(namespace)}/{_q(cluster)}/jobs"
        return [Job.of(j) for j in self._request("GET", path)["items"]]

    def job(self, namespace: str, cluster: str, job_id: str) -> Job:
        """One Ray job of a cluster, by its submission id."""
        return Job.of(
            self._request("GET", f"/clusters/{_q(namespace)}/{_q(cluster)}/jobs/{_q(job_id)}")
        )

    def submit_job(
        self,
        namespace: str,
        cluster: str,
        entrypoint: str,
        runtime_env: Optional[Mapping[str, Any]] = None,
        name: Optional[str] = None,
    ) -> RayJob:
        """Submits `entrypoint` to a running cluster, as a KubeRay RayJob this client owns.

        Kubernetes RBAC on RayJobs decides; KubeRay submits it to Ray. The answer's ``job_id``
        is what :meth:`logs` reads.
        """
        body: dict[str, Any] = {"entrypoint": entrypoint}
        if runtime_env is not None:
            body["runtimeEnv"] = dict(runtime_env)
        if name is not None:
            body["name"] = name
        path = f"/clusters/{_q(namespace)}/{_q(cluster)}/jobs"
        return RayJob.of(self._request("POST", path, body))

    def run_job(
        self,
        template: str,
        namespace: str,
        name: str,
        entrypoint: str,
        parameters: Optional[Mapping[str, Scalar]] = None,
        runtime_env: Optional[Mapping[str, Any]] = None,
        ttl_seconds_after_finished: Optional[int] = None,
        pipeline: Optional[str] = None,
        run: Optional[str] = None,
    ) -> RayJob:
        """Runs `entrypoint` on a cluster of its own, made from `template` and removed after.

        Every policy of the template holds as for :meth:`launch` (`pipeline` and `run` label
        it the same way); the cluster goes `ttl_seconds_after_finished` seconds after the job
        ends (raydar's default: 60).
        """
        body: dict[str, Any] = {
            "template": template,
            "namespace": namespace,
            "name": name,
            "entrypoint": entrypoint,
            "parameters": dict(parameters or {}),
        }
        if runtime_env is not None:
            body["runtimeEnv"] = dict(runtime_env)
        if ttl_seconds_after_finished is not None:
            body["ttlSecondsAfterFinished"] = ttl_seconds_after_finished
        if pipeline or run:
            body["pipeline"] = {"name": pipeline or "", "run": run or ""}
        return RayJob.of(self._request("POST", "/rayjobs", body))

    def rayjob(self, namespace: str, name: str) -> RayJob:
        """One RayJob, as raydar's watch has it."""
        return RayJob.of(self._request("GET", f"/rayjobs/{_q(namespace)}/{_q(name)}"))

    def rayjobs(self, namespace: Optional[str] = None) -> list[RayJob]:
        """The RayJobs this client may see."""
        params = {"namespace": namespace} if namespace else None
        return [RayJob.of(j) for j in self._request("GET", "/rayjobs", params=params)["items"]]

    def wait_job(
        self,
        namespace: str,
        name: str,
        timeout: float = 3600.0,
        until_running: bool = False,
        check: bool = True,
        progress: Optional[Callable[[RayJob], None]] = None,
        interval: float = 0.25,
    ) -> RayJob:
        """Waits for RayJob `namespace/name` to finish (or, `until_running`, to start) and
        returns it.

        With `check`, a job that ended without succeeding raises :class:`JobFailed` with Ray's
        (or KubeRay's) message; `timeout` raises :class:`JobTimeout`.
        """
        deadline = time.monotonic() + timeout
        last: Optional[tuple[str, str]] = None
        while True:
            try:
                job = self.rayjob(namespace, name)
            except NotFound:
                job = None  # not in raydar's watch yet
            if job is not None:
                if progress is not None and (job.deployment_status, job.job_status) != last:
                    last = (job.deployment_status, job.job_status)
                    progress(job)
                if job.finished:
                    if check and not job.succeeded:
                        raise JobFailed(name, job.job_status or job.deployment_status,
                                        job.message, job)
                    return job
                if until_running and job.job_status == "RUNNING":
                    return job
            if time.monotonic() >= deadline:
                state = f"{job.deployment_status}/{job.job_status or '-'}" if job else "not seen"
                raise JobTimeout(f"job {namespace}/{name} not done after {timeout:.0f}s ({state})")
            time.sleep(interval)

    def logs(
        self,
        namespace: str,
        cluster: str,
        job_id: str,
        follow: bool = True,
        after: int = 0,
        on_problem: Optional[Callable[[str], None]] = None,
        resume_for: float = 120.0,
    ) -> "LogStream":
        """A job's log lines, numbered from 1.

        Without `follow`, what the log holds now. With it, the lines as they are printed until
        the job ends; a dropped connection is resumed after the last line received, so no line
        is repeated or lost (given up with :class:`LogStreamLost` after `resume_for` seconds
        without a connection). `on_problem` hears what raydar says goes wrong upstream (the Ray
        dashboard unreachable, lines skipped for a slow reader).
        """
        return LogStream(self, namespace, cluster, job_id, follow, after, on_problem, resume_for)

    def job_logs(
        self,
        job: RayJob,
        follow: bool = True,
        on_problem: Optional[Callable[[str], None]] = None,
        timeout: float = 600.0,
    ) -> "LogStream":
        """The log of a RayJob's Ray job (see :meth:`logs`), once KubeRay has submitted it: a
        RayJob just made has no Ray job yet, and Ray knows no log of a job it was not given.
        """
        submitted = self.wait_job(job.namespace, job.name, timeout=timeout, until_running=True,
                                  check=False)
        return self.logs(job.namespace, submitted.cluster, submitted.job_id, follow=follow,
                         on_problem=on_problem)


class LogStream:
    """An iterator of :class:`LogLine`; ``end_reason`` says why a followed log ended."""

    def __init__(
        self,
        client: Client,
        namespace: str,
        cluster: str,
        job_id: str,
        follow: bool,
        after: int,
        on_problem: Optional[Callable[[str], None]],
        resume_for: float,
    ) -> None:
        self._client = client
        self._path = f"/clusters/{_q(namespace)}/{_q(cluster)}/jobs/{_q(job_id)}/logs"
        self._follow = follow
        #: The number of the last line received: where a resume starts.
        self.last = after
        self._on_problem = on_problem
        self._resume_for = resume_for
        #: Why the log ended (raydar's words), once it has.
        self.end_reason: Optional[str] = None
        #: How many times the stream was resumed after a dropped connection.
        self.resumed = 0

    def __iter__(self) -> Iterator[LogLine]:
        for batch in self.batches():
            yield from batch

    def batches(self) -> Iterator[list[LogLine]]:
        """The same lines, in the batches they arrive in (a flood comes as few, large ones):
        for a consumer whose cost is per call rather than per line, as a log sink's is."""
        if not self._follow:
            text = self._client._request("GET", self._path)
            lines = text.splitlines() if isinstance(text, str) else []
            batch = [LogLine(n, line) for n, line in enumerate(lines, start=1) if n > self.last]
            self.last = max(self.last, len(lines))
            if batch:
                yield batch
            return
        yield from self._followed()

    def _problem(self, message: str) -> None:
        if self._on_problem is not None:
            self._on_problem(message)

    def _followed(self) -> Iterator[list[LogLine]]:
        client = self._client
        lost_since: Optional[float] = None
        backoff = 0.2
        # No read timeout shorter than the stream's 15 s keep-alives, so a quiet job is not a drop.
        timeout = httpx.Timeout(client.timeout, read=max(client.timeout, 45.0))
        while True:
            headers = {"accept": "text/event-stream", **client._headers()}
            if self.last:
                headers["last-event-id"] = str(self.last)
            try:
                with client._http.stream(
                    "GET", f"{self._path}/stream", headers=headers, timeout=timeout
                ) as answer:
                    if answer.status_code in (502, 503, 504, 429):
                        answer.read()
                        raise _Retry(f"HTTP {answer.status_code}: {answer.text[:200]}")
                    if not answer.is_success:
                        answer.read()
                        raise _refused(answer, "GET", f"{self._path}/stream")
                    lost_since, backoff = None, 0.2
                    for name, data in _events(answer.iter_lines()):
                        if name == "lines":
                            said = json.loads(data)
                            first, last = int(said["first"]), self.last
                            # Lines at or before the last one received were had already.
                            new = [LogLine(n, text)
                                   for n, text in enumerate(said["lines"], start=first)
                                   if n > last]
                            if new:
                                self.last = new[-1].number
                                yield new
                        elif name == "skipped":
                            said = json.loads(data)
                            self.last = max(self.last, int(said["through"]))
                            self._problem(f"{said['count']} lines skipped: {said['reason']}")
                        elif name == "problem":
                            self._problem(json.loads(data).get("error", data))
                        elif name == "end":
                            self.end_reason = json.loads(data).get("reason", "")
                            return
                        elif name == "reconnect":
                            break  # raydar is shutting down: resume at the next one
                    raise _Retry("the stream ended before the log did")
            except (httpx.TransportError, _Retry) as e:
                now = time.monotonic()
                lost_since = lost_since or now
                if now - lost_since > self._resume_for:
                    raise LogStreamLost(
                        f"the log of {self._path} could not be resumed after line {self.last} "
                        f"for {self._resume_for:.0f}s: {e!r}"
                    ) from e
                self.resumed += 1
                time.sleep(backoff)
                backoff = min(backoff * 2, 5.0)


def _refused(answer: httpx.Response, method: str, path: str) -> RaydarError:
    """The exception for an error answer (read): raydar's JSON, or whatever text came."""
    try:
        said: Any = answer.json()
    except ValueError:
        said = answer.text
    return api_error(answer.status_code, said, method, path)


class _Retry(Exception):
    """A stream to open again."""


def _events(lines: Iterator[str]) -> Iterator[tuple[str, str]]:
    """Server-sent events as (event, data); comments (keep-alives) skipped."""
    name, data = "message", []
    for line in lines:
        if not line:
            if data:
                yield name, "\n".join(data)
            name, data = "message", []
        elif line.startswith(":"):
            continue
        else:
            key, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if key == "event":
                name = value
            elif key == "data":
                data.append(value)
