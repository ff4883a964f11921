"""The client's pure parts: errors, event-stream parsing, why a cluster waits."""

from __future__ import annotations

import raydar
from raydar.client import _events
from raydar.errors import api_error
from raydar.waiting import diagnose, failed


def test_an_invalid_answer_names_every_field():
    body = {"error": "2 problems", "reason": "Invalid",
            "errors": [{"field": "workers", "message": "must be between 0 and 4"},
                       {"field": "name", "message": "must be a DNS label"}]}
    e = api_error(422, body, "POST", "/clusters")
    assert isinstance(e, raydar.Invalid) and e.fields == ["workers", "name"]
    assert "workers: must be between 0 and 4" in str(e)
    assert isinstance(api_error(401, {"error": "bad token", "reason": "Unauthorized"}, "GET", "/"),
                      raydar.Unauthorized)
    # Not raydar's shape (a proxy's page): kept, shortened, still typed by status.
    odd = api_error(503, "<html>" + "x" * 2000, "GET", "/")
    assert isinstance(odd, raydar.Unavailable) and len(odd.message) <= 500


def test_events_are_read_as_the_stream_frames_them():
    lines = iter([": keep-alive", "", "event: lines", "id: 2", 'data: {"first":1,"lines":["a","b"]}',
                  "", "event: end", 'data: {"reason":"done"}', ""])
    assert list(_events(lines)) == [("lines", '{"first":1,"lines":["a","b"]}'),
                                    ("end", '{"reason":"done"}')]


def _pod(name, node=None):
    return {"name": name, "node": node}


def _warning(reason, message, obj, last_seen=10):
    return {"kind": "Warning", "reason": reason, "message": message, "object": obj,
            "count": 1, "lastSeen": last_seen}


def test_a_waiting_cluster_is_diagnosed_by_its_newest_telling_event():
    unschedulable = {"pods": [_pod("c-head-x")], "conditions": [], "events": [
        _warning("FailedScheduling", "0/4 nodes are available: 4 Insufficient nvidia.com/gpu.",
                 "Pod/c-head-x")]}
    why = diagnose("ml", "c", unschedulable)
    assert isinstance(why, raydar.Unschedulable) and "Insufficient nvidia.com/gpu" in why.message
    # Scheduled since: the old event no longer explains anything.
    scheduled = {**unschedulable, "pods": [_pod("c-head-x", "node-1")]}
    assert diagnose("ml", "c", scheduled) is None

    pulling = {"pods": [_pod("c-head-x", "node-1")], "conditions": [], "events": [
        _warning("FailedScheduling", "0/4 nodes", "Pod/c-head-x", 5),
        _warning("Failed", 'Failed to pull image "rayproject/ray:nope": not found',
                 "Pod/c-head-x", 9)]}
    assert isinstance(diagnose("ml", "c", pulling), raydar.ImagePullFailed)

    quota = {"pods": [], "conditions": [{"type": "ReplicaFailure", "status": "True",
             "reason": "FailedCreateHeadPod",
             "message": 'pods "c-head-x" is forbidden: exceeded quota: small, requested: pods=1'}],
             "events": []}
    assert isinstance(diagnose("ml", "c", quota), raydar.QuotaExceeded)

    refused = {"pods": [], "conditions": [], "events": [
        _warning("InvalidRayClusterSpec", "headGroupSpec should have at least one container",
                 "RayCluster/c")]}
    why = diagnose("ml", "c", refused)
    assert isinstance(why, raydar.OperatorRefused) and "at least one container" in why.message
    assert diagnose("ml", "c", {"pods": [], "conditions": [], "events": []}) is None


def test_raydars_own_reason_for_the_stage_comes_first_and_is_typed():
    def waiting(kind, message, **more):
        return {"pods": [], "conditions": [], "events": [], "waiting": {
            "stages": [], "current": "running",
            "reason": {"kind": kind, "message": message, "pods": ["c-head-x"], **more}}}
    crash = diagnose("ml", "c", waiting(
        "crash-loop", "container ray-head of c-head-x keeps crashing: restarted 3 times",
        lastLines="ValueError: bad address\n"))
    assert isinstance(crash, raydar.CrashLooping) and crash.last_lines == "ValueError: bad address\n"
    assert "keeps crashing" in str(crash)
    for kind, error in [("unschedulable", raydar.Unschedulable), ("quota", raydar.QuotaExceeded),
                        ("image-pull", raydar.ImagePullFailed), ("operator", raydar.OperatorRefused),
                        ("head-not-answering", raydar.HeadNotAnswering),
                        ("container", raydar.ContainerFailed)]:
        assert type(diagnose("ml", "c", waiting(kind, "why"))) is error, kind
    # Nothing holds the stage: no failure, whatever old events say.
    calm = {"pods": [_pod("c-head-x", "node-1")], "conditions": [],
            "waiting": {"stages": [], "current": "head"},
            "events": [_warning("FailedScheduling", "0/4 nodes", "Pod/c-head-x")]}
    assert diagnose("ml", "c", calm) is None


def test_kuberays_failed_phase_is_a_failure_with_its_reason():
    why = failed("ml", "c", {"phase": "Failed", "reason": "HeadPodNotFound"})
    assert isinstance(why, raydar.ClusterFailed) and "HeadPodNotFound" in str(why)
    assert failed("ml", "c", {"phase": "Provisioning"}) is None
