"""What raydar's API answers, as typed, read-only records (each keeps the full JSON in ``raw``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

#: A Ray job's statuses after which nothing changes.
TERMINAL_JOB_STATUSES = frozenset({"SUCCEEDED", "FAILED", "STOPPED"})


@dataclass(frozen=True)
class Parameter:
    """One parameter of a template: its kind, default and bounds."""

    name: str
    type: str
    description: str
    default: Any
    min: Any = None
    max: Any = None
    values: tuple[str, ...] = ()

    @classmethod
    def of(cls, j: Mapping[str, Any]) -> "Parameter":
        return cls(
            name=j["name"],
            type=j.get("type", ""),
            description=j.get("description", ""),
            default=j.get("default"),
            min=j.get("min"),
            max=j.get("max"),
            values=tuple(j.get("values") or ()),
        )


@dataclass(frozen=True)
class Template:
    """A vetted RayClusterTemplate clusters are launched from."""

    name: str
    description: str
    parameters: tuple[Parameter, ...]
    raw: Mapping[str, Any] = field(repr=False)

    @classmethod
    def of(cls, j: Mapping[str, Any]) -> "Template":
        params = tuple(Parameter.of(p) for p in j.get("parameters") or ())
        return cls(j["name"], j.get("description", ""), params, j)


@dataclass(frozen=True)
class Cluster:
    """A Ray cluster as raydar's list shows it."""

    namespace: str
    name: str
    uid: str
    phase: str
    reason: Optional[str]
    workers_ready: int
    workers_desired: int
    gpus: int
    owner: str
    team: str
    template: str
    created_at: int
    raw: Mapping[str, Any] = field(repr=False)

    @property
    def ready(self) -> bool:
        return self.phase == "Ready"

    @classmethod
    def of(cls, j: Mapping[str, Any]) -> "Cluster":
        return cls(
            namespace=j["namespace"],
            name=j["name"],
            uid=j.get("uid", ""),
            phase=j.get("phase", ""),
            reason=j.get("reason"),
            workers_ready=int(j.get("workersReady", 0)),
            workers_desired=int(j.get("workersDesired", 0)),
            gpus=int(j.get("gpusDesired", 0)),
            owner=j.get("owner", ""),
            team=j.get("team", ""),
            template=j.get("template", ""),
            created_at=int(j.get("createdAt", 0)),
            raw=j,
        )


@dataclass(frozen=True)
class Job:
    """A Ray job on a cluster, as its Ray dashboard reports it (times in Unix milliseconds)."""

    id: str
    submission_id: Optional[str]
    job_id: Optional[str]
    status: str
    entrypoint: str
    message: Optional[str]
    start_time: Optional[int]
    end_time: Optional[int]
    raw: Mapping[str, Any] = field(repr=False)

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL_JOB_STATUSES

    @classmethod
    def of(cls, j: Mapping[str, Any]) -> "Job":
        return cls(
            id=j["id"],
            submission_id=j.get("submissionId"),
            job_id=j.get("jobId"),
            status=j.get("status", ""),
            entrypoint=j.get("entrypoint", ""),
            message=j.get("message"),
            start_time=j.get("startTime"),
            end_time=j.get("endTime"),
            raw=j,
        )


@dataclass(frozen=True)
class RayJob:
    """A KubeRay RayJob: a Ray job Kubernetes submits (to a cluster, or to one made for it).

    ``job_status`` is the Ray job's (``""`` before it is submitted), ``deployment_status``
    KubeRay's progress; ``cluster`` the RayCluster it runs on, ``job_id`` what its log is read by.
    """

    namespace: str
    name: str
    cluster: str
    ephemeral: bool
    job_id: str
    job_status: str
    deployment_status: str
    message: str
    entrypoint: str
    owner: str
    created: int
    start_time: Optional[int]
    end_time: Optional[int]
    raw: Mapping[str, Any] = field(repr=False)

    @property
    def finished(self) -> bool:
        """The Ray job ended, or KubeRay gave up on it (``Failed``: it may never have run)."""
        return self.job_status in TERMINAL_JOB_STATUSES or self.deployment_status in (
            "Complete",
            "Failed",
        )

    @property
    def succeeded(self) -> bool:
        return self.job_status == "SUCCEEDED"

    @classmethod
    def of(cls, j: Mapping[str, Any]) -> "RayJob":
        return cls(
            namespace=j["namespace"],
            name=j["name"],
            cluster=j.get("cluster", ""),
            ephemeral=bool(j.get("ephemeral", False)),
            job_id=j.get("jobId", ""),
            job_status=j.get("jobStatus", ""),
            deployment_status=j.get("deploymentStatus", ""),
            message=j.get("message", ""),
            entrypoint=j.get("entrypoint", ""),
            owner=j.get("owner", ""),
            created=int(j.get("created", 0)),
            start_time=j.get("startTime"),
            end_time=j.get("endTime"),
            raw=j,
        )


@dataclass(frozen=True)
class TornDown:
    """A teardown's answer: ``result`` is ``deleting``, ``deleted`` or ``already-gone``."""

    namespace: str
    name: str
    result: str
    already_gone: bool

    @classmethod
    def of(cls, j: Mapping[str, Any]) -> "TornDown":
        return cls(j["namespace"], j["name"], j.get("result", ""), bool(j.get("alreadyGone")))


@dataclass(frozen=True)
class LogLine:
    """One line of a log and its number (1 is the first line; numbers are what a resume uses)."""

    number: int
    text: str


@dataclass(frozen=True)
class Progress:
    """Where a cluster is while it is waited for; ``waiting_for`` says why when known."""

    phase: str
    workers_ready: int
    workers_desired: int
    elapsed: float
    waiting_for: Optional[str] = None
