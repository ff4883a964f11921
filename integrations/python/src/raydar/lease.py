"""Keeping a cluster's lease: a thread that renews it while the process that launched the cluster
lives, so that raydar reclaims the cluster once the process is gone, however it went (a SIGKILL,
an evicted pod, a lost node): what a ``finally`` cannot promise.
"""

from __future__ import annotations

import threading
from typing import Callable, Optional

from .client import Client
from .errors import RaydarError

#: Longest wait between renewals, seconds: well within raydar's default five-minute timeout.
MOST_BETWEEN = 60.0


class LeaseKeeper:
    """Renews the lease of cluster ``namespace/name`` from a daemon thread until :meth:`stop`.

    Renewals come every third of raydar's ``--lease-timeout`` (as raydar's answer says), at most
    :data:`MOST_BETWEEN` apart, so two may fail in a row without the cluster being reclaimed. A
    failed renewal is told to ``on_problem`` and tried again at the next turn. The thread uses a
    client of its own (``client_factory``), never the caller's.
    """

    def __init__(
        self,
        client_factory: Callable[[], Client],
        namespace: str,
        name: str,
        timeout: float,
        on_problem: Optional[Callable[[str], None]] = None,
    ) -> None:
        self.namespace, self.name = namespace, name
        self._factory = client_factory
        self._between = min(MOST_BETWEEN, max(1.0, timeout / 3))
        self._on_problem = on_problem or (lambda _message: None)
        self._stopped = threading.Event()
        self._thread = threading.Thread(
            target=self._keep, name=f"raydar-lease-{namespace}-{name}", daemon=True
        )
        self.renewals = 0

    def start(self) -> "LeaseKeeper":
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stops renewing (the cluster is then reclaimed after the timeout unless torn down)."""
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _keep(self) -> None:
        with self._factory() as client:
            while not self._stopped.wait(self._between):
                try:
                    timeout = client.renew_lease(self.namespace, self.name)
                    self.renewals += 1
                    self._between = min(MOST_BETWEEN, max(1.0, timeout / 3))
                except RaydarError as e:
                    self._on_problem(f"renewing the lease of {self.namespace}/{self.name}: {e}")
