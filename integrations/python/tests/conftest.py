"""Fixtures for the client's tests against a real raydar on the local control plane.

`make test-python` runs them with RAYDAR_URL set (scripts/raydar.sh run) and KUBECONFIG naming
the local plane's admin; tests that need neither (pure parts) run anywhere.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
from typing import Any, Callable, Iterator

import pytest

import raydar


def kubectl(*args: str, input: str | None = None, check: bool = True) -> str:
    """kubectl as the local plane's admin; its stdout."""
    done = subprocess.run(
        ["kubectl", *args], input=input, capture_output=True, text=True, timeout=60
    )
    if check and done.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)}: {done.stderr}")
    return done.stdout


def eventually(what: str, check: Callable[[], Any], within: float = 90.0) -> Any:
    """`check()`'s first truthy answer, tried every 0.25 s for `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        answer = check()
        if answer:
            return answer
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within:.0f}s: {what}")
        time.sleep(0.25)


def ray_clusters(namespace: str) -> list[dict[str, Any]]:
    """The RayClusters Kubernetes holds in `namespace`."""
    return json.loads(kubectl("get", "rayclusters", "-n", namespace, "-o", "json"))["items"]


@pytest.fixture(scope="session")
def url() -> str:
    if "RAYDAR_URL" not in os.environ:
        pytest.skip("needs a raydar on the local control plane: make test-python")
    return os.environ["RAYDAR_URL"]


class Namespace:
    """A namespace of the test's own, with a ServiceAccount `pipeline` that may launch and run
    jobs there (the local developer's role) and one, `intruder`, that may do nothing."""

    def __init__(self) -> None:
        self.name = f"py-{secrets.token_hex(3)}"
        kubectl("create", "namespace", self.name)
        for account in ("pipeline", "intruder"):
            kubectl("create", "serviceaccount", account, "-n", self.name)
        kubectl("create", "rolebinding", "pipeline", "-n", self.name,
                "--clusterrole=raydar-local-developer", f"--serviceaccount={self.name}:pipeline")

    def token(self, account: str = "pipeline") -> str:
        return kubectl("create", "token", account, "-n", self.name, "--duration=1h").strip()

    def delete(self) -> None:
        kubectl("delete", "namespace", self.name, "--wait=false", check=False)


@pytest.fixture
def namespace(url: str) -> Iterator[Namespace]:
    made = Namespace()
    yield made
    made.delete()


@pytest.fixture
def client(url: str, namespace: Namespace) -> Iterator[raydar.Client]:
    with raydar.Client(url, token=namespace.token()) as c:
        yield c
