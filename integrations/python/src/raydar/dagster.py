"""The Dagster resource: a Ray cluster for the length of a run, never left behind.

    from dagster import job, op
    from raydar.dagster import RaydarCluster

    @op
    def train(context, ray: RaydarCluster):
        done = ray.run("python train.py", context=context)   # log lines into Dagster's log
        context.add_output_metadata(ray.metadata(done))

    @job(resource_defs={"ray": RaydarCluster(url=..., token_path=..., template="gpu-multi-node",
                                             namespace="ml")})
    def nightly(): train()

The cluster is launched from a vetted template when the run starts, waited for until Ready, and
torn down however the run ends (``cleanup``): a success, an op that raises, a run terminated
(SIGTERM or Dagster's terminate), a failure while it was being set up. A run that cannot clean
up (SIGKILL, an evicted pod, a lost node) stops renewing the cluster's lease (``lease``), and
raydar reclaims the cluster after its ``--lease-timeout``. It carries the run's identity as
labels (``raydar.dev/pipeline``: the Dagster job, ``raydar.dev/run``: the run id).

Dagster sets resources up per step process: with the multiprocess executor, each op that uses
the resource gets a cluster of its own for its step, so several such ops in one job either run
in process (``in_process_executor``) to share one, or each set ``name`` apart.
"""

from __future__ import annotations

import re
import sys
import time
from contextlib import contextmanager
from enum import Enum
from typing import Any, Dict, Generator, Optional

from dagster import ConfigurableResource, DagsterEventType, InitResourceContext, MetadataValue
from pydantic import PrivateAttr

from .client import Client
from .errors import ApiError, RaydarError
from .lease import LeaseKeeper
from .models import Cluster, RayJob


class Cleanup(str, Enum):
    """When the cluster is torn down."""

    ALWAYS = "always"
    ON_SUCCESS = "on_success"
    NEVER = "never"


def cluster_name(job_name: str, run_id: str) -> str:
    """A cluster name for a run: the job's name (as Kubernetes allows) and the run's first 8."""
    base = re.sub(r"[^a-z0-9-]+", "-", job_name.lower()).strip("-") or "run"
    if not base[0].isalpha():
        base = f"run-{base}"
    return f"{base[:44].rstrip('-')}-{run_id[:8]}"


#: Most log lines one Dagster log message carries.
LINES_PER_MESSAGE = 500


def _run_has_ended(context: InitResourceContext) -> bool:
    if context.instance is None or context.run is None:
        return False
    run = context.instance.get_run_by_id(context.run.run_id)
    return run is not None and run.is_finished


