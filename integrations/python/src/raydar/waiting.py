"""Why a cluster is not Ready yet, read from its page's overview (conditions, events, pods).

A pure function of the overview raydar serves, so it is tested on fixtures; the client calls it
while it waits. When raydar itself names the stage a cluster waits in, this reads that instead.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

from .errors import (
    ClusterFailed,
    ClusterNotReady,
    ContainerFailed,
    CrashLooping,
    HeadNotAnswering,
    ImagePullFailed,
    OperatorRefused,
    QuotaExceeded,
    Unschedulable,
)

# Kubelet's reasons for an image that cannot be had.
_IMAGE_REASONS = {"ErrImagePull", "ImagePullBackOff", "InspectFailed", "ErrImageNeverPull"}
# KubeRay's events for a spec it will not act on.
_REFUSALS = {"InvalidRayClusterSpec", "InvalidRayClusterMetadata", "InvalidRayClusterStatus"}


def _quota(message: str) -> bool:
    return "exceeded quota" in message or "forbidden: failed quota" in message


# raydar's own reasons (the overview's `waiting.reason.kind`) and the failure each raises.
_KINDS = {
    "unschedulable": Unschedulable,
    "image-pull": ImagePullFailed,
    "quota": QuotaExceeded,
    "operator": OperatorRefused,
    "container": ContainerFailed,
    "head-not-answering": HeadNotAnswering,
}


def diagnose(namespace: str, name: str, overview: Mapping[str, Any]) -> Optional[ClusterNotReady]:
    """The reason the cluster `namespace/name` cannot become Ready now, if its overview shows one.

    raydar's own reason for the stage the cluster waits in comes first (``waiting``). Without
    one, the newest telling event wins (an old one may have been resolved
    since); a scheduling failure counts only for a pod that exists and still has no node.
    """
    reason = (overview.get("waiting") or {}).get("reason")
    if reason:
        kind, message = reason.get("kind", ""), reason.get("message", "")
        if kind == "crash-loop":
            return CrashLooping(namespace, name, message, reason.get("lastLines", ""))
        return _KINDS.get(kind, OperatorRefused)(namespace, name, message)
    for condition in overview.get("conditions") or ():
        if condition.get("type") == "ReplicaFailure" and condition.get("status") == "True":
            message = condition.get("message") or condition.get("reason") or "ReplicaFailure"
            kind = QuotaExceeded if _quota(message) else OperatorRefused
            return kind(namespace, name, message)
    unscheduled = {
        f"Pod/{p.get('name')}" for p in overview.get("pods") or () if not p.get("node")
    }
    found: list[tuple[int, ClusterNotReady]] = []
    for event in overview.get("events") or ():
        if event.get("kind") != "Warning":
            continue
        reason, message = event.get("reason", ""), event.get("message", "")
        said = f"{event.get('object', '')}: {message}"
        cause: Optional[ClusterNotReady] = None
        if reason == "FailedScheduling" and event.get("object") in unscheduled:
            cause = Unschedulable(namespace, name, said)
        elif reason in _IMAGE_REASONS or (reason == "Failed" and "image" in message.lower()):
            cause = ImagePullFailed(namespace, name, said)
        elif _quota(message):
            cause = QuotaExceeded(namespace, name, said)
        elif reason in _REFUSALS or reason.startswith("FailedToCreate"):
            cause = OperatorRefused(namespace, name, f"{reason}: {message}")
        if cause is not None:
            found.append((int(event.get("lastSeen", 0)), cause))
    if found:
        return max(found, key=lambda f: f[0])[1]
    return None


def failed(namespace: str, name: str, cluster: Mapping[str, Any]) -> Optional[ClusterNotReady]:
    """KubeRay's own verdict: a cluster in phase Failed, with its reason."""
    if cluster.get("phase") == "Failed":
        return ClusterFailed(namespace, name, cluster.get("reason") or "KubeRay reports it failed")
    return None
