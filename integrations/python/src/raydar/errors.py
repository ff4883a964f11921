"""Every way a raydar call fails, as exceptions a pipeline can catch by kind.

Two families: :class:`ApiError` is raydar (or Kubernetes through it) refusing a request, and
carries raydar's own message with one entry per bad field; :class:`ClusterNotReady` and
:class:`JobFailed` are the platform saying a cluster or a job did not get where it was asked to.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence


class RaydarError(Exception):
    """Anything raydar's client raises on purpose."""


@dataclass(frozen=True)
class FieldError:
    """One bad field of a request: the parameter (or ``name``, ``namespace``) and what is allowed."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class ApiError(RaydarError):
    """raydar answered with an error status.

    ``message`` is raydar's sentence for a person, ``reason`` the machine word (Kubernetes' own
    when Kubernetes refused: ``Forbidden``, ``AlreadyExists``, ``Invalid``, ...), ``errors`` one
    entry per bad field.
    """

    def __init__(
        self,
        status: int,
        message: str,
        reason: str = "",
        errors: Sequence[FieldError] = (),
        method: str = "",
        path: str = "",
    ) -> None:
        self.status = status
        self.message = message
        self.reason = reason
        self.errors = list(errors)
        self.method = method
        self.path = path
        lines = [f"{method} {path}: {status} {message}".strip()]
        # raydar's message is the one field's own when only one is wrong: said once.
        lines += [f"  {e}" for e in self.errors if str(e) != message]
        super().__init__("\n".join(lines))

    @property
    def fields(self) -> list[str]:
        """The names of the fields raydar found wrong, in the order it gave them."""
        return [e.field for e in self.errors]


class BadRequest(ApiError):
    """400: the request could not be read (not JSON, an unknown field, a malformed name)."""


class Unauthorized(ApiError):
    """401: the token is missing, malformed, expired or not one the apiserver accepts."""


class Forbidden(ApiError):
    """403: Kubernetes RBAC refused; the message names who asked and what was refused."""


class NotFound(ApiError):
    """404: no such cluster, job or template (or not one the requester may see)."""


class Conflict(ApiError):
    """409: it exists already, or changed under the request."""


class Invalid(ApiError):
    """422: one or more fields are out of what the template or the API allows (see ``errors``)."""


class RateLimited(ApiError):
    """429: too many actions or streams for this requester; retry later."""


class Unavailable(ApiError):
    """502, 503, 504: raydar could not reach what it needed (the apiserver, a Ray dashboard)."""


_BY_STATUS: Mapping[int, type] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    422: Invalid,
    429: RateLimited,
    502: Unavailable,
    503: Unavailable,
    504: Unavailable,
}


def api_error(status: int, body: Any, method: str, path: str) -> ApiError:
    """The exception for an error answer: raydar's body is ``{error, reason, errors?}``."""
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        message = body["error"]
        reason = str(body.get("reason", ""))
        errors = [
            FieldError(str(e.get("field", "")), str(e.get("message", "")))
            for e in body.get("errors") or []
            if isinstance(e, dict)
        ]
    else:
        # Not raydar's shape (a proxy in front of it, say): keep what it said, shortened.
        message, reason, errors = (str(body)[:500] or f"HTTP {status}"), "", []
    kind = _BY_STATUS.get(status, ApiError)
    return kind(status, message, reason, errors, method, path)


class ConnectionFailed(RaydarError):
    """raydar could not be reached at all (refused, timed out, TLS)."""


class ClusterNotReady(RaydarError):
    """A cluster did not become Ready; subclasses say why, ``message`` in Kubernetes' words."""

    def __init__(self, namespace: str, name: str, message: str) -> None:
        self.namespace = namespace
        self.name = name
        self.message = message
        super().__init__(f"cluster {namespace}/{name} is not ready: {message}")


class Unschedulable(ClusterNotReady):
    """Its pods fit no node (the scheduler's reason is the message)."""


class ImagePullFailed(ClusterNotReady):
    """A container image cannot be pulled."""


class QuotaExceeded(ClusterNotReady):
    """The namespace's ResourceQuota refused its pods."""


class OperatorRefused(ClusterNotReady):
    """KubeRay refused the spec or could not create what it needs."""


class CrashLooping(ClusterNotReady):
    """A container keeps crashing; ``last_lines`` are its previous run's last lines."""

    def __init__(self, namespace: str, name: str, message: str, last_lines: str = "") -> None:
        self.last_lines = last_lines
        super().__init__(namespace, name, message)


class ContainerFailed(ClusterNotReady):
    """A container cannot start (a bad config, a missing secret)."""


class HeadNotAnswering(ClusterNotReady):
    """Ray's head runs but does not answer."""


class ClusterFailed(ClusterNotReady):
    """KubeRay reports the cluster failed."""


class ClusterGone(ClusterNotReady):
    """It was deleted while being waited for."""


class ReadyTimeout(ClusterNotReady):
    """Not Ready within the time allowed, with no reason found."""


class JobFailed(RaydarError):
    """A Ray job ended without succeeding (``status`` is Ray's, ``message`` Ray's or KubeRay's)."""

    def __init__(self, name: str, status: str, message: str, job: Optional[Any] = None) -> None:
        self.name = name
        self.status = status
        self.message = message
        self.job = job
        super().__init__(f"job {name} ended {status}" + (f": {message}" if message else ""))


class JobTimeout(RaydarError):
    """A job did not finish within the time allowed."""


class LogStreamLost(RaydarError):
    """A followed log could not be resumed (raydar unreachable for longer than allowed)."""