class RaydarCluster(ConfigurableResource):
    """A Ray cluster from raydar for one Dagster run (see the module docs)."""

    url: str
    """raydar's address, e.g. ``https://raydar.example.com``."""
    token: Optional[str] = None
    """A bearer token (a ServiceAccount's); or ``token_path``; else the pod's own."""
    token_path: Optional[str] = None
    """A file holding the token, re-read when it changes."""
    context: Optional[str] = None
    """The Kubernetes cluster to launch on, one raydar's ``--contexts`` lists; default its home one."""
    template: str
    """The vetted template to launch from."""
    namespace: str
    """Where the cluster goes."""
    name: Optional[str] = None
    """The cluster's name; by default the job's name and the run id's first 8 characters."""
    parameters: Dict[str, Any] = {}
    """The template's parameters (left-out ones take their defaults)."""
    cleanup: Cleanup = Cleanup.ALWAYS
    """always | on_success (keep a failed run's cluster to look at) | never."""
    ready_timeout: float = 600.0
    """Seconds the cluster has to become Ready."""
    stuck_after: float = 120.0
    """Seconds a reason it cannot become Ready (unschedulable, quota, ...) may hold before failing."""
    job_timeout: float = 24 * 3600.0
    """Seconds a job run by :meth:`run` may take."""
    lease: bool = True
    """Launch the cluster with a lease this resource renews while the run's process lives: if
    the process dies without tearing down (SIGKILL, an evicted pod), raydar reclaims the cluster
    after its ``--lease-timeout``."""

    _client: Optional[Client] = PrivateAttr(default=None)
    _cluster: Optional[Cluster] = PrivateAttr(default=None)
    _context: Optional[InitResourceContext] = PrivateAttr(default=None)

    @contextmanager
    def yield_for_execution(
        self, context: InitResourceContext
    ) -> Generator["RaydarCluster", None, None]:
        if _run_has_ended(context):
            # Dagster initializes resources again after a run, to read its outputs: no cluster
            # for that (the run's own was torn down when its step ended).
            yield self
            return
        client = Client(self.url, token=self.token, token_path=self.token_path, context=self.context)
        run_id = context.run.run_id if context.run else "local"
        job_name = context.run.job_name if context.run else "dagster"
        name = self.name or cluster_name(job_name, run_id)
        log = context.log
        # Set when a cluster may exist: after a launch that succeeded, and after one whose answer
        # never came (raydar may have made it); not after a refusal, which made nothing, nor a
        # 409, which names someone else's cluster.
        made = False
        keeper: Optional[LeaseKeeper] = None
        try:
            try:
                cluster = client.launch(
                    self.template, self.namespace, name, self.parameters,
                    pipeline=job_name, run=run_id, lease=self.lease,
                )
            except ApiError as e:
                made = e.status >= 500
                raise
            except RaydarError:
                made = True
                raise
            made = True
            log.info(f"raydar: launched {self.namespace}/{name} from {self.template}: "
                     f"{client.page_url(self.namespace, name)}")
            if self.lease:
                # A first renewal now, which says how long raydar's leases hold.
                timeout = client.renew_lease(self.namespace, name)
                keeper = LeaseKeeper(
                    lambda: Client(self.url, token=self.token, token_path=self.token_path, context=self.context),
                    self.namespace, name, timeout=timeout,
                    on_problem=lambda m: log.warning(f"raydar: {m}"),
                ).start()
            cluster = client.wait_ready(
                self.namespace, name, timeout=self.ready_timeout, stuck_after=self.stuck_after,
                progress=lambda p: log.info(
                    f"raydar: {self.namespace}/{name} {p.phase}, {p.workers_ready}/"
                    f"{p.workers_desired} workers ready"
                    + (f"; waiting: {p.waiting_for}" if p.waiting_for else "")),
            )
            log.info(f"raydar: {self.namespace}/{name} is Ready")
            self._client, self._cluster, self._context = client, cluster, context
            yield self
        finally:
            if keeper is not None:
                keeper.stop()
            try:
                if made and self._tear_down(context):
                    gone = client.teardown(self.namespace, name)
                    log.info(f"raydar: tore down {self.namespace}/{name} ({gone.result})")
                elif made:
                    if self.lease:
                        # Kept on purpose: not to be reclaimed once this process is gone.
                        client.release_lease(self.namespace, name)
                    log.info(f"raydar: kept {self.namespace}/{name} (cleanup={self.cleanup.value})")
            finally:
                client.close()

    def _tear_down(self, context: InitResourceContext) -> bool:
        if self.cleanup == Cleanup.ALWAYS:
            return True
        if self.cleanup == Cleanup.NEVER:
            return False
        # on_success: Dagster does not tell a resource how the run went; its event log does.
        if context.instance is None or context.run is None:
            return True
        failures = context.instance.all_logs(
            context.run.run_id, of_type=DagsterEventType.STEP_FAILURE
        )
        return not failures and sys.exc_info()[0] is None

    # --- what an op uses --------------------------------------------------------------------

    @property
    def client(self) -> Client:
        if self._client is None:
            raise RaydarError("the RaydarCluster resource is used outside a run")
        return self._client

    @property
    def cluster(self) -> Cluster:
        """The cluster as it was when it became Ready (``uid``, ``name``, ...)."""
        if self._cluster is None:
            raise RaydarError("the RaydarCluster resource is used outside a run")
        return self._cluster

    @property
    def page_url(self) -> str:
        """The cluster's page in raydar."""
        return self.client.page_url(self.cluster.namespace, self.cluster.name)

    def submit(
        self, entrypoint: str, runtime_env: Optional[Dict[str, Any]] = None,
        name: Optional[str] = None,
    ) -> RayJob:
        """Submits a Ray job to the cluster (a RayJob owned by the pipeline's identity)."""
        return self.client.submit_job(
            self.cluster.namespace, self.cluster.name, entrypoint, runtime_env, name
        )

    def run(
        self, entrypoint: str, runtime_env: Optional[Dict[str, Any]] = None,
        context: Any = None, check: bool = True,
    ) -> RayJob:
        """Submits a Ray job, sends its log lines to Dagster's log as they are printed, and
        returns the finished job; one that did not succeed raises :class:`~raydar.JobFailed`
        unless `check` is false. `context` is the op's (its log is the step's), else the run's.
        """
        job = self.submit(entrypoint, runtime_env)
        (context or self._context).log.info(
            f"raydar: submitted {job.job_id} to {job.namespace}/{self.cluster.name}")
        self.follow(job, context)
        return self.client.wait_job(job.namespace, job.name, timeout=self.job_timeout, check=check)

    def follow(self, job: RayJob, context: Any = None) -> int:
        """Sends a job's log lines to Dagster's log as they are printed, until it ends (resuming a
        dropped connection without repeating a line); the number of lines.

        Lines that arrive together are one log message (up to :data:`LINES_PER_MESSAGE`): each
        message costs Dagster an event-log write, which a flood of one per line would wait on.
        """
        log = (context or self._context).log
        stream = self.client.job_logs(job, timeout=self.job_timeout,
                                      on_problem=lambda m: log.warning(f"raydar: {m}"))
        lines = 0
        for batch in stream.batches():
            for at in range(0, len(batch), LINES_PER_MESSAGE):
                log.info("\n".join(line.text for line in batch[at:at + LINES_PER_MESSAGE]))
            lines += len(batch)
        return lines

    def metadata(self, job: RayJob) -> Dict[str, MetadataValue]:
        """What an op's output should say of a job it ran: the cluster, the job, how it went."""
        duration = (job.end_time or time.time()) - (job.start_time or job.created)
        return {
            "raydar cluster": MetadataValue.url(self.page_url),
            "cluster uid": MetadataValue.text(self.cluster.uid),
            "job id": MetadataValue.text(job.job_id),
            "job status": MetadataValue.text(job.job_status),
            "duration (s)": MetadataValue.float(float(duration)),
        }
