"""raydar's Python client: Ray clusters and jobs on Kubernetes for pipelines, over raydar's API.

Needs only HTTP and a token (a ServiceAccount's, typically): raydar checks it with the apiserver
and acts as its owner, so Kubernetes RBAC decides, as for a person.

    import raydar

    with raydar.Client("https://raydar.example.com", token_path="/var/run/secrets/token") as rd:
        rd.launch("gpu-multi-node", "ml", "nightly", {"maxWorkers": 4})
        rd.wait_ready("ml", "nightly")
        job = rd.submit_job("ml", "nightly", "python train.py")
        for line in rd.logs("ml", "nightly", job.job_id):
            print(line.text)
        rd.teardown("ml", "nightly")

Layout: :mod:`raydar.client` (the calls), :mod:`raydar.models` (what they answer),
:mod:`raydar.errors` (how they fail), :mod:`raydar.waiting` (why a cluster is not Ready),
:mod:`raydar.lease` (renewing a cluster's lease from a thread),
:mod:`raydar.dagster` (the Dagster resource; needs the ``dagster`` extra).
"""

from .client import Client, LogStream
from .lease import LeaseKeeper
from .errors import (
    ApiError,
    BadRequest,
    ClusterFailed,
    ClusterGone,
    ClusterNotReady,
    Conflict,
    ConnectionFailed,
    ContainerFailed,
    CrashLooping,
    FieldError,
    Forbidden,
    HeadNotAnswering,
    ImagePullFailed,
    Invalid,
    JobFailed,
    JobTimeout,
    LogStreamLost,
    NotFound,
    OperatorRefused,
    QuotaExceeded,
    RateLimited,
    RaydarError,
    ReadyTimeout,
    Unauthorized,
    Unavailable,
    Unschedulable,
)
from .models import Cluster, Job, LogLine, Parameter, Progress, RayJob, Template, TornDown

__all__ = [
    "ApiError", "BadRequest", "Client", "Cluster", "ClusterFailed", "ClusterGone",
    "ClusterNotReady", "Conflict", "ConnectionFailed", "ContainerFailed", "CrashLooping",
    "FieldError", "Forbidden", "HeadNotAnswering",
    "ImagePullFailed", "Invalid", "Job", "JobFailed", "JobTimeout", "LeaseKeeper", "LogLine",
    "LogStream",
    "LogStreamLost", "NotFound", "OperatorRefused", "Parameter", "Progress", "QuotaExceeded",
    "RateLimited", "RayJob", "RaydarError", "ReadyTimeout", "Template", "TornDown",
    "Unauthorized", "Unavailable", "Unschedulable",
]
