"""A background thread that keeps leases alive while their holder works."""

from __future__ import annotations

import threading
import time
import warnings

from .client import Client
from .errors import NotFoundError, PgleaseError


class Renewer:
    """Renews every lease it holds every `interval` seconds for `ttl` seconds, on a client of
    its own. A lease the server no longer knows is forgotten."""

    def __init__(self, client: Client, ttl: float, interval: float | None = None):
        self._client = Client(client.url, client.token, client.timeout)
        self._ttl = ttl
        self._interval = interval if interval is not None else max(0.5, ttl / 3)
        self._leases: dict[str, float] = {}  # id -> when it was last renewed (monotonic)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopped = False
        self._thread: threading.Thread | None = None
        self.last_error: PgleaseError | None = None

    def add(self, lease_id: str) -> None:
        with self._lock:
            self._leases[lease_id] = time.monotonic()
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="pglease-renewer",
                                                daemon=True)
                self._thread.start()

    def discard(self, lease_id: str) -> None:
        with self._lock:
            self._leases.pop(lease_id, None)

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=self._client.timeout + 5)
        self._client.close()

    def _run(self) -> None:
        while not self._wake.wait(timeout=min(self._interval, 1.0)):
            with self._lock:
                if self._stopped:
                    return
                due = [i for i, at in self._leases.items() if time.monotonic() - at >= self._interval]
            for lease_id in due:
                try:
                    self._client.renew(lease_id, self._ttl)
                except NotFoundError:
                    self.discard(lease_id)
                    continue
                except PgleaseError as error:
                    self.last_error = error
                    warnings.warn(f"pglease: renewing lease {lease_id[:8]}… failed: {error}",
                                  RuntimeWarning, stacklevel=1)
                    continue
                with self._lock:
                    if lease_id in self._leases:
                        self._leases[lease_id] = time.monotonic()
